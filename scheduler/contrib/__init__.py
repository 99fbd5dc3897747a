"""Optional middleware built on other well-kept libraries, each behind an
extra: :mod:`scheduler.contrib.otel` (OpenTelemetry tracing; ``pip install
'redis-priority-scheduler[otel]'``) and :mod:`scheduler.contrib.sentry`
(Sentry error reporting; ``[sentry]``). Nothing here is imported by the rest
of the package."""
