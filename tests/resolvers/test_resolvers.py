"""The resolvers together: names refreshed when a user file changes."""

from __future__ import annotations

import os

from test_process import exec_

from opencws.resolvers import Resolvers
from opencws.resolvers.process import ProcessCache
from opencws.resolvers.time import TimeResolver
from opencws.resolvers.users import UserGroupResolver


class Root:
    """`UserGroupResolver` reading a temporary folder in place of `/`."""

    def __init__(self, inner: UserGroupResolver, folder: str):
        self.inner, self.folder = inner, folder

    def user(self, uid, root="/"):
        return self.inner.user(uid, self.folder if root == "/" else root)

    def group(self, gid, root="/"):
        return self.inner.group(gid, self.folder if root == "/" else root)

    def stats(self):
        return self.inner.stats()


def test_a_renamed_user_shows_in_the_cache_after_the_check_interval(tmp_path):
    (tmp_path / "etc").mkdir()
    passwd = tmp_path / "etc" / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    now = [0.0]
    users = Root(UserGroupResolver(clock=lambda: now[0]), str(tmp_path))
    clock = TimeResolver()
    cache = ProcessCache(users, clock)
    resolvers = Resolvers(cache, users, clock)
    cache.snapshot([])
    e = cache.on_exec(exec_(300, 1, "/usr/bin/id", ["id"]))
    assert cache.model(e).user == "root"
    resolvers.refresh()
    passwd.write_text("admin:x:0:0::/root:/bin/sh\n")
    os.utime(passwd, ns=(1, 1))
    now[0] += 5
    assert resolvers.refresh() is True
    assert cache.model(e).user == "admin"
    assert resolvers.refresh() is False
