"""The optional middleware: OpenTelemetry tracing and Sentry, on a real Redis server."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from scheduler import Fail, JobFailedError, Retry, Scheduler, current_job

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
sentry_sdk = pytest.importorskip("sentry_sdk")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402 - after the skip
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402
from sentry_sdk.envelope import Envelope  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402

from scheduler.contrib.otel import (  # noqa: E402
    META_KEY,
    TracingMiddleware,
    inject_trace,
    trace_enqueue,
)
from scheduler.contrib.sentry import SentryMiddleware  # noqa: E402
from tests.helpers import running  # noqa: E402


def test_a_span_per_job_continues_the_producers_trace(real_app: Scheduler) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    real_app.hooks.middleware(TracingMiddleware(provider))

    @real_app.task(max_attempts=2)
    def traced(fail: bool) -> str:
        if fail:
            raise ValueError("broken")
        return "ok"

    @real_app.task
    async def traced_async() -> int:
        return current_job().attempt

    with provider.get_tracer("producer").start_as_current_span("enqueue") as parent:
        meta = inject_trace({"tenant": "acme"})
        job = traced.options(meta=meta).enqueue(False)
    assert meta["tenant"] == "acme" and "traceparent" in meta[META_KEY]
    real_app.before_enqueue(trace_enqueue)
    with provider.get_tracer("producer").start_as_current_span("enqueue") as hooked_parent:
        hooked = traced.enqueue(False)
    assert not trace_enqueue(traced.spec(False)).options.meta  # no current span: no change
    bad = traced.enqueue(True)
    other = traced_async.enqueue()
    with running(real_app):
        assert job.result(timeout=10) == "ok"
        assert hooked.result(timeout=10) == "ok"
        assert other.result(timeout=10) == 1
        with pytest.raises(Exception, match="broken"):
            bad.result(timeout=10)
    finished = [s for s in exporter.get_finished_spans() if s.name != "enqueue"]
    spans = {s.attributes["messaging.message.id"]: s for s in finished}
    span = spans[job.id]
    assert span.name == f"run {traced.name}" and span.kind is SpanKind.CONSUMER
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["messaging.destination.name"] == "default"
    hooked_span = spans[hooked.id]
    assert hooked_span.parent is not None
    assert hooked_span.parent.span_id == hooked_parent.get_span_context().span_id
    assert spans[other.id].status.status_code is StatusCode.UNSET
    failed = [s for s in exporter.get_finished_spans() if s.name == f"run {traced.name}"]
    errors = [s for s in failed if s.status.status_code is StatusCode.ERROR]
    assert len(errors) == 2  # both attempts of the bad job
    assert errors[0].events[0].name == "exception"


class Recording(Transport):
    """A Sentry transport that keeps the events instead of sending them."""

    events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            event = item.get_event()
            if event is not None:
                self.events.append(event)


def test_a_sentry_scope_per_job(real_app: Scheduler) -> None:
    Recording.events = []
    sentry_sdk.init(dsn="http://key@localhost/1", transport=Recording, default_integrations=False)
    try:
        real_app.hooks.middleware(SentryMiddleware())

        @real_app.task(max_attempts=1)
        def broken(kind: str) -> None:
            sentry_sdk.add_breadcrumb(message=f"working on {kind}")
            if kind == "retry" and current_job().attempt == 1:
                raise Retry(delay=0)
            if kind == "fail":
                raise Fail("gave up")
            if kind == "error":
                raise KeyError("missing")

        kinds = ("error", "fail", "retry", "ok")
        jobs = {k: broken.options(meta={"k": k}).enqueue(k) for k in kinds}
        with running(real_app, concurrency=1):
            for job in jobs.values():
                with contextlib.suppress(JobFailedError):  # the failures are reported
                    job.result(timeout=10)
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
    by_job = {e["contexts"]["job"]["id"]: e for e in Recording.events}
    assert set(by_job) == {jobs["error"].id, jobs["fail"].id}
    event = by_job[jobs["error"].id]
    assert event["tags"]["scheduler.task"] == broken.name
    assert event["contexts"]["job"]["meta"] == {"k": "error"}
    assert event["exception"]["values"][0]["type"] == "KeyError"
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert crumbs == ["working on error"]  # nothing leaked from another job's scope
