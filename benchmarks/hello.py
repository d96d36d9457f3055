"""Raw-ASGI "hello" app: the framework-free performance floor of the HTTP benchmarks.

Answers ``200 {"ok":true}`` (``application/json``) to any HTTP request, after draining the
request body, with no framework, routing or middleware — the best a uvicorn worker can do, which
the benchmarks report next to the real endpoints for context. Run it with the same server
settings as the service::

    taskset -c 0 python benchmarks/hello.py --port 8000 --workers 1
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b'{"ok":true}'
_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
_BODY: Message = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI 3 application: ``{"ok":true}`` for every HTTP request; lifespan acknowledged."""
    if scope["type"] == "http":
        more_body = True
        while more_body:
            message = await receive()
            more_body = message["type"] == "http.request" and message.get("more_body", False)
        await send(_START)
        await send(_BODY)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(argv: Sequence[str] | None = None) -> None:
    """Serve :func:`app` with uvicorn (uvloop, httptools, no access log)."""
    parser = argparse.ArgumentParser(description="Raw-ASGI hello app (benchmark floor).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    import uvicorn

    uvicorn.run(
        "hello:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        ws="none",
        access_log=False,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
