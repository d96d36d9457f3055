"""Functional checks of the benchmark load generator (``benchmarks/loadgen.py``).

A real uvicorn server runs in a background thread on a free 127.0.0.1 port with a small test
app (the ``benchmarks/hello.py`` floor app, a body-recording echo with chunked responses, a slow
and a hanging endpoint); the generator runs in its own spawned worker processes against it.
Only loose functional bounds are asserted: this is not a performance test.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import uvicorn

BENCHMARKS = Path(__file__).resolve().parent
if str(BENCHMARKS) not in sys.path:
    # benchmarks/ is not a package. Appended, not prepended, so that a benchmark script can
    # never shadow a standard-library module; the spawned generator workers inherit sys.path.
    sys.path.append(str(BENCHMARKS))
loadgen = importlib.import_module("loadgen")
hello = importlib.import_module("hello")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOST = "127.0.0.1"
SLOW_SECONDS = 0.2


class RoutingApp:
    """Routes: ``/echo`` records and echoes the body (chunked), ``/slow`` answers after
    ``SLOW_SECONDS``, ``/hang`` after one second, ``/close`` closes the connection after its
    response; anything else goes to the hello app."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        if path == "/echo":
            body = b""
            more_body = True
            while more_body:
                message = await receive()
                body += message.get("body", b"")
                more_body = message.get("more_body", False)
            self.bodies.append(body)
            # No Content-Length: uvicorn sends the body with chunked transfer coding.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            half = len(body) // 2
            await send({"type": "http.response.body", "body": body[:half], "more_body": True})
            await send({"type": "http.response.body", "body": body[half:], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/close":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"2"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if path == "/slow":
            await asyncio.sleep(SLOW_SECONDS)
        elif path == "/hang":
            await asyncio.sleep(1.0)
        await hello.app(scope, receive, send)


class ThreadedServer:
    """uvicorn serving ``app`` from a background thread on a pre-bound free port."""

    def __init__(self, app: RoutingApp, *, keep_alive: int = 5) -> None:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # listener says TCP, and without it Nagle + delayed ACK add ~40 ms to responses.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind((HOST, 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="httptools",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=keep_alive,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited during startup"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=5)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop in time"


@pytest.fixture(scope="module")
def app() -> RoutingApp:
    return RoutingApp()


@pytest.fixture(scope="module")
def port(app: RoutingApp) -> Iterator[int]:
    server = ThreadedServer(app)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def get(path: str, i: int) -> Any:
    """A distinct pre-built GET, as single-use tokens would make every benchmark request."""
    return loadgen.Request("GET", path, {"X-Request-Id": str(i), "Accept": "application/json"})


def assert_ordered(result: Any) -> None:
    assert result.p50_ms <= result.p90_ms <= result.p99_ms <= result.p999_ms <= result.max_ms
    assert result.p50_ms > 0


def test_fixed_rate_completes_at_the_target_rate(port: int) -> None:
    requests = [get("/", i) for i in range(200)]
    result = loadgen.run_fixed_rate(HOST, port, requests, 200.0, connections=8)

    assert result.mode == "fixed"
    assert (result.requested, result.sent, result.completed) == (200, 200, 200)
    assert result.errors == 0
    assert result.status_counts == {200: 200}
    assert abs(result.achieved_rate - 200.0) <= 100.0
    assert_ordered(result)
    assert 0.9 <= result.wall_time_s <= 3.0  # scheduled: 200 / 200 = 1 s
    assert all(math.isfinite(x) for x in result.latencies_ms)
    assert result.send_lag_p50_ms >= 0
    assert "200x200" in result.summary()
    data = result.to_dict()
    assert data["completed"] == 200
    assert "latencies_ms" not in data


def test_saturation_completes_every_request(port: int) -> None:
    requests = [get("/", i) for i in range(300)]
    result = loadgen.run_saturation(HOST, port, requests, connections=8, duration_limit=10.0)

    assert result.mode == "saturation"
    assert (result.requested, result.sent, result.completed) == (300, 300, 300)
    assert result.errors == 0
    assert result.status_counts == {200: 300}
    assert result.achieved_rate > 0
    assert result.connections_opened == 8
    assert_ordered(result)


@pytest.mark.parametrize(
    ("mode", "processes"), [("fixed", 2), ("saturation", 1)], ids=["fixed-2proc", "saturation"]
)
def test_each_prebuilt_body_reaches_the_server_once(
    app: RoutingApp, port: int, mode: str, processes: int
) -> None:
    bodies = [b'{"proof":"%d"}' % i for i in range(120)]
    requests = [
        loadgen.Request("POST", "/echo", {"Content-Type": "application/json"}, body)
        for body in bodies
    ]
    app.bodies.clear()
    if mode == "fixed":
        result = loadgen.run_fixed_rate(
            HOST, port, requests, 240.0, connections=4, processes=processes
        )
    else:
        result = loadgen.run_saturation(HOST, port, requests, connections=4, processes=processes)

    assert result.completed == 120
    assert result.status_counts == {200: 120}
    assert result.processes == processes
    assert Counter(app.bodies) == Counter(bodies)


def test_latency_counts_from_the_scheduled_time(port: int) -> None:
    """A 200 ms stall on one request, one connection: the requests queued behind it must carry
    the wait in their latency (no coordinated omission)."""
    slow = 10
    requests = [get("/slow" if i == slow else "/", i) for i in range(50)]
    result = loadgen.run_fixed_rate(HOST, port, requests, 100.0, connections=1)

    assert result.completed == 50
    assert result.status_counts == {200: 50}
    assert result.connections_opened == 1
    latencies = result.latencies_ms
    assert latencies[slow] >= SLOW_SECONDS * 1e3 * 0.9
    # Request 11 was scheduled 10 ms after the slow one and had to wait for the connection.
    assert latencies[slow + 1] >= 150
    assert sum(x >= 100 for x in latencies[slow + 1 :]) >= 5
    assert result.max_ms >= 150
    assert result.p99_ms >= 150
    # Measured from the actual send instead, the queued requests look fast.
    assert result.service_p50_ms < 100


def test_connections_closed_by_the_server_are_replaced(port: int) -> None:
    requests = [get("/close", i) for i in range(20)]
    result = loadgen.run_saturation(HOST, port, requests, connections=2)

    assert result.completed == 20
    assert result.status_counts == {200: 20}
    assert result.connections_opened >= 20


def test_idle_connections_closed_by_the_server_are_replaced(app: RoutingApp) -> None:
    server = ThreadedServer(app, keep_alive=1)
    server.start()
    try:
        requests = [get("/", i) for i in range(2)]
        # The second request comes 1.67 s after the first, after the 1 s keep-alive expired.
        result = loadgen.run_fixed_rate(HOST, server.port, requests, 0.6, connections=1)
    finally:
        server.stop()

    assert result.completed == 2
    assert result.errors == 0
    assert result.connections_opened == 2


def test_requests_time_out_and_the_run_is_bounded(port: int) -> None:
    requests = [get("/hang", i) for i in range(3)]
    started = time.monotonic()
    result = loadgen.run_fixed_rate(HOST, port, requests, 10.0, connections=3, timeout=0.3)

    assert time.monotonic() - started < 10
    assert result.completed == 0
    assert result.errors == 3
    assert result.error_kinds == {"timeout": 3}
    assert math.isnan(result.p50_ms)


def test_unreachable_server_fails_fast() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind((HOST, 0))  # bound but not listening: connections are refused
        port = sock.getsockname()[1]
        with pytest.raises(ConnectionError, match="cannot connect"):
            loadgen.run_fixed_rate(HOST, port, [get("/", 0)], 10.0)


# -- response parsing and request encoding (no network) ----------------------------------------


async def parse(raw: bytes, *, head_request: bool = False) -> tuple[int, bool, bytes, bytes]:
    """Parse one response from ``raw``; also return what is left in the stream."""
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    status, keep_alive, body = await loadgen.read_response(reader, head_request=head_request)
    return status, keep_alive, body, await reader.read()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"ok":true}NEXT',
            (200, True, b'{"ok":true}', b"NEXT"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n"
            b"X-Trailer: 1\r\n\r\nNEXT",
            (200, True, b"Wikipedia in \r\n\r\nchunks.", b"NEXT"),
        ),
        (
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nConnection: close\r\n\r\nno",
            (404, False, b"no", b""),
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", (200, False, b"until close", b"")),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxNEXT",
            (200, True, b"x", b"NEXT"),
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\nNEXT", (204, True, b"", b"NEXT")),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            (201, True, b"", b""),
        ),
    ],
    ids=["content-length", "chunked", "close", "http10-eof", "http10-keepalive", "204", "100"],
)
async def test_read_response(raw: bytes, expected: tuple[int, bool, bytes, bytes]) -> None:
    assert await parse(raw) == expected


async def test_read_response_to_head_has_no_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nNEXT"
    assert await parse(raw, head_request=True) == (200, True, b"", b"NEXT")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_read_response_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(loadgen.ProtocolError):
        await parse(raw)


def test_request_encoding() -> None:
    post = loadgen.Request("POST", "/token?x=1", {"DPoP": "abc"}, b"a=b")
    assert post.encode("127.0.0.1:8000") == (
        b"POST /token?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nDPoP: abc\r\n"
        b"Content-Length: 3\r\n\r\na=b"
    )
    get_request = loadgen.Request("GET", "/", {"host": "as.example.com"})
    assert get_request.encode("127.0.0.1:8000") == b"GET / HTTP/1.1\r\nhost: as.example.com\r\n\r\n"
    for bad in (
        loadgen.Request("GET", "/", {"X": "a\r\nInjected: 1"}),
        loadgen.Request("GET", "/a b", {}),
        loadgen.Request("GET", "/", {"Content-Length": "0"}),
        loadgen.Request("GE T", "/", {}),
    ):
        with pytest.raises(ValueError, match=r"invalid|computed"):
            bad.encode("h")
