"""CWS events to the backend over HTTP(S): batches, zstd (or gzip), `POST /api/v1/events`, retries, and a spool
on disk.

The pipeline's thread only appends lines to the open batch (`write`). A batch is sealed when it holds
`batch_max_events` events or `batch_max_bytes` bytes, or when its first line has waited `batch_max_wait` seconds,
and handed through a bounded queue to the reporter's own thread, which compresses it and posts it with an
`Idempotency-Key` of its own, kept across every retry and restart: the backend answers a batch it already stored
with its first answer, so nothing is stored twice.

Bodies are zstd (`opencws.agent.batch_coding`: several times cheaper than gzip to make and to decode, and smaller),
or gzip with `compression: gzip`. A backend (or a proxy) that answers 415 to a zstd body is said once
(`zstd_refused`), the reporter uses gzip for the rest of its life, and the batch is sent again at once as gzip
with the same key: its events are neither refused nor lost. A spooled body's coding is read from its first
bytes, so the batches an older agent spooled (gzip) go out with their own `Content-Encoding`.

A batch the backend did not acknowledge goes to the spool (`opencws.agent.spool`: files on disk, bounded in bytes).
The oldest spooled batch is retried with exponential backoff and jitter; while the spool holds batches every new
one goes there too, so batches reach the backend in the order they were made (their sequence number). When the
queue is full (the sender is held up by a slow request) the pipeline's thread spools the batch itself: it never
waits on the network. At a stop, what is still in memory is sent if the backend answers and the spool is empty,
and spooled otherwise; the next start replays the spool first.

An answer:
- 200: stored. Events the backend rejected (invalid, with their index and reasons) are counted and said
  (self-event `events_rejected`), never sent again.
- 413 (too large: bytes or events) for a batch of several events: it is split in two halves that take its place in
  the order (`batch_split`), each split again if need be.
- 400, 415 (but to zstd: see above), 422, and 413 for a single event: the backend refused the body itself;
  sending it again would change nothing: its events are counted as rejected and said (`batch_refused`).
- 401, 403 (the key), 408, 409 (the same batch is still being stored), 429 and 5xx, and every transport error
  (refused connection, timeout, TLS): retried; the batch waits in the spool. `Retry-After` is honoured.

A batch the spool has no room for is dropped: its events are counted (`dropped`, self-event `events_dropped` with
the exact count), never silently.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import orjson
import urllib3

from opencws import __version__
from opencws.agent import batch_coding as bc
from opencws.agent.batch_coding import BatchCodingError
from opencws.agent.line_writer import ReporterError
from opencws.agent.spool import Spool, SpooledBatch, SpoolError, SpoolFull

EVENTS_PATH = "/api/v1/events"
QUEUE_BATCHES = 8
"""Sealed batches waiting for the sender in memory; past that they go to the spool."""
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 5.0
DRAIN_S = 10.0
"""At a stop, how long the in-memory batches may take to reach the backend before they are spooled."""
REFUSED = frozenset({400, 413, 415, 422})
"""Answers about the body itself: retrying the same body cannot succeed."""
KEY_REFUSED = frozenset({401, 403})
MAX_ERRORS_SAID = 20
"""Rejected events listed one by one in an `events_rejected` self-event (all are counted)."""

DEFAULT_BATCH_MAX_EVENTS = 2000
DEFAULT_BATCH_MAX_BYTES = 8 << 20
DEFAULT_BATCH_MAX_WAIT_S = 1.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_SPOOL_MAX_BYTES = 1 << 30


class _Batch:
    """A batch in memory (its lines) or in the spool (its file)."""

    __slots__ = ("_body", "events", "key", "lines", "seq", "spooled")

    def __init__(self, seq: int, key: str, events: int, lines: list[bytes] | None = None,
                 spooled: SpooledBatch | None = None):
        self.seq = seq
        self.key = key
        self.events = events
        self.lines = lines
        self.spooled = spooled
        self._body: bytes | None = None

    @classmethod
    def of(cls, spooled: SpooledBatch) -> _Batch:
        return cls(spooled.seq, spooled.key, spooled.events, spooled=spooled)

    def body(self, spool: Spool, coding: str) -> bytes:
        """The body, compressed once with `coding` (or read from the spool, in the coding it was written with)."""
        if self._body is None:
            if self.lines is not None:
                self._body = bc.compress(self.lines, coding)
            else:
                assert self.spooled is not None
                self._body = spool.read(self.spooled)
        return self._body

    def rule_ids(self, spool: Spool, coding: str) -> list[str | None]:
        """The rule id of each event, by index (to say which events the backend rejected)."""
        lines = self.lines
        if lines is None:
            lines = bc.lines_of(self.body(spool, coding))
        out: list[str | None] = []
        for line in lines:
            if line:
                try:
                    out.append(orjson.loads(line).get("rule_id"))
                except (orjson.JSONDecodeError, AttributeError):
                    out.append(None)
        return out


class HTTPReporter:
    """Sends JSON lines to a backend's `POST /api/v1/events` (see the module's documentation)."""

    def __init__(self, url: str, api_key: str, *, spool_dir: str | Path,
                 spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
                 batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS, batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES,
                 batch_max_wait: float = DEFAULT_BATCH_MAX_WAIT_S, timeout: float = DEFAULT_TIMEOUT_S,
                 ca_file: str | Path | None = None, check_key: bool = True,
                 queue_batches: int = QUEUE_BATCHES, drain_seconds: float = DRAIN_S,
                 compression: str = bc.ZSTD):
        """`check_key`: post an empty batch at once, so that a key the backend refuses stops the start
        (`ReporterError`); an unreachable backend does not (events wait in the spool). `compression`: zstd or
        gzip."""
        if not api_key:
            raise ValueError(f"output {url}: no API key")
        if compression not in bc.CODINGS:
            raise ValueError(f"output {url}: unknown compression {compression!r} (expected "
                             f"{' or '.join(bc.CODINGS)})")
        if batch_max_events < 1 or batch_max_bytes < 1 or batch_max_wait <= 0 or timeout <= 0:
            raise ValueError("batch_max_events, batch_max_bytes, batch_max_wait and timeout must be > 0")
        self.name = url
        self.url = url.rstrip("/")
        self.batch_max_events = batch_max_events
        self.batch_max_bytes = batch_max_bytes
        self.batch_max_wait = batch_max_wait
        self.timeout = timeout
        self.queue_batches = queue_batches
        self.drain_seconds = drain_seconds
        self.compression = compression
        """The coding of new batches: `compression`, until a backend refuses zstd (then gzip for good)."""
        self._zstd_refused = False
        self._path = urllib3.util.parse_url(self.url).path or ""
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"opencws-agent/{__version__}",
            "Content-Type": "application/x-ndjson",
        }
        kw: dict[str, Any] = {}
        if self.url.startswith("https:") and ca_file is not None:
            kw["ca_certs"] = str(ca_file)
        self._pool = urllib3.connection_from_url(
            self.url, timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, timeout), read=timeout),
            retries=False, maxsize=1, block=False, **kw)
        try:
            self.spool = Spool(spool_dir, spool_max_bytes)
        except SpoolError as e:
            self._pool.close()
            raise ReporterError(self.name, None, str(e)) from None

        self._lock = threading.Lock()  # never held across I/O, never taken twice (`write` takes it as is: cheaper)
        self._cond = threading.Condition(self._lock)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._queue: deque[_Batch] = deque()
        self._seq = self.spool.next_seq
        self._closing = False
        self._closed = False
        self._drain_deadline = 0.0
        self._in_flight: _Batch | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._notices: list[tuple[str, dict[str, Any]]] = []
        self._failures_unsaid = 0
        self._dropped_unsaid = 0
        self.last_error: str | None = None
        # running totals (stats(), metrics)
        self.sent = 0
        self.sent_batches = 0
        self.replayed_batches = 0
        self.retries = 0
        self.spooled = 0
        self.rejected = 0
        self.dropped = 0

        if len(self.spool):
            self._notice("spool_replay", batches=len(self.spool), events=self.spool.events,
                         bytes=self.spool.bytes, spool=str(self.spool.directory))
        if self.spool.unknown_files:
            self._notice("reporter_error", error=f"spool {self.spool.directory}: files that are not batches are "
                                                 f"left alone: {', '.join(sorted(self.spool.unknown_files)[:10])}")
        if _in_clear(self.url):
            self._notice("reporter_warning", warning="the API key and the events cross the network in clear "
                                                     "(http:// to a host that is not this machine): use https://")
        if check_key:
            try:
                self.check()
            except ReporterError:
                self.spool.close()
                self._pool.close()
                raise
        self._thread = threading.Thread(target=self._run, name=f"reporter {self.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the Reporter interface

    def write(self, line: bytes) -> None:
        """Append to the open batch (the pipeline's thread: never waits on the network)."""
        with self._lock:
            if self._closed:
                raise ReporterError(self.name, None, "the reporter is closed")
            pending = self._pending
            if not pending:
                self._pending_since = time.monotonic()
                self._cond.notify()  # the sender now has a deadline to seal this batch by
            pending.append(line)
            self._pending_bytes += len(line) + 1
            if len(pending) < self.batch_max_events and self._pending_bytes < self.batch_max_bytes:
                return
            batch = self._seal()
            if len(self._queue) < self.queue_batches:
                self._queue.append(batch)
                self._cond.notify()
                return
        self._spool(batch)  # the sender is held up: to disk, in order by sequence number

    def flush(self) -> None:
        """Nothing to do: batches are sealed by size and by age (`batch_max_wait`)."""

    def close(self) -> None:
        """Send what is in memory (for at most `drain_seconds`) or spool it; then release the spool."""
        with self._cond:
            if self._closed:
                return
            self._closed = self._closing = True
            self._drain_deadline = time.monotonic() + self.drain_seconds
            self._cond.notify_all()
        self._thread.join(self.drain_seconds + self.timeout + 1)
        if self._thread.is_alive():  # stuck in a request: what it holds is spooled (the key makes a resend safe)
            with self._cond:
                rest = list(self._queue)
                self._queue.clear()
                if self._pending:
                    rest.append(self._seal())
                stuck = self._in_flight
            if stuck is not None and stuck.spooled is None:
                rest.insert(0, stuck)
            for b in rest:
                self._spool(b)
        if len(self.spool):
            self._notice("spooled_at_stop", batches=len(self.spool), events=self.spool.events,
                         bytes=self.spool.bytes, spool=str(self.spool.directory))
        self.spool.close()
        self._pool.close()

    def stats(self) -> dict[str, int | str | None]:
        with self._cond:
            held = self._in_flight
            waiting = len(self._pending) + sum(b.events for b in self._queue)
            if held is not None and held.spooled is None:
                waiting += held.events
        return {
            "name": self.name,
            "sent": self.sent,
            "sent_batches": self.sent_batches,
            "replayed_batches": self.replayed_batches,
            "retries": self.retries,
            "spooled": self.spooled,
            "spool_batches": len(self.spool),
            "spool_bytes": self.spool.bytes,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "backlog_lines": waiting + self.spool.events,
            "last_error": self.last_error,
        }

    def take_notices(self) -> list[tuple[str, dict[str, Any]]]:
        """What happened since the last call, as (self-event kind, fields): repeated failures and drops are
        summed up in one notice each."""
        with self._cond:
            out, self._notices = self._notices, []
            if self._failures_unsaid:
                out.append(("reporter_error", {"error": self.last_error, "failures": self._failures_unsaid,
                                               **self._spool_state()}))
                self._failures_unsaid = 0
            if self._dropped_unsaid:
                out.append(("events_dropped", {"events": self._dropped_unsaid, "dropped_total": self.dropped,
                                               "reason": "the spool is full", "spool_max_bytes": self.spool.max_bytes,
                                               **self._spool_state()}))
                self._dropped_unsaid = 0
        return out

    # ------------------------------------------------------------------ the backend

    def check(self) -> None:
        """Post an empty batch: `ReporterError` when the backend refuses the key; an unreachable backend is
        said (events wait in the spool until it answers)."""
        try:
            r = self._pool.urlopen("POST", self._path + EVENTS_PATH, body=b"[]",
                                   headers={**self._headers, "Content-Type": "application/json",
                                            "Content-Encoding": "identity"},
                                   timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=self.timeout))
        except urllib3.exceptions.HTTPError as e:
            self.last_error = _transport_error(e)
            self._notice("reporter_error", error=f"the backend does not answer ({self.last_error}); events wait "
                                                 "in the spool until it does", failures=1)
            return
        if r.status in KEY_REFUSED:
            raise ReporterError(self.name, None, f"the backend refused the API key ({r.status} "
                                                 f"{_detail(r.data)}): check api_key or OPENCWS_API_KEY (an "
                                                 "ingest key: opencws backend keys create --scope ingest)")
        if r.status == 404:
            raise ReporterError(self.name, None, f"no backend intake at {self.url}{EVENTS_PATH} (404 "
                                                 f"{_detail(r.data)}): is it the backend's address?")
        if r.status != 200:
            self._notice("reporter_error", error=f"the backend answered {r.status} to an empty batch: "
                                                 f"{_detail(r.data)}", failures=1)

    def _post(self, body: bytes, key: str, coding: str) -> tuple[int, bytes, float | None] | str:
        """(status, body, Retry-After) or the transport error's text."""
        try:
            r = self._pool.urlopen("POST", self._path + EVENTS_PATH, body=body,
                                   headers={**self._headers, "Content-Encoding": coding, "Idempotency-Key": key})
        except urllib3.exceptions.HTTPError as e:
            return _transport_error(e)
        return r.status, r.data, _retry_after(r.headers.get("Retry-After"))

    def _send(self, batch: _Batch) -> bool:
        """Post one batch. True: done with it (stored, or refused for good); False: it waits in the spool."""
        try:
            body = batch.body(self.spool, self.compression)
            coding = bc.coding_of(body)
            if coding == bc.ZSTD and self._zstd_refused:  # spooled before the backend refused zstd
                body = batch._body = bc.recoded(body, bc.GZIP)
                coding = bc.GZIP
        except (OSError, BatchCodingError) as e:  # a spooled file removed or damaged by hand: said and counted
            assert batch.spooled is not None
            self.spool.remove(batch.spooled)
            with self._cond:
                self.dropped += batch.events
            why = getattr(e, "strerror", None) or e
            self._notice("reporter_error", error=f"spooled batch {batch.spooled.path.name} cannot be read "
                                                 f"({why}): its {batch.events} events are dropped")
            return True
        if self._failures:
            self.retries += 1
        answer = self._post(body, batch.key, coding)
        if isinstance(answer, str):
            return self._failed(batch, answer, None)
        status, data, retry_after = answer
        if status == 200:
            try:
                doc = orjson.loads(data)
                stored, rejected = int(doc["stored"]), list(doc["rejected"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return self._failed(batch, f"200 with an answer that is not the backend's: {data[:200]!r}", None)
            self.sent += stored
            self.sent_batches += 1
            if rejected:
                self._rejected(batch, rejected)
            self._done(batch)
            return True
        if status == 413 and batch.events > 1:
            self._split(batch, _detail(data))
            return True
        if status == 415 and coding == bc.ZSTD:
            self._refuse_zstd(_detail(data), batch.key)
            return self._send(batch)  # at once, as gzip, with the same key
        if status in REFUSED:
            self.rejected += batch.events
            self._notice("batch_refused", status=status, error=_detail(data), events=batch.events,
                         batch=batch.key)
            self._done(batch)
            return True
        error = f"{status} {_detail(data)}"
        if status in KEY_REFUSED:
            error = f"the backend refused the API key ({error})"
        return self._failed(batch, error, retry_after)

    def _refuse_zstd(self, why: str, key: str) -> None:
        """The backend (or a proxy before it) does not take zstd: gzip from now on, said once."""
        if not self._zstd_refused:
            self._zstd_refused = True
            self.compression = bc.GZIP
            self._notice("zstd_refused", error=why, batch=key, compression=bc.GZIP,
                         hint="the backend (or a proxy before it) does not accept Content-Encoding: zstd: the "
                              "agent sends gzip until it restarts (upgrade it, or set http.compression: gzip)")

    def _split(self, batch: _Batch, why: str) -> None:
        """A batch too large for the backend becomes two halves in its place in the spool (same sequence number,
        keys KEY-1 and KEY-2), each split again if need be: a single event too large is refused (`batch_refused`)."""
        lines = batch.lines
        if lines is None:
            lines = bc.lines_of(batch.body(self.spool, self.compression))
        half = len(lines) // 2
        for i, part in ((1, lines[:half]), (2, lines[half:])):
            self._spool(_Batch(batch.seq, f"{batch.key}-{i}", len(part), part))
        if batch.spooled is not None:
            self.spool.remove(batch.spooled)
        self._notice("batch_split", events=batch.events, into=[half, len(lines) - half], error=why,
                     hint="batch_max_events or batch_max_bytes above the backend's limits")

    def _done(self, batch: _Batch) -> None:
        if batch.spooled is not None:
            self.spool.remove(batch.spooled)
            self.replayed_batches += 1
        if self._failures:
            self._notice("reporter_recovered", after_failures=self._failures, **self._spool_state())
        self._failures = 0
        self._retry_at = 0.0

    def _failed(self, batch: _Batch, error: str, retry_after: float | None) -> bool:
        self._failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(self._failures - 1, 30))
        delay = random.uniform(delay / 2, delay)  # jitter: agents that lost one backend do not return in step
        if retry_after is not None:
            delay = max(delay, min(retry_after, BACKOFF_MAX_S * 10))
        self._retry_at = time.monotonic() + delay
        self.last_error = error
        if batch.spooled is None:
            self._spool(batch)
        with self._cond:
            if self._failures == 1:
                self._notices.append(("reporter_error", {"error": error, "failures": 1,
                                                         "retry_in_s": round(delay, 3), **self._spool_state()}))
            else:
                self._failures_unsaid += 1
        return False

    def _rejected(self, batch: _Batch, rejected: list[Any]) -> None:
        self.rejected += len(rejected)
        try:
            rules = batch.rule_ids(self.spool, self.compression)
        except (OSError, BatchCodingError):
            rules = []
        said = []
        for r in rejected[:MAX_ERRORS_SAID]:
            index = r.get("index") if isinstance(r, dict) else None
            rule = rules[index] if isinstance(index, int) and 0 <= index < len(rules) else None
            said.append({"index": index, "rule_id": rule, "errors": r.get("errors") if isinstance(r, dict) else r})
        self._notice("events_rejected", events=len(rejected), batch=batch.key, rejected=said)

    # ------------------------------------------------------------------ the sender's thread

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception as e:  # a defect: said, and the sender goes on (the batch it held was spooled)
                self._notice("reporter_error", error=f"the sender failed: {e!r}; it goes on in a second")
                time.sleep(1)

    def _step(self) -> bool:
        """One batch of the queue (sent, or spooled), else one of the spool (sent); False once stopped."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._pending and (self._closing or now - self._pending_since >= self.batch_max_wait):
                    self._queue.append(self._seal())
                backoff = self._retry_at > now
                if self._closing or self._queue or (len(self.spool) and not backoff):
                    break
                waits = []
                if self._pending:
                    waits.append(self._pending_since + self.batch_max_wait - now)
                if backoff and len(self.spool):
                    waits.append(self._retry_at - now)
                self._cond.wait(max(0.0, min(waits)) if waits else None)
            batch = self._in_flight = self._queue.popleft() if self._queue else None
            closing = self._closing
        if batch is not None:
            try:
                # Order: nothing overtakes a spooled batch; past the stop's deadline, nothing waits on the network.
                now = time.monotonic()
                if len(self.spool) or self._retry_at > now or (closing and now > self._drain_deadline):
                    self._spool(batch)
                else:
                    self._send(batch)
            except Exception:
                self._spool(batch)
                raise
            finally:
                self._in_flight = None
            return True
        if closing:
            return False  # the spool is replayed at the next start
        head = self.spool.head()
        if head is not None and self._retry_at <= time.monotonic():
            self._send(_Batch.of(head))
        return True

    # ------------------------------------------------------------------ helpers

    def _seal(self) -> _Batch:
        """The open batch, sealed (called with the lock held)."""
        batch = _Batch(self._seq, uuid.uuid4().hex, len(self._pending), self._pending)
        self._seq += 1
        self._pending = []
        self._pending_bytes = 0
        return batch

    def _spool(self, batch: _Batch) -> None:
        if batch.spooled is not None:
            return
        try:
            spooled = self.spool.put(batch.seq, batch.key, batch.events, batch.body(self.spool, self.compression))
            if spooled is None:
                return  # another thread is writing it (a stop while the sender is held up)
            batch.spooled = spooled
        except SpoolFull:
            self._drop(batch)
            return
        except (OSError, SpoolError) as e:
            self.last_error = f"cannot write the spool: {getattr(e, 'strerror', None) or e}"
            self._notice("reporter_error", error=self.last_error, events=batch.events)
            self._drop(batch)
            return
        batch.lines = None
        batch._body = None
        with self._cond:
            self.spooled += batch.events

    def _drop(self, batch: _Batch) -> None:
        with self._cond:
            self.dropped += batch.events
            self._dropped_unsaid += batch.events

    def _notice(self, kind: str, **fields: Any) -> None:
        with self._cond:
            self._notices.append((kind, fields))

    def _spool_state(self) -> dict[str, int]:
        return {"spool_batches": len(self.spool), "spool_bytes": self.spool.bytes}


def _in_clear(url: str) -> bool:
    u = urllib3.util.parse_url(url)
    if u.scheme != "http":
        return False
    host = (u.host or "").strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _transport_error(e: Exception) -> str:
    """What went wrong on the way, said plainly (`connection refused`, `no answer within 30 s`...)."""
    x = urllib3.exceptions
    if isinstance(e, x.NameResolutionError):
        return f"cannot resolve the backend's host name ({e.__context__ or e})"
    if isinstance(e, x.NewConnectionError):  # (before ConnectTimeoutError: it is one of them, for history)
        text = str(e).rsplit("new connection: ", 1)[-1]
        return "connection refused" if "Connection refused" in text else f"cannot connect: {text}"
    if isinstance(e, x.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(e, x.ReadTimeoutError):
        return f"no answer within the timeout ({e})"
    if isinstance(e, x.SSLError):
        return f"TLS: {e.__context__ or e}"
    if isinstance(e, x.ProtocolError) and len(e.args) > 1:
        return f"connection lost: {e.args[1]!r}"
    return f"{type(e).__name__}: {e}"


def _detail(data: bytes) -> str:
    """The backend's `detail` (FastAPI's error body), or the start of whatever answered."""
    try:
        doc = orjson.loads(data)
        if isinstance(doc, dict) and "detail" in doc:
            d = doc["detail"]
            return d if isinstance(d, str) else orjson.dumps(d).decode()[:500]
    except orjson.JSONDecodeError:
        pass
    return data[:200].decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the backend sends seconds; the backoff applies
