"""OpenTelemetry tracing: a span per job execution, continuing the trace of
the code that enqueued it (the ``otel`` extra).

Producer side: :func:`trace_enqueue`, a before-enqueue hook, puts the
current trace context (W3C ``traceparent``/``tracestate``, or whatever
propagator is configured) into every job's ``meta`` under :data:`META_KEY`;
:func:`inject_trace` does it for one ``meta`` mapping::

    app.before_enqueue(trace_enqueue)                          # every job
    job = resize.options(meta=inject_trace()).enqueue("a.png") # or one job

Worker side: :class:`TracingMiddleware` reads it back and runs the task in a
``CONSUMER`` span named ``run <task>``, child of the producer's span, with
the job's id, queue, attempt and task as attributes (OpenTelemetry's
messaging conventions where one fits). An exception is recorded on the span
and sets its status to error (a :class:`~scheduler.control.Retry` is
recorded as an event instead)::

    app.hooks.middleware(TracingMiddleware())

It wraps sync and ``async def`` tasks, in threads and process-pool children.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from scheduler.context import JobContext
from scheduler.control import Retry
from scheduler.task import JobSpec

__all__ = ["META_KEY", "TracingMiddleware", "inject_trace", "trace_enqueue"]

#: The ``meta`` key holding the propagated trace context (a JSON object of strings).
META_KEY = "otel"


def inject_trace(meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``meta`` (copied; default empty) with the current trace context under
    :data:`META_KEY` (unchanged if no span is current)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    out = dict(meta or {})
    if carrier:
        out[META_KEY] = carrier
    return out


def trace_enqueue(spec: JobSpec) -> JobSpec:
    """A before-enqueue hook (``app.before_enqueue(trace_enqueue)``): the job
    with the current trace context in its ``meta`` (unchanged if no span is
    current)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return spec.with_meta(**{META_KEY: carrier}) if carrier else spec


class TracingMiddleware:
    """A span per job execution (see the module docstring).

    Args:
        tracer_provider: where spans go (default: the global provider).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer: Tracer = trace.get_tracer("scheduler", tracer_provider=tracer_provider)

    @contextmanager
    def _span(self, ctx: JobContext) -> Iterator[Span]:
        raw = ctx.meta.get(META_KEY)
        carrier = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
        parent = propagate.extract(carrier)
        attributes: dict[str, str | int] = {
            "messaging.system": "scheduler",
            "messaging.operation": "process",
            "messaging.destination.name": ctx.queue,
            "messaging.message.id": ctx.id,
            "scheduler.task": ctx.task,
            "scheduler.attempt": ctx.attempt,
            "scheduler.max_attempts": ctx.max_attempts,
        }
        with self._tracer.start_as_current_span(
            f"run {ctx.task}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Retry as exc:
                span.add_event("retry", {"delay": -1.0 if exc.delay is None else exc.delay})
                raise
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise

    def __call__(self, ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        """Run a sync task in the job's span."""
        with self._span(ctx):
            return call_next()

    async def acall(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Run an ``async def`` task in the job's span."""
        with self._span(ctx):
            return await call_next()
