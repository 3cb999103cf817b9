"""The HTTP reporter against a real backend process: batches stored and searchable, a backend killed and
restarted in the middle, a spool replayed after a restart, a spool bound, rejections and a refused key, and a
pipeline thread that never waits on the network."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter

import orjson
import pytest
import urllib3
from backend_corpus import event_mix
from backend_process import Backend, free_port

from opencws.agent.http_reporter import HTTPReporter
from opencws.agent.reporters import ReporterError


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Backend:
    b = Backend(tmp_path_factory.mktemp("backend"), ["--retention-days", "0"]).start()
    b.ingest, b.reader = b.key("ingest"), b.key("read")
    yield b
    b.stop()


def lines(host: str, n: int, start: int = 0, rule: str = "r") -> list[bytes]:
    """`n` envelopes from `host`, each event marked by its pid (start, start+1...)."""
    out = []
    for i, e in enumerate(event_mix(n, seed=start)):
        e["process"]["pid"] = start + i
        out.append(orjson.dumps({"rule_id": rule, "rule_version": "1", "tags": ["t:1"], "policy": "p.policy",
                                 "host": host, "agent_version": "0.1.0", "event": e}))
    return out


def stored_pids(b: Backend, host: str) -> Counter:
    return Counter(h["event"]["process"]["pid"] for h in b.events(b.reader, host=host))


def wait_until(condition, timeout: float = 180.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)


def settled(r: HTTPReporter) -> bool:
    s = r.stats()
    return s["backlog_lines"] == 0


def test_events_written_are_stored_in_batches_and_found_by_a_search(backend, tmp_path):
    host = f"h-{uuid.uuid4().hex[:8]}"
    r = HTTPReporter(backend.url, backend.ingest, spool_dir=tmp_path / "spool", batch_max_events=40,
                     batch_max_wait=0.2)
    for line in lines(host, 100):
        r.write(line)
    wait_until(lambda: settled(r), what="the batches to be acknowledged")
    r.close()
    assert stored_pids(backend, host) == Counter(range(100))
    s = r.stats()
    assert (s["sent"], s["sent_batches"], s["retries"], s["spooled"], s["dropped"]) == (100, 3, 0, 0, 0)
    hits = backend.events(backend.reader, host=host, q="process.pid == 42")
    assert [(h["rule_id"], h["policy"], h["tags"]) for h in hits] == [("r", "p.policy", ["t:1"])]


def test_what_is_in_memory_at_close_is_sent_before_the_reporter_stops(backend, tmp_path):
    host = f"h-{uuid.uuid4().hex[:8]}"
    r = HTTPReporter(backend.url, backend.ingest, spool_dir=tmp_path / "spool", batch_max_wait=3600)
    for line in lines(host, 7):
        r.write(line)
    r.close()  # the batch was neither full nor old: closing sends it
    assert stored_pids(backend, host) == Counter(range(7))
    assert len(list((tmp_path / "spool").glob("*.batch"))) == 0


def test_a_backend_killed_and_restarted_mid_stream_stores_every_event_exactly_once(tmp_path):
    port = free_port()
    b = Backend(tmp_path / "data", ["--listen", f"127.0.0.1:{port}", "--retention-days", "0"]).start()
    ingest, reader = b.key("ingest"), b.key("read")
    host, total = f"h-{uuid.uuid4().hex[:8]}", 3000
    r = HTTPReporter(b.url, ingest, spool_dir=tmp_path / "spool", batch_max_events=100, batch_max_wait=0.1)
    try:
        todo = lines(host, total)
        for line in todo[:1000]:
            r.write(line)
            time.sleep(0.001)
        b.stop(signal.SIGKILL)  # batches in flight, some acknowledged and some not
        for line in todo[1000:2000]:
            r.write(line)
            time.sleep(0.001)
        assert r.stats()["spooled"] > 0  # the spool took what the dead backend could not
        b.start(timeout=180)
        for line in todo[2000:]:
            r.write(line)
            time.sleep(0.001)
        wait_until(lambda: settled(r), 240, "the spool to be replayed")
    finally:
        r.close()
    b.reader = reader
    try:
        found = stored_pids(b, host)
    finally:
        b.stop()
    assert sorted(found) == list(range(total)), "lost events"
    assert [pid for pid, n in found.items() if n > 1] == [], "events stored twice"
    s = r.stats()
    assert s["retries"] > 0 and s["sent"] == total and s["spool_batches"] == 0
    assert list((tmp_path / "spool").glob("*.batch")) == []


def test_a_spool_left_at_a_stop_is_replayed_by_the_next_start_and_nothing_is_stored_twice(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    b = Backend(tmp_path / "data", ["--listen", f"127.0.0.1:{port}"])
    host = f"h-{uuid.uuid4().hex[:8]}"
    spool = tmp_path / "spool"
    first = HTTPReporter(url, "ocws_x_unchecked", spool_dir=spool, batch_max_events=10, check_key=False)
    for line in lines(host, 35):
        first.write(line)
    first.close()  # nobody listens: every batch is in the spool, with its key
    kept = sorted(spool.glob("*.batch"))
    assert [p.name.split("-")[1] for p in kept] == ["10", "10", "10", "5"]
    notices = dict(first.take_notices())
    assert notices["spooled_at_stop"]["events"] == 35

    b.start()
    ingest = b.key("ingest")
    b.reader = b.key("read")
    try:
        copy = tmp_path / "copy.batch"
        shutil.copy(kept[0], copy)  # the first batch, as a crash would leave it after its acknowledgement
        second = HTTPReporter(url, ingest, spool_dir=spool)
        assert ("spool_replay", {"batches": 4, "events": 35, "bytes": sum(p.stat().st_size for p in kept),
                                 "spool": str(spool)}) in second.take_notices()
        wait_until(lambda: settled(second), what="the replay")
        second.close()
        assert stored_pids(b, host) == Counter(range(35))

        shutil.copy(copy, kept[0])
        third = HTTPReporter(url, ingest, spool_dir=spool)
        wait_until(lambda: settled(third), what="the second replay")
        third.close()
        assert stored_pids(b, host) == Counter(range(35)), "a batch sent again was stored twice"
        assert third.stats()["sent"] == 10  # the backend answered with its first answer
    finally:
        b.stop()


def test_the_spool_bound_drops_new_batches_and_says_exactly_how_many_events(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    r = HTTPReporter(dead, "ocws_x_y", spool_dir=tmp_path / "spool", spool_max_bytes=6000, batch_max_events=5,
                     check_key=False)
    for line in lines("h", 200):
        r.write(line)
    r.close()
    s = r.stats()
    assert s["spool_bytes"] <= 6000 and s["spooled"] > 0 and s["dropped"] > 0
    assert s["spooled"] + s["dropped"] == 200
    assert sum(int(p.name.split("-")[1]) for p in (tmp_path / "spool").glob("*.batch")) == s["spooled"]
    said = [f for kind, f in r.take_notices() if kind == "events_dropped"]
    assert sum(f["events"] for f in said) == s["dropped"] and said[-1]["dropped_total"] == s["dropped"]
    assert said[-1]["reason"] == "the spool is full" and said[-1]["spool_max_bytes"] == 6000


def test_a_key_the_backend_refuses_stops_the_start_with_the_reason(backend, tmp_path):
    with pytest.raises(ReporterError, match=r"the backend refused the API key \(401 .*check api_key or "
                                            r"OPENCWS_API_KEY"):
        HTTPReporter(backend.url, "ocws_000000000000_wrong", spool_dir=tmp_path / "s")
    read_only = backend.key("read")
    with pytest.raises(ReporterError, match=r"refused the API key \(403"):
        HTTPReporter(backend.url, read_only, spool_dir=tmp_path / "s")
    HTTPReporter(backend.url, backend.ingest, spool_dir=tmp_path / "s").close()  # the spool was released


def test_an_unreachable_backend_at_start_is_said_and_is_not_an_error(tmp_path):
    r = HTTPReporter(f"http://127.0.0.1:{free_port()}", "ocws_a_b", spool_dir=tmp_path / "s")
    r.close()
    kind, fields = r.take_notices()[0]
    assert kind == "reporter_error" and "the backend does not answer (connection refused)" in fields["error"]


def test_events_the_backend_rejects_are_said_with_index_rule_and_reasons_and_never_sent_again(backend, tmp_path):
    host = f"h-{uuid.uuid4().hex[:8]}"
    r = HTTPReporter(backend.url, backend.ingest, spool_dir=tmp_path / "spool", batch_max_wait=0.1)
    good = lines(host, 3)
    bad = orjson.loads(good[1])
    bad["rule_id"] = "broken_rule"
    bad["event"]["process"]["pid"] = "12"
    for line in (good[0], orjson.dumps(bad), good[2]):
        r.write(line)
    wait_until(lambda: settled(r))
    r.close()
    s = r.stats()
    assert (s["sent"], s["rejected"], s["spool_batches"], s["retries"]) == (2, 1, 0, 0)
    [said] = [f for kind, f in r.take_notices() if kind == "events_rejected"]
    assert said["events"] == 1
    assert said["rejected"][0]["index"] == 1 and said["rejected"][0]["rule_id"] == "broken_rule"
    assert any("/event/process/pid" in e for e in said["rejected"][0]["errors"])


def test_a_batch_too_large_for_the_backend_is_split_and_a_single_event_too_large_is_refused(tmp_path):
    config = tmp_path / "backend.yaml"
    config.write_text("max_events_per_request: 3\nmax_body_bytes: 8192\n")
    b = Backend(tmp_path / "data", ["--config", str(config)]).start()
    b.reader = b.key("read")
    host = f"h-{uuid.uuid4().hex[:8]}"
    try:
        r = HTTPReporter(b.url, b.key("ingest"), spool_dir=tmp_path / "spool", batch_max_events=10,
                         batch_max_wait=0.1)
        for line in lines(host, 10):
            r.write(line)
        wait_until(lambda: settled(r), what="the halves to be sent")
        huge = orjson.loads(lines(host, 1, start=99)[0])
        huge["event"]["process"]["comm"] = os.urandom(12_000).hex()  # incompressible: past 8192 bytes alone
        r.write(orjson.dumps(huge))
        wait_until(lambda: settled(r), what="the refusal")
        r.close()
        found = stored_pids(b, host)
    finally:
        b.stop()
    assert found == Counter(range(10))  # 10 -> 5 + 5 -> 2 + 3 + 2 + 3: every part under the backend's 3 events
    s = r.stats()
    assert (s["sent"], s["rejected"], s["retries"], s["spool_batches"]) == (10, 1, 0, 0)
    notices = r.take_notices()
    splits = [f["into"] for kind, f in notices if kind == "batch_split"]
    assert splits == [[5, 5], [2, 3], [2, 3]]
    [refused] = [f for kind, f in notices if kind == "batch_refused"]
    assert refused["status"] == 413 and refused["events"] == 1 and "larger than 8192 bytes" in refused["error"]


def test_a_stuck_backend_never_holds_the_writer_and_a_stop_spools_everything_it_held(tmp_path):
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(16)  # accepts connections, never answers
    url = f"http://127.0.0.1:{stuck.getsockname()[1]}"
    try:
        r = HTTPReporter(url, "ocws_a_b", spool_dir=tmp_path / "spool", batch_max_events=10, timeout=2,
                         check_key=False, queue_batches=2, drain_seconds=0.5)
        written = threading.Event()

        def write() -> None:
            for line in lines("h", 100):
                r.write(line)
            written.set()

        threading.Thread(target=write).start()
        # the sender waits for an answer to its first batch; the writer goes on, the queue overflows to the spool
        assert written.wait(30)
        assert r.stats()["spool_batches"] >= 10 - 1 - 2  # all but the one in flight and the queue
        r.close()
    finally:
        stuck.close()
    files = sorted((tmp_path / "spool").glob("*.batch"))
    assert sum(int(p.name.split("-")[1]) for p in files) == 100  # the batch in flight too
    assert [int(p.name.split("-")[0]) for p in files] == list(range(1, 11))
    assert r.stats()["dropped"] == 0


def test_an_http_url_to_another_machine_is_said_to_send_the_key_in_clear(tmp_path):
    r = HTTPReporter("http://192.0.2.1:8080", "ocws_a_b", spool_dir=tmp_path / "s", check_key=False, timeout=0.1)
    r.close()
    assert ("reporter_warning", {"warning": "the API key and the events cross the network in clear (http:// to a "
                                           "host that is not this machine): use https://"}) in r.take_notices()


def test_https_with_the_backends_certificate_trusted_through_ca_file_and_refused_without(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (tmp_path / "data").mkdir()
    b = Backend(tmp_path / "data", ["--tls-cert", str(cert), "--tls-key", str(key)], cafile=str(cert)).start()
    b.reader = b.key("read")
    try:
        assert b.url.startswith("https://")
        host = f"h-{uuid.uuid4().hex[:8]}"
        r = HTTPReporter(b.url, b.key("ingest"), spool_dir=tmp_path / "trusted", ca_file=cert)
        for line in lines(host, 5):
            r.write(line)
        r.close()
        assert stored_pids(b, host) == Counter(range(5))

        untrusting = HTTPReporter(b.url, b.key("ingest"), spool_dir=tmp_path / "untrusting")
        untrusting.write(lines(host, 1, start=100)[0])
        untrusting.close()
        [(_kind, said)] = [n for n in untrusting.take_notices() if n[0] == "reporter_error"][:1]
        assert "CERTIFICATE_VERIFY_FAILED" in said["error"] or "certificate verify failed" in said["error"], said
        assert untrusting.stats()["sent"] == 0 and untrusting.stats()["spool_batches"] == 1
    finally:
        b.stop()


def test_an_address_that_is_not_a_backend_stops_the_start(backend, tmp_path):
    with pytest.raises(ReporterError, match=rf"no backend intake at {backend.url}/elsewhere/api/v1/events \(404"):
        HTTPReporter(f"{backend.url}/elsewhere", backend.ingest, spool_dir=tmp_path / "s")


def test_a_spooled_batch_made_unreadable_by_hand_is_said_counted_and_not_retried(backend, tmp_path):
    from opencws.agent.spool import Spool

    spool = Spool(tmp_path / "spool", 1 << 20)
    path = spool.put(1, "k1", 4, b"x").path
    garbled = spool.put(2, "k2", 3, b'[{"not": "compressed"}]').path  # neither zstd nor gzip
    spool.close()
    path.unlink()
    path.mkdir()  # where the batch was, something that is not one
    r = HTTPReporter(backend.url, backend.ingest, spool_dir=tmp_path / "spool")
    wait_until(lambda: r.stats()["spool_batches"] == 0)
    r.close()
    assert r.stats()["dropped"] == 7 and r.stats()["retries"] == 0
    errors = [f["error"] for kind, f in r.take_notices() if kind == "reporter_error"]
    assert errors == [f"spooled batch {path.name} cannot be read (Is a directory): its 4 events are dropped",
                      f"spooled batch {garbled.name} cannot be read (neither zstd nor gzip (it starts with 5b 7b "
                      "22 6e)): its 3 events are dropped"]


# ---------------------------------------------------------------------- the coding of the bodies (zstd, gzip)


class Relay:
    """A small HTTP server on 127.0.0.1 in front of a real backend: it records the coding and key of each
    `POST /api/v1/events`, and answers 415 to zstd as a backend older than zstd does (`refuse_zstd`); everything
    else goes through to the backend, whose answer it returns."""

    def __init__(self, backend_url: str, *, refuse_zstd: bool):
        relay = self
        self.posts: list[tuple[str | None, str | None, int]] = []  # (Content-Encoding, Idempotency-Key, status)
        self._upstream = urllib3.connection_from_url(backend_url, retries=False, timeout=60)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                coding = self.headers.get("Content-Encoding")
                if refuse_zstd and coding == "zstd":
                    status, data = 415, orjson.dumps({"detail": "unsupported Content-Encoding 'zstd' (gzip or "
                                                                "identity)"})
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    r = relay._upstream.urlopen("POST", self.path, body=body, headers=headers)
                    status, data = r.status, r.data
                if self.path.endswith("/api/v1/events") and body != b"[]":
                    relay.posts.append((coding, self.headers.get("Idempotency-Key"), status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._upstream.close()


@pytest.fixture
def relay(backend):
    r = Relay(backend.url, refuse_zstd=False)
    yield r
    r.close()


@pytest.fixture
def old_backend(backend):
    r = Relay(backend.url, refuse_zstd=True)
    yield r
    r.close()


def test_batches_go_out_as_zstd_by_default_and_as_gzip_when_configured(backend, relay, tmp_path):
    for compression, expected in ((None, "zstd"), ("gzip", "gzip"), ("zstd", "zstd")):
        host = f"h-{uuid.uuid4().hex[:8]}"
        relay.posts.clear()
        kw = {} if compression is None else {"compression": compression}
        r = HTTPReporter(relay.url, backend.ingest, spool_dir=tmp_path / f"spool-{compression}", batch_max_events=10,
                         batch_max_wait=0.1, **kw)
        for line in lines(host, 25):
            r.write(line)
        wait_until(lambda r=r: settled(r), what="the batches to be acknowledged")
        r.close()
        assert stored_pids(backend, host) == Counter(range(25))
        assert [(coding, status) for coding, _, status in relay.posts] == [(expected, 200)] * 3, relay.posts


def test_the_spool_keeps_the_bodies_as_posted_and_tells_their_coding_by_their_first_bytes(backend, relay, tmp_path):
    """A spool left by an older agent (gzip bodies) beside zstd ones: each is replayed with its own coding."""
    host = f"h-{uuid.uuid4().hex[:8]}"
    dead = f"http://127.0.0.1:{free_port()}"
    spool = tmp_path / "spool"
    older = HTTPReporter(dead, "ocws_x_y", spool_dir=spool, batch_max_events=10, check_key=False,
                         compression="gzip")
    for line in lines(host, 20):
        older.write(line)
    older.close()
    newer = HTTPReporter(dead, "ocws_x_y", spool_dir=spool, batch_max_events=10, check_key=False)
    for line in lines(host, 10, start=20):
        newer.write(line)
    newer.close()
    files = sorted(spool.glob("*.batch"))
    assert [p.read_bytes()[:4] for p in files] == [b"\x1f\x8b\x08\x00"] * 2 + [b"\x28\xb5\x2f\xfd"]
    keys = [p.name.rsplit("-", 1)[1].removesuffix(".batch") for p in files]

    r = HTTPReporter(relay.url, backend.ingest, spool_dir=spool)
    wait_until(lambda: settled(r), what="the replay")
    r.close()
    assert stored_pids(backend, host) == Counter(range(30))
    assert relay.posts == [("gzip", keys[0], 200), ("gzip", keys[1], 200), ("zstd", keys[2], 200)]
    assert r.stats()["replayed_batches"] == 3


def test_a_backend_that_refuses_zstd_gets_each_batch_again_as_gzip_and_nothing_is_lost(
        backend, old_backend, tmp_path):
    host = f"h-{uuid.uuid4().hex[:8]}"
    spool = tmp_path / "spool"
    dead = f"http://127.0.0.1:{free_port()}"
    before = HTTPReporter(dead, "ocws_x_y", spool_dir=spool, batch_max_events=10, check_key=False)
    for line in lines(host, 10):
        before.write(line)
    before.close()  # a zstd batch waits in the spool: it is replayed first, and refused
    [spooled] = spool.glob("*.batch")
    assert spooled.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"

    r = HTTPReporter(old_backend.url, backend.ingest, spool_dir=spool, batch_max_events=10, batch_max_wait=0.1)
    wait_until(lambda: r.stats()["replayed_batches"] == 1, what="the spooled batch")
    for line in lines(host, 25, start=10):
        r.write(line)
    wait_until(lambda: settled(r), what="the batches to be acknowledged")
    r.close()
    assert stored_pids(backend, host) == Counter(range(35))
    posts = old_backend.posts
    first_key = spooled.name.rsplit("-", 1)[1].removesuffix(".batch")
    assert posts[:2] == [("zstd", first_key, 415), ("gzip", first_key, 200)]  # at once, with the same key
    assert [(coding, status) for coding, _, status in posts[2:]] == [("gzip", 200)] * 3  # never zstd again
    s = r.stats()
    assert (s["sent"], s["rejected"], s["dropped"], s["spool_batches"]) == (35, 0, 0, 0)
    notices = r.take_notices()
    assert [kind for kind, _ in notices if kind in ("zstd_refused", "batch_refused", "reporter_error")] == \
        ["zstd_refused"]
    [said] = [f for kind, f in notices if kind == "zstd_refused"]
    assert said["compression"] == "gzip" and said["batch"] == first_key
    assert said["error"] == "unsupported Content-Encoding 'zstd' (gzip or identity)"
    assert r.compression == "gzip"


def test_rule_ids_and_splits_read_spooled_gzip_and_zstd_batches(tmp_path):
    """An older agent's gzip batches in the spool: one with an invalid event (its rule said from the gzip body),
    one too large for the backend (split, its halves spooled as zstd and one of them with an invalid event)."""
    config = tmp_path / "backend.yaml"
    config.write_text("max_events_per_request: 3\n")
    b = Backend(tmp_path / "data", ["--config", str(config)]).start()
    b.reader = b.key("read")
    host = f"h-{uuid.uuid4().hex[:8]}"
    todo = lines(host, 8)
    for i in (1, 6):
        bad = orjson.loads(todo[i])
        bad["rule_id"] = f"broken_{i}"
        bad["event"]["process"]["pid"] = "x"
        todo[i] = orjson.dumps(bad)
    spool = tmp_path / "spool"
    older = HTTPReporter(f"http://127.0.0.1:{free_port()}", "ocws_x_y", spool_dir=spool, batch_max_events=3,
                         check_key=False, compression="gzip")
    for line in todo[:3]:
        older.write(line)
    older.close()
    older = HTTPReporter(f"http://127.0.0.1:{free_port()}", "ocws_x_y", spool_dir=spool, batch_max_events=5,
                         check_key=False, compression="gzip")
    for line in todo[3:]:
        older.write(line)
    older.close()
    assert {p.read_bytes()[:2] for p in spool.glob("*.batch")} == {b"\x1f\x8b"}
    try:
        r = HTTPReporter(b.url, b.key("ingest"), spool_dir=spool)
        wait_until(lambda: settled(r), what="the replay")
        r.close()
        found = stored_pids(b, host)
    finally:
        b.stop()
    assert found == Counter([0, 2, 3, 4, 5, 7])
    s = r.stats()
    assert (s["sent"], s["rejected"], s["dropped"]) == (6, 2, 0)
    notices = r.take_notices()
    assert [f["into"] for kind, f in notices if kind == "batch_split"] == [[2, 3]]
    rejected = [(f["rejected"][0]["index"], f["rejected"][0]["rule_id"]) for kind, f in notices
                if kind == "events_rejected"]
    assert rejected == [(1, "broken_1"), (1, "broken_6")]  # 6 is the second event of the second half (5, 6, 7)


def test_an_unknown_compression_is_refused():
    with pytest.raises(ValueError, match=r"unknown compression 'br' \(expected zstd or gzip\)"):
        HTTPReporter("http://127.0.0.1:9", "ocws_a_b", spool_dir="/nonexistent", compression="br", check_key=False)
