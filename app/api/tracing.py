"""Optional OpenTelemetry tracing (off unless ``AGENTAUTH_OTEL_ENDPOINT`` is set).

The ``otel`` extra (``pip install 'agentauth-server[otel]'``) provides the SDK, the ASGI
instrumentation and the OTLP/HTTP exporter; without an endpoint nothing is imported and the
application is returned unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

EXCLUDED = "healthz,readyz,metrics"


def with_tracing(
    app: ASGIApp, *, endpoint: str | None, service: str, exporter: Any = None
) -> ASGIApp:
    """``app`` wrapped in OpenTelemetry's ASGI middleware, exporting spans to ``endpoint``
    (OTLP/HTTP) or to ``exporter``; unchanged when neither is given."""
    if endpoint is None and exporter is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor: Any = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    else:
        processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    middleware: ASGIApp = OpenTelemetryMiddleware(
        app, tracer_provider=provider, excluded_urls=EXCLUDED
    )
    return middleware
