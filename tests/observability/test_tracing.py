"""Optional tracing: off without an endpoint; with one, a span per request (health and
metrics endpoints excluded)."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.api.tracing import with_tracing


async def ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def app() -> Starlette:
    return Starlette(routes=[Route("/token", ok, methods=["POST"]), Route("/healthz", ok)])


def test_tracing_is_off_without_an_endpoint() -> None:
    plain = app()
    assert with_tracing(plain, endpoint=None, service="agentauth-test") is plain


async def test_requests_become_spans() -> None:
    exporter = InMemorySpanExporter()
    traced = with_tracing(app(), endpoint=None, service="agentauth-test", exporter=exporter)
    transport = httpx.ASGITransport(app=traced)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.post("/token")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
    spans = exporter.get_finished_spans()
    assert spans
    assert all(span.resource.attributes["service.name"] == "agentauth-test" for span in spans)
    assert any("/token" in span.name for span in spans)
    assert not any("healthz" in span.name for span in spans)
