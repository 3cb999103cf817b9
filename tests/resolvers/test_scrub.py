"""Secret values masked in process arguments, by name, in each documented form; look-alikes left alone."""

from __future__ import annotations

import pytest

from opencws.resolvers.scrub import DEFAULT_SECRET_NAMES, MASK, ArgScrubber, name_words

S = ArgScrubber()


@pytest.mark.parametrize(("args", "expected"), [
    (["--password=hunter2"], [f"--password={MASK}"]),
    (["-password=hunter2"], [f"-password={MASK}"]),
    (["PASSWORD=hunter2", "make"], [f"PASSWORD={MASK}", "make"]),
    (["--Api-Key=abc", "--verbose"], [f"--Api-Key={MASK}", "--verbose"]),
    (["MYSQL_PWD=x"], [f"MYSQL_PWD={MASK}"]),
    (["GITHUB_TOKEN=ghp_x", "gh"], [f"GITHUB_TOKEN={MASK}", "gh"]),
    (["--apiKey=abc"], [f"--apiKey={MASK}"]),
    (["AWS_SECRET_ACCESS_KEY=k"], [f"AWS_SECRET_ACCESS_KEY={MASK}"]),
    (["--password=a=b=c"], [f"--password={MASK}"]),
])
def test_name_equals_value_forms_are_masked(args, expected):
    assert S.scrub(args) == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["--password", "hunter2", "--user", "bob"], ["--password", MASK, "--user", "bob"]),
    (["-password", "hunter2"], ["-password", MASK]),
    (["--TOKEN", "-starts-with-a-dash"], ["--TOKEN", MASK]),
    (["--db-password", "x", "y"], ["--db-password", MASK, "y"]),
    (["--password"], ["--password"]),  # nothing follows: nothing to mask
])
def test_an_option_named_like_a_secret_masks_the_next_argument(args, expected):
    assert S.scrub(args) == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["-H", "Authorization: Bearer abc.def"], ["-H", f"Authorization:{MASK}"]),
    (["-H", "X-Api-Key:abc"], ["-H", f"X-Api-Key:{MASK}"]),
    (["-passin", "pass:s3cret"], ["-passin", f"pass:{MASK}"]),
    (["token:abc"], [f"token:{MASK}"]),
])
def test_name_colon_value_forms_are_masked(args, expected):
    assert S.scrub(args) == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["clone", "https://bob:hunter2@example.org/r.git"], ["clone", f"https://bob:{MASK}@example.org/r.git"]),
    (["--url=postgres://app:p@ss@db:5432/x"], [f"--url=postgres://app:{MASK}@db:5432/x"]),
    (["ftp://:only-password@host"], [f"ftp://:{MASK}@host"]),
    (["see http://a:b@h and https://c:d@i"], [f"see http://a:{MASK}@h and https://c:{MASK}@i"]),
])
def test_a_password_in_a_url_is_masked_and_the_rest_kept(args, expected):
    assert S.scrub(args) == expected


@pytest.mark.parametrize("args", [
    ["--author=alice"],                       # 'auth' is listed; 'author' is another word
    ["--passwords", "3"],                     # 'passwords' is not 'password'
    ["--max-tokens=100"],
    ["passwd", "alice"],                      # no dash: a bare word names no option
    ["-pSECRET"],                             # glued one-letter options are not decided by name
    ["--user", "bob", "https://example.org/x"],
    ["https://bob@example.org/"],             # a user without a password
    ["http://host:8080/path"],                # a port is no password
    ["--secretary=x"],
    ["-p", "8080"],
    ["--password="],                          # empty value
])
def test_look_alikes_are_left_alone(args):
    assert S.scrub(args) == args


def test_nothing_secret_returns_the_same_list_without_copying():
    args = ["ls", "-l", "/tmp"]
    assert S.scrub(args) is args


def test_scrubbing_never_changes_the_input_list():
    args = ["--password", "x", "TOKEN=y"]
    S.scrub(args)
    assert args == ["--password", "x", "TOKEN=y"]


def test_names_match_case_insensitively_and_across_spellings():
    for name in ("password", "PASSWORD", "Password", "db_password", "dbPassword", "DB.PASSWORD", "x-api-key",
                 "API_KEY", "ApiKey", "APIKey"):
        assert S.is_secret_name(name), name
    assert name_words("--DB_apiKey.value") == ("db", "api", "key", "value")


def test_the_list_of_names_is_configurable():
    s = ArgScrubber(["u", "license"])
    assert s.scrub(["-u", "bob:pw", "--license=K-1", "--password=x"]) == ["-u", MASK, f"--license={MASK}",
                                                                        "--password=x"]


def test_default_names_cover_the_usual_secrets():
    for name in ("password", "passwd", "pwd", "token", "secret", "api_key", "apikey", "api-key", "access_key",
                 "private_key", "auth", "credential"):
        assert S.is_secret_name(name), name
    assert "password" in DEFAULT_SECRET_NAMES


@pytest.mark.parametrize("bad", ["", "--", 3])
def test_a_bad_secret_name_is_refused(bad):
    with pytest.raises(ValueError, match="secret name"):
        ArgScrubber([bad])
