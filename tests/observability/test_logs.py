"""Structured logs: JSON lines with the request id, and no tokens or credentials."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.api.logs import JSONFormatter, RequestIdFilter, RequestIdMiddleware, scrub

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def test_secrets_never_reach_the_log() -> None:
    text = f"token {JWT} with Authorization: DPoP abc.def-ghi and Basic dXNlcjpwYXNz"
    cleaned = scrub(text)
    assert JWT not in cleaned
    assert "abc.def-ghi" not in cleaned
    assert "dXNlcjpwYXNz" not in cleaned
    assert "[redacted-jwt]" in cleaned


async def test_each_request_has_an_id_in_the_response_and_the_log() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("agentauth.test-logs")
    handler = Keep()
    handler.addFilter(RequestIdFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    async def hello(_: Request) -> PlainTextResponse:
        log.info("handling with %s", JWT)
        return PlainTextResponse("ok")

    app = RequestIdMiddleware(Starlette(routes=[Route("/", hello)]))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            chosen = await http.get("/", headers={"X-Request-ID": "req-42"})
            generated = await http.get("/", headers={"X-Request-ID": "bad id\n"})
    finally:
        log.removeHandler(handler)
    assert chosen.headers["x-request-id"] == "req-42"
    assert len(generated.headers["x-request-id"]) == 16  # a fresh one replaces junk
    line = json.loads(JSONFormatter().format(records[0]))
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"
    assert JWT not in line["message"]
    assert getattr(records[1], "request_id", None) == generated.headers["x-request-id"]


def test_text_logs_are_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    from app.api.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "text")
        log = logging.getLogger("agentauth.test-text")
        log.info("Authorization: Bearer abcdefSECRET and %s", JWT)
        try:
            raise ValueError(f"refused {JWT}")
        except ValueError:
            log.exception("failed with DPoP tok.en-value")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    written = capsys.readouterr().err
    assert "Bearer [redacted]" in written
    assert "[redacted-jwt]" in written
    for secret in ("abcdefSECRET", JWT, "tok.en-value"):
        assert secret not in written


def test_no_access_log_line_per_request() -> None:
    from app.api.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "json")
        access = logging.getLogger("uvicorn.access")
        assert access.disabled
        assert not access.propagate
        assert logging.getLogger("uvicorn.error").propagate  # start-up and errors still logged
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.getLogger("uvicorn.access").disabled = False
