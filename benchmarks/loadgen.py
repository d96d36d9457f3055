"""Coordinated-omission-free HTTP/1.1 load generator for the HTTP benchmarks.

Two modes, both over raw HTTP/1.1 on asyncio streams with keep-alive connections:

* :func:`run_fixed_rate` — open loop. Request ``i`` is *scheduled* at ``t0 + i / rate`` and sent
  at that time on a free connection (a new one is opened, up to ``connections``, when all are
  busy; past that it queues). Its latency is measured from the **scheduled** time, so a stalled
  server shows up in the numbers instead of silently slowing the generator down (coordinated
  omission). The latency from the actual send (what a closed-loop tool would report) and the
  generator's own send lag are reported alongside, to judge the generator itself.
* :func:`run_saturation` — closed loop. Every connection sends its next request as soon as the
  previous response has arrived; reports throughput.

Requests are fully pre-built :class:`Request` objects (single-use tokens and DPoP proofs make
each one distinct), serialised to bytes before the run starts, so nothing is signed or encoded
during the measured window. The generator always runs in its own worker process(es) (spawned,
each with its own event loop — uvloop when installed — and garbage collection disabled during
the run), optionally pinned to one CPU so server and generator do not compete for a core.

Clock: ``time.monotonic`` (``CLOCK_MONOTONIC`` on Linux), which is system-wide, so a start time
chosen by the parent is valid in every worker.

Event-loop timers are only millisecond-accurate (measured here: sends ~0.3 ms late at the
median with uvloop, ~0.6 ms with plain asyncio), which would inflate sub-millisecond latencies.
So a worker that has a CPU to itself (``cpu=`` given, one process) busy-waits for the last
``spin`` seconds before each scheduled send, which makes sends accurate to a few microseconds
but keeps that CPU busy; unpinned or several workers sharing the CPU, spinning would steal time
from the server or the other workers, so it is off by default there.

Quick manual runs::

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/ --rate 1000 --duration 10
    python benchmarks/loadgen.py --url http://127.0.0.1:8000/ --saturate --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import os
import socket
import statistics
import sys
import time
import traceback
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "ProtocolError",
    "Request",
    "Result",
    "main",
    "read_response",
    "run_fixed_rate",
    "run_saturation",
    "summarize_runs",
]

Mode = Literal["fixed", "saturation"]

CLOCK: Callable[[], float] = time.monotonic
"""System-wide monotonic clock shared by the parent and every worker process."""

STREAM_LIMIT = 1 << 20
"""Largest response head (status line + headers) or chunk-size line accepted, in bytes."""

DEFAULT_SPIN = 0.002
"""Seconds of busy-waiting before each scheduled send (0 disables it)."""

HARD_DEADLINE_SLACK = 3.0
"""Seconds added to ``duration + timeout`` before a worker abandons whatever is still pending."""

STARTUP_TIMEOUT = 60.0
"""Seconds allowed for the worker processes to start and pre-open their connections."""

_NAN = float("nan")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_WRITE_DRAIN_THRESHOLD = 1 << 16


class ProtocolError(Exception):
    """The server sent something that is not a well-formed HTTP/1.x response."""


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """One fully pre-built HTTP request.

    ``path`` is the request target (path and query string). ``Host`` is added unless present in
    ``headers``; ``Content-Length`` is always computed from ``body`` (a caller-supplied one is
    rejected, as is ``Transfer-Encoding``). Header names and values must be latin-1 and free of
    control characters.
    """

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        """The request serialised as HTTP/1.1 bytes, with ``host`` as the default ``Host``."""
        if not self.method or not set(self.method) <= _TOKEN_CHARS:
            raise ValueError(f"invalid HTTP method {self.method!r}")
        if not self.path or _has_bad_chars(self.path, allowed=""):
            raise ValueError(f"invalid request target {self.path!r}")
        lines = [f"{self.method} {self.path} HTTP/1.1"]
        has_host = False
        for name, value in self.headers.items():
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError(f"invalid header name {name!r}")
            if _has_bad_chars(value, allowed=" \t"):
                raise ValueError(f"invalid value for header {name!r}")
            lowered = name.lower()
            if lowered in ("content-length", "transfer-encoding"):
                raise ValueError(f"{name} is computed by the load generator; do not set it")
            has_host = has_host or lowered == "host"
            lines.append(f"{name}: {value}")
        if not has_host:
            lines.insert(1, f"Host: {host}")
        if self.body or self.method not in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE"):
            lines.append(f"Content-Length: {len(self.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + self.body if self.body else head


def _has_bad_chars(text: str, *, allowed: str) -> bool:
    """Whitespace or control characters not in ``allowed``, or non-latin-1 characters."""
    return any((c <= " " or c == "\x7f" or c > "\xff") and c not in allowed for c in text)


def _encode_all(requests: Sequence[Request], host: str) -> tuple[list[bytes], list[bool]]:
    """Serialise every request once (identical objects share one bytes object)."""
    cache: dict[int, bytes] = {}
    raws: list[bytes] = []
    heads: list[bool] = []
    for request in requests:
        raw = cache.get(id(request))
        if raw is None:
            raw = cache[id(request)] = request.encode(host)
        raws.append(raw)
        heads.append(request.method == "HEAD")
    return raws, heads


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def _header_values(lower_head: bytes, name: bytes) -> list[bytes]:
    """Stripped values of every ``name`` field in a lower-cased response head.

    A plain substring search: much cheaper than splitting every header line, which matters at
    tens of thousands of responses per second.
    """
    key = b"\r\n" + name + b":"
    values: list[bytes] = []
    pos = lower_head.find(key)
    while pos >= 0:
        start = pos + len(key)
        end = lower_head.find(b"\r\n", start)
        values.append(lower_head[start:end].strip())
        pos = lower_head.find(key, end)
    return values


def _parse_head(head: bytes) -> tuple[int, bool, int | None, bool]:
    """Parse a response head (ending in a blank line): status, keep-alive, length, chunked."""
    code = head[9:12]
    if (
        not head.startswith(b"HTTP/1.")
        or head[8:9] != b" "
        or not code.isdigit()
        or head[12:13] not in (b" ", b"\r")
    ):
        status_line = head.split(b"\r\n", 1)[0]
        raise ProtocolError(f"bad status line {status_line[:80]!r}")
    status = int(code)
    http10 = head[7:8] == b"0"
    keep_alive = not http10
    lower = head.lower()
    length: int | None = None
    for value in _header_values(lower, b"content-length"):
        if not value.isdigit():
            raise ProtocolError(f"bad Content-Length {value[:40]!r}")
        if length is not None and length != int(value):
            raise ProtocolError("conflicting Content-Length headers")
        length = int(value)
    codings = [
        token.strip()
        for value in _header_values(lower, b"transfer-encoding")
        for token in value.split(b",")
        if token.strip()
    ]
    for value in _header_values(lower, b"connection"):
        tokens = {token.strip() for token in value.split(b",")}
        if b"close" in tokens:
            keep_alive = False
        elif b"keep-alive" in tokens and http10:
            keep_alive = True
    chunked = bool(codings) and codings[-1] == b"chunked"
    if codings:
        length = None  # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
    return status, keep_alive, length, chunked


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_field = line[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_field[:40]!r}") from None
        if size < 0:
            raise ProtocolError("negative chunk size")
        if size == 0:
            break
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise ProtocolError("chunk not terminated by CRLF")
        parts.append(chunk[:-2])
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer section
        pass
    return b"".join(parts)


async def _finish_response(
    reader: asyncio.StreamReader, head: bytes, *, head_request: bool
) -> tuple[int, bool, bytes]:
    """Read the rest of a response whose first head has already been read."""
    status, keep_alive, length, chunked = _parse_head(head)
    while 100 <= status < 200 and status != 101:  # interim responses carry no body
        status, keep_alive, length, chunked = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    if status == 101:
        return status, False, b""
    if head_request or status in (204, 304):
        return status, keep_alive, b""
    if chunked:
        return status, keep_alive, await _read_chunked(reader)
    if length is not None:
        return status, keep_alive, (await reader.readexactly(length) if length else b"")
    # Neither chunked nor Content-Length: the body runs until the server closes.
    return status, False, await reader.read(-1)


async def read_response(
    reader: asyncio.StreamReader, *, head_request: bool = False
) -> tuple[int, bool, bytes]:
    """Read one complete HTTP/1.x response: ``(status, keep_alive, body)``.

    Handles ``Content-Length``, chunked transfer coding (extensions and trailers included),
    bodies delimited by connection close, bodiless responses (HEAD, 204, 304) and interim 1xx
    responses. ``keep_alive`` is false when the connection cannot be reused.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    return await _finish_response(reader, head, head_request=head_request)


# ---------------------------------------------------------------------------------------------
# Worker process
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _WorkerSpec:
    mode: Mode
    host: str
    port: int
    raws: list[bytes]
    heads: list[bool]
    first_index: int
    stride: int
    rate: float
    connections: int
    timeout: float
    duration_limit: float
    spin: float
    cpu: int | None
    use_uvloop: bool


class _Conn:
    """An open keep-alive connection, registered in its worker's set of open writers."""

    __slots__ = ("open_writers", "reader", "writer")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        open_writers: set[asyncio.StreamWriter],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.open_writers = open_writers
        open_writers.add(writer)

    def close(self) -> None:
        self.writer.close()
        self.open_writers.discard(self.writer)


class _Slot:
    """One logical client connection: its current keep-alive connection, if any, and the
    deadline of the request in flight on it (enforced by the worker's watchdog)."""

    __slots__ = ("conn", "deadline", "expired")

    def __init__(self, conn: _Conn | None = None) -> None:
        self.conn = conn
        self.deadline = math.inf
        self.expired = False

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _ConnectError(Exception):
    """Opening a connection failed."""


class _Worker:
    """One process's share of a run: its requests, connections and measurements."""

    def __init__(self, spec: _WorkerSpec) -> None:
        self.spec = spec
        n = len(spec.raws)
        self.n = n
        self.latency = array("d", [_NAN]) * n
        self.service = array("d", [_NAN]) * n
        self.lag = array("d", [_NAN]) * n
        self.sched = array("d", [0.0]) * n
        self.status_counts: dict[int, int] = {}
        self.error_kinds: dict[str, int] = {}
        self.sent = 0
        self.completed = 0
        self.opened = 0
        self.last_end = 0.0
        self.preopened: list[_Conn] = []
        self.open_writers: set[asyncio.StreamWriter] = set()
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.idle = 0
        self.nworkers = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.slots: list[_Slot] = []
        self.stop_at = math.inf
        self.next_index = 0

    # -- connections -----------------------------------------------------------------------

    async def open(self, deadline: float) -> _Conn:
        try:
            async with asyncio.timeout(max(deadline - CLOCK(), 0.0)):
                reader, writer = await asyncio.open_connection(
                    self.spec.host, self.spec.port, limit=STREAM_LIMIT
                )
        except TimeoutError:
            raise
        except OSError as exc:
            raise _ConnectError(str(exc)) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened += 1
        return _Conn(reader, writer, self.open_writers)

    async def preopen(self, count: int) -> None:
        for _ in range(count):
            self.preopened.append(await self.open(CLOCK() + self.spec.timeout))

    async def close_all(self) -> None:
        writers = list(self.open_writers)
        self.open_writers.clear()
        for writer in writers:
            writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await asyncio.sleep(0.01)  # let connections dropped earlier finish closing

    async def exchange(self, slot: _Slot, j: int) -> tuple[float, int]:
        """Send request ``j`` on ``slot`` and read its full response: (sent at, status).

        A connection that was already open (so may have been closed by the server while idle)
        and fails with EOF or reset before any response byte is replaced by a new one, and the
        request is re-sent once.
        """
        raw = self.spec.raws[j]
        first_attempt = True
        while True:
            conn = slot.conn
            if conn is not None and conn.reader.at_eof():
                slot.drop()
                conn = None
            reused = conn is not None
            if conn is None:
                conn = slot.conn = await self.open(slot.deadline)
            sent_at = CLOCK()
            conn.writer.write(raw)
            if first_attempt:
                self.sent += 1
            if len(raw) > _WRITE_DRAIN_THRESHOLD:
                await conn.writer.drain()
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                stale = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and stale and first_attempt and not slot.expired:
                    slot.drop()
                    first_attempt = False
                    continue
                raise
            status, keep_alive, _ = await _finish_response(
                conn.reader, head, head_request=self.spec.heads[j]
            )
            if not keep_alive:
                slot.drop()
            return sent_at, status

    def error(self, kind: str) -> None:
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    @staticmethod
    def classify(exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return "timeout"
        if isinstance(exc, _ConnectError):
            return "connect"
        if isinstance(exc, ProtocolError | asyncio.LimitOverrunError):
            return "protocol"
        if isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
            return "closed"
        return type(exc).__name__

    async def attempt(self, slot: _Slot, j: int, start: float | None, deadline: float) -> None:
        """Run request ``j`` on ``slot`` until ``deadline`` at most and record the outcome.

        Latency counts from ``start`` (the scheduled time) or, when it is None, from the send.
        """
        slot.deadline = deadline
        slot.expired = False
        try:
            sent_at, status = await self.exchange(slot, j)
        except (OSError, EOFError, ProtocolError, asyncio.LimitOverrunError, _ConnectError) as exc:
            # The connection's state is unknown: drop it.
            self.error("timeout" if slot.expired else self.classify(exc))
            slot.drop()
            return
        finally:
            slot.deadline = math.inf
        end = CLOCK()
        self.completed += 1
        self.last_end = end
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        if start is None:
            start = sent_at
        self.latency[j] = end - start
        self.service[j] = end - sent_at
        self.lag[j] = sent_at - start

    async def watchdog(self) -> None:
        """Abort the connection of every request past its deadline.

        One periodic check instead of a timer per request keeps the per-request overhead low;
        timeouts are therefore enforced to within ``period`` seconds.
        """
        period = min(0.05, self.spec.timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = CLOCK()
            for slot in self.slots:
                if slot.deadline <= now and not slot.expired:
                    slot.expired = True
                    if slot.conn is not None:
                        slot.conn.writer.transport.abort()

    def record_abort(self, attempted: int) -> None:
        unfinished = attempted - self.completed - sum(self.error_kinds.values())
        if unfinished > 0:
            self.error_kinds["aborted"] = unfinished

    # -- fixed rate ------------------------------------------------------------------------

    async def run_fixed(self, t0: float) -> None:
        spec = self.spec
        for j in range(self.n):
            self.sched[j] = t0 + (spec.first_index + j * spec.stride) / spec.rate
        hard = t0 + self.n * spec.stride / spec.rate + spec.timeout + HARD_DEADLINE_SLACK
        for conn in self.preopened:
            self.spawn(conn)
        self.preopened.clear()
        self.tasks.append(asyncio.create_task(self.watchdog()))
        try:
            async with asyncio.timeout(max(hard - CLOCK(), 0.0)):
                await self.schedule()
                await self.queue.join()
        except TimeoutError:
            self.record_abort(self.n)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def spawn(self, conn: _Conn | None) -> None:
        self.nworkers += 1
        self.idle += 1  # idle from creation until it takes its first request
        slot = _Slot(conn)
        self.slots.append(slot)
        self.tasks.append(asyncio.create_task(self.connection_loop(slot)))

    async def schedule(self) -> None:
        spin = self.spec.spin
        queue = self.queue
        limit = self.spec.connections
        sleep = asyncio.sleep
        for j in range(self.n):
            target = self.sched[j]
            delay = target - CLOCK()
            if delay > spin:
                await sleep(delay - spin)
            elif delay <= 0:
                await sleep(0)  # behind schedule: still let responses be processed
            while CLOCK() < target:
                await sleep(0)
            queue.put_nowait(j)
            if queue.qsize() > self.idle and self.nworkers < limit:
                self.spawn(None)

    async def connection_loop(self, slot: _Slot) -> None:
        queue = self.queue
        timeout = self.spec.timeout
        try:
            while True:
                j = await queue.get()
                self.idle -= 1
                try:
                    start = self.sched[j]
                    if CLOCK() >= start + timeout:
                        self.error("timeout")  # waited for a connection past its deadline
                    else:
                        await self.attempt(slot, j, start, start + timeout)
                finally:
                    self.idle += 1
                    queue.task_done()
        finally:
            slot.drop()

    # -- saturation ------------------------------------------------------------------------

    async def run_saturation(self, t0: float) -> None:
        spec = self.spec
        self.stop_at = t0 + spec.duration_limit
        hard = self.stop_at + spec.timeout + HARD_DEADLINE_SLACK
        delay = t0 - CLOCK()
        if delay > 0:
            await asyncio.sleep(delay)
        slots = [_Slot(conn) for conn in self.preopened]
        slots += [_Slot() for _ in range(spec.connections - len(slots))]
        self.preopened.clear()
        self.slots = slots
        loops = [asyncio.create_task(self.closed_loop(slot)) for slot in slots]
        self.tasks = [*loops, asyncio.create_task(self.watchdog())]
        try:
            async with asyncio.timeout(max(hard - CLOCK(), 0.0)):
                await asyncio.gather(*loops)
        except TimeoutError:
            self.record_abort(self.next_index)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def closed_loop(self, slot: _Slot) -> None:
        timeout = self.spec.timeout
        try:
            while self.next_index < self.n and CLOCK() < self.stop_at:
                j = self.next_index
                self.next_index += 1
                await self.attempt(slot, j, None, CLOCK() + timeout)
        finally:
            slot.drop()

    # -- report ----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "service": self.service,
            "lag": self.lag,
            "status_counts": self.status_counts,
            "error_kinds": {k: v for k, v in self.error_kinds.items() if v},
            "sent": self.sent,
            "completed": self.completed,
            "opened": self.opened,
            "last_end": self.last_end,
        }


def _worker_entry(pipe: Connection, spec: _WorkerSpec) -> None:
    """Process entry point: prepare, report ready, wait for ``t0``, run, report results."""
    try:
        if spec.cpu is not None:
            os.sched_setaffinity(0, {spec.cpu})
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        if spec.use_uvloop:
            try:
                import uvloop
            except ImportError:
                pass
            else:
                loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            worker = runner.run(_make_worker(spec))
            try:
                preopen = 1 if spec.mode == "fixed" else spec.connections
                runner.run(worker.preopen(min(preopen, spec.connections, max(worker.n, 1))))
                pipe.send(("ready", None))
                t0 = pipe.recv()
                gc.collect()
                gc.disable()
                try:
                    if spec.mode == "fixed":
                        runner.run(worker.run_fixed(t0))
                    else:
                        runner.run(worker.run_saturation(t0))
                finally:
                    gc.enable()
            finally:
                runner.run(worker.close_all())
        pipe.send(("done", worker.report()))
    except _ConnectError as exc:
        with contextlib.suppress(OSError):
            pipe.send(("connect_error", f"cannot connect to {spec.host}:{spec.port}: {exc}"))
    except BaseException:
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


async def _make_worker(spec: _WorkerSpec) -> _Worker:
    return _Worker(spec)  # built inside the worker's event loop, like its asyncio.Queue


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    """Outcome of one run.

    Latency percentiles (nearest rank, milliseconds) cover completed requests only; failures
    are counted in ``errors`` / ``error_kinds`` (``timeout``: no complete response within
    ``timeout`` of the scheduled time — time spent waiting for a connection included — in
    fixed-rate mode, of the send in saturation mode;
    ``connect``; ``closed``: connection closed or reset mid-exchange; ``protocol``; ``aborted``:
    cut off by the hard deadline). In fixed-rate mode latency counts from the *scheduled* send
    time; ``service_*`` count from the actual send (what a closed-loop tool would report, hiding
    queueing) and ``send_lag_*`` is actual minus scheduled send time (the generator's own
    lateness plus waiting for a free connection). In saturation mode all three views coincide
    with latency from the actual send, and the lag is zero.
    """

    mode: str
    requested: int
    sent: int
    completed: int
    errors: int
    error_kinds: dict[str, int]
    status_counts: dict[int, int]
    wall_time_s: float
    achieved_rate: float
    target_rate: float | None
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    service_p50_ms: float
    service_p99_ms: float
    send_lag_p50_ms: float
    send_lag_p99_ms: float
    send_lag_max_ms: float
    connections_opened: int
    processes: int
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    """Per-request latency in request order (``nan`` for requests that did not complete)."""

    def summary(self) -> str:
        """A one-line human-readable summary."""
        mode = f"fixed@{self.target_rate:g}/s" if self.mode == "fixed" else "saturation"
        statuses = " ".join(f"{k}x{v}" for k, v in sorted(self.status_counts.items()))
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.error_kinds.items())) or "none"
        text = (
            f"{mode}: {self.completed}/{self.requested} done ({self.sent} sent) in "
            f"{self.wall_time_s:.2f}s = {self.achieved_rate:.1f} req/s | latency ms p50 "
            f"{self.p50_ms:.3f} p90 {self.p90_ms:.3f} p99 {self.p99_ms:.3f} p99.9 "
            f"{self.p999_ms:.3f} max {self.max_ms:.3f}"
        )
        if self.mode == "fixed":
            text += (
                f" | service p50 {self.service_p50_ms:.3f} p99 {self.service_p99_ms:.3f}"
                f" | lag p99 {self.send_lag_p99_ms:.3f} max {self.send_lag_max_ms:.3f}"
            )
        return (
            f"{text} | status {statuses or '-'} | errors {errors} | conns {self.connections_opened}"
        )

    def to_dict(self, *, include_latencies: bool = False) -> dict[str, Any]:
        """The result as JSON-friendly plain data (per-request latencies only on request)."""
        data = asdict(self)
        data["status_counts"] = {str(k): v for k, v in sorted(self.status_counts.items())}
        if not include_latencies:
            del data["latencies_ms"]
        else:
            data["latencies_ms"] = [None if math.isnan(x) else x for x in self.latencies_ms]
        return data


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 1]) of pre-sorted values; ``nan`` when empty."""
    if not sorted_values:
        return _NAN
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _merge(
    mode: Mode,
    reports: list[dict[str, Any]],
    *,
    requested: int,
    t0: float,
    rate: float | None,
) -> Result:
    processes = len(reports)
    latency = [_NAN] * requested
    service: list[float] = []
    lag: list[float] = []
    status_counts: dict[int, int] = {}
    error_kinds: dict[str, int] = {}
    for k, report in enumerate(reports):
        latency[k::processes] = [x * 1e3 for x in report["latency"]]
        service.extend(x * 1e3 for x in report["service"] if not math.isnan(x))
        lag.extend(x * 1e3 for x in report["lag"] if not math.isnan(x))
        for code, count in report["status_counts"].items():
            status_counts[code] = status_counts.get(code, 0) + count
        for kind, count in report["error_kinds"].items():
            error_kinds[kind] = error_kinds.get(kind, 0) + count
    done = sorted(x for x in latency if not math.isnan(x))
    service.sort()
    lag.sort()
    completed = sum(r["completed"] for r in reports)
    last_end = max((r["last_end"] for r in reports if r["completed"]), default=t0)
    wall = max(last_end - t0, 1e-9)
    return Result(
        mode=mode,
        requested=requested,
        sent=sum(r["sent"] for r in reports),
        completed=completed,
        errors=sum(error_kinds.values()),
        error_kinds=dict(sorted(error_kinds.items())),
        status_counts=dict(sorted(status_counts.items())),
        wall_time_s=wall,
        achieved_rate=completed / wall,
        target_rate=rate,
        p50_ms=_percentile(done, 0.50),
        p90_ms=_percentile(done, 0.90),
        p99_ms=_percentile(done, 0.99),
        p999_ms=_percentile(done, 0.999),
        max_ms=done[-1] if done else _NAN,
        mean_ms=statistics.fmean(done) if done else _NAN,
        service_p50_ms=_percentile(service, 0.50),
        service_p99_ms=_percentile(service, 0.99),
        send_lag_p50_ms=_percentile(lag, 0.50),
        send_lag_p99_ms=_percentile(lag, 0.99),
        send_lag_max_ms=lag[-1] if lag else _NAN,
        connections_opened=sum(r["opened"] for r in reports),
        processes=processes,
        latencies_ms=latency,
    )


def summarize_runs(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Median, min and max of the headline figures over repeated runs of the same benchmark."""
    keys = ("achieved_rate", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors")
    summary: dict[str, dict[str, float]] = {}
    for key in keys:
        values = [float(getattr(r, key)) for r in results]
        summary[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return summary


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def _collect(pipes: list[Connection], expected: str, deadline: float) -> list[Any]:
    """One ``expected`` message from every worker, in worker order, before ``deadline``."""
    payloads: dict[int, Any] = {}
    index = {id(p): k for k, p in enumerate(pipes)}
    pending = list(pipes)
    while pending:
        remaining = deadline - CLOCK()
        ready = wait(pending, timeout=max(remaining, 0.0)) if remaining > 0 else []
        if not ready:
            raise TimeoutError(f"load generator workers did not report {expected!r} in time")
        for pipe in ready:
            assert isinstance(pipe, Connection)
            try:
                kind, payload = pipe.recv()
            except EOFError:
                raise RuntimeError("a load generator worker exited unexpectedly") from None
            if kind == "connect_error":
                raise ConnectionError(payload)
            if kind == "error":
                raise RuntimeError(f"load generator worker failed:\n{payload}")
            if kind != expected:
                raise RuntimeError(f"unexpected worker message {kind!r}")
            payloads[index[id(pipe)]] = payload
            pending.remove(pipe)
    return [payloads[k] for k in range(len(pipes))]


def _run(
    mode: Mode,
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    rate: float,
    connections: int,
    processes: int,
    timeout: float,
    duration_limit: float,
    cpu: int | None,
    spin: float,
    use_uvloop: bool,
) -> Result:
    if not requests:
        raise ValueError("no requests to send")
    if connections < 1 or processes < 1:
        raise ValueError("connections and processes must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    processes = min(processes, len(requests), connections)
    host_header = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    raws, heads = _encode_all(requests, host_header)
    per_worker = _split(connections, processes)
    run_length = len(requests) / rate if mode == "fixed" else duration_limit
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[multiprocessing.process.BaseProcess] = []
    try:
        for k in range(processes):
            parent_end, child_end = ctx.Pipe()
            pipes.append(parent_end)
            spec = _WorkerSpec(
                mode=mode,
                host=host,
                port=port,
                raws=raws[k::processes],
                heads=heads[k::processes],
                first_index=k,
                stride=processes,
                rate=rate,
                connections=per_worker[k],
                timeout=timeout,
                duration_limit=duration_limit,
                spin=spin,
                cpu=cpu,
                use_uvloop=use_uvloop,
            )
            proc = ctx.Process(
                target=_worker_entry, args=(child_end, spec), name=f"loadgen-{k}", daemon=True
            )
            proc.start()
            child_end.close()
            procs.append(proc)
        _collect(pipes, "ready", CLOCK() + STARTUP_TIMEOUT)
        t0 = CLOCK() + 0.05 + 0.01 * processes
        for pipe in pipes:
            pipe.send(t0)
        reports = _collect(pipes, "done", t0 + run_length + timeout + HARD_DEADLINE_SLACK + 10.0)
    finally:
        for pipe in pipes:
            pipe.close()
        for process in procs:
            process.join(timeout=5.0)
            if process.exitcode is None:
                process.terminate()
                process.join(timeout=2.0)
            if process.exitcode is None:
                process.kill()
                process.join()
            process.close()
    target = rate if mode == "fixed" else None
    return _merge(mode, reports, requested=len(requests), t0=t0, rate=target)


def run_fixed_rate(
    host: str,
    port: int,
    requests: Sequence[Request],
    rate: float,
    *,
    connections: int = 32,
    processes: int = 1,
    timeout: float = 5.0,
    cpu: int | None = None,
    spin: float | None = None,
    use_uvloop: bool = True,
) -> Result:
    """Open-loop run: request ``i`` is scheduled at ``t0 + i / rate``.

    Each request is sent at its scheduled time on a free keep-alive connection; when all are
    busy a new one is opened, up to ``connections`` in total (split evenly across processes);
    beyond that the request waits for a connection, and that wait counts in its latency, which
    is measured from the scheduled time. The run lasts ``len(requests) / rate`` seconds plus
    the tail of the last responses. A request not completed within ``timeout`` seconds of its
    scheduled time is an error; a worker gives up entirely ``timeout + 3`` seconds after the end
    of the schedule, so the call always returns.

    With ``processes > 1`` the schedule is split round-robin over that many spawned worker
    processes (all pinned to ``cpu`` when given) that share ``t0``. ``spin`` is how long each
    worker busy-waits before a scheduled send for microsecond-accurate timing (0 disables; the
    default is ``DEFAULT_SPIN`` when ``cpu`` is given and ``processes == 1``, else 0).
    ``use_uvloop`` selects uvloop for the workers' event loops when it is installed.
    """
    if not rate > 0:
        raise ValueError("rate must be positive")
    if spin is None:
        spin = DEFAULT_SPIN if cpu is not None and processes == 1 else 0.0
    return _run(
        "fixed",
        host,
        port,
        requests,
        rate=rate,
        connections=connections,
        processes=processes,
        timeout=timeout,
        duration_limit=len(requests) / rate,
        cpu=cpu,
        spin=max(spin, 0.0),
        use_uvloop=use_uvloop,
    )


def run_saturation(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    connections: int = 64,
    processes: int = 1,
    duration_limit: float = 30.0,
    cpu: int | None = None,
    timeout: float = 5.0,
    use_uvloop: bool = True,
) -> Result:
    """Closed-loop run: every connection sends its next request as soon as the previous
    response has arrived, until the requests are exhausted or ``duration_limit`` seconds have
    passed (requests left over are simply not sent). Connections (split evenly across
    ``processes``) are opened before the clock starts. Latency counts from the actual send;
    the headline figure is ``achieved_rate``. ``timeout`` bounds each request.
    """
    if not duration_limit > 0:
        raise ValueError("duration_limit must be positive")
    return _run(
        "saturation",
        host,
        port,
        requests,
        rate=0.0,
        connections=connections,
        processes=processes,
        timeout=timeout,
        duration_limit=duration_limit,
        cpu=cpu,
        spin=0.0,
        use_uvloop=use_uvloop,
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fixed-rate (open-loop) or saturation (closed-loop) HTTP/1.1 load with "
        "identical requests."
    )
    parser.add_argument("--url", required=True, help="http://HOST:PORT/path?query")
    parser.add_argument("--rate", type=float, help="requests per second (fixed-rate mode)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--saturate", action="store_true", help="closed loop, max throughput")
    parser.add_argument("--requests", type=int, help="saturation: requests available (1e6)")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="", help="request body (UTF-8 text)")
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value' (repeatable)"
    )
    parser.add_argument("--connections", type=int, help="default 32 fixed-rate, 64 saturation")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request seconds")
    parser.add_argument("--cpu", type=int, help="pin the generator process(es) to this CPU")
    parser.add_argument(
        "--spin", type=float, help=f"busy-wait seconds ({DEFAULT_SPIN} if --cpu, 1 process)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs; prints median/min/max")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    if not args.saturate and not args.rate:
        parser.error("--rate is required unless --saturate")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point for quick manual runs with identical requests."""
    args = _parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        raise SystemExit("only http://host:port/... URLs are supported")
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            raise SystemExit(f"bad header {item!r}; expected 'Name: value'")
        headers[name.strip()] = value.strip()
    if args.body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    request = Request(args.method.upper(), path, headers, args.body.encode())
    port = url.port or 80
    try:
        results = _cli_runs(args, url.hostname, port, request)
    except ConnectionError as exc:
        raise SystemExit(str(exc)) from None
    if args.json:
        output: dict[str, Any] = {"runs": [r.to_dict() for r in results]}
        if len(results) > 1:
            output["summary"] = summarize_runs(results)
        print(json.dumps(output, indent=2))
    elif len(results) > 1:
        for key, stats in summarize_runs(results).items():
            low, high = stats["min"], stats["max"]
            print(f"{key:>13}: median {stats['median']:.3f}  range {low:.3f}..{high:.3f}")
    return 0


def _cli_runs(args: argparse.Namespace, host: str, port: int, request: Request) -> list[Result]:
    """The CLI's runs (``--repeat`` of them), each summarised as it finishes unless ``--json``."""
    results: list[Result] = []
    for _ in range(max(args.repeat, 1)):
        if args.saturate:
            result = run_saturation(
                host,
                port,
                [request] * (args.requests or 1_000_000),
                connections=args.connections or 64,
                processes=args.processes,
                duration_limit=args.duration,
                cpu=args.cpu,
                timeout=args.timeout,
            )
        else:
            result = run_fixed_rate(
                host,
                port,
                [request] * max(1, round(args.rate * args.duration)),
                args.rate,
                connections=args.connections or 32,
                processes=args.processes,
                timeout=args.timeout,
                cpu=args.cpu,
                spin=args.spin,
            )
        results.append(result)
        if not args.json:
            print(result.summary(), flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
