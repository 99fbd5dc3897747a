"""Task registration: ``@app.task`` (part of :class:`scheduler.Scheduler`).

Every option is checked when the task is registered, so a worker never meets
a policy it cannot apply; options a task does not give take the app's
defaults (:class:`scheduler.building.JobDefaults`) or :class:`Task`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from scheduler.building import JobDefaults, check_attempts, check_lease, check_timeout
from scheduler.errors import UnknownOptionError, ValidationError
from scheduler.learning import resolve_inputs
from scheduler.task import TASK_OPTIONS, Enqueuer, Task
from scheduler.timeutil import seconds
from scheduler.validation import validate_queue_name, validate_task_name

__all__ = ["TaskRegistry"]

P = ParamSpec("P")
R = TypeVar("R")

#: How a task option is checked (and normalized) at registration; the others
#: are checked by :class:`Task` itself or by :func:`resolve_inputs`.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "queue": validate_queue_name,
    "max_attempts": check_attempts,
    "lease": check_lease,
    "timeout": check_timeout,
    "result_ttl": lambda value: seconds(value, "result_ttl"),
}


class TaskRegistry:
    """The app's tasks by name and ``@app.task``; mixed into :class:`scheduler.Scheduler`."""

    #: Registered tasks by name.
    tasks: dict[str, Task[Any, Any]]
    job_defaults: JobDefaults

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue=..., ...)``.

        Options: ``name`` (default ``module:qualname``), ``queue``, ``weight``,
        ``time`` (estimated run time, seconds, or ``"auto"``: learned),
        ``alpha`` and ``min_samples`` (learned time), ``resource``, ``priority``,
        ``max_attempts``, ``lease`` (seconds), ``timeout`` (execution time
        limit of one attempt, seconds; None = none), ``result_ttl`` (seconds),
        ``backoff`` (a :class:`Backoff`), ``retry_on`` (an exception class or
        a tuple of them). Everything is checked here, at registration, so a
        worker never meets a policy it cannot apply.

        Raises:
            ValidationError: an option is invalid, or the name is taken by
                another function.
            UnknownOptionError: an unknown option (a :class:`ValidationError`
                and a ``TypeError``).
        """

        def register(func: Callable[P, R]) -> Task[P, R]:
            return self._register(func, **options)

        return register(fn) if fn is not None else register

    def _register(self, func: Callable[P, R], **options: Any) -> Task[P, R]:
        unknown = set(options) - TASK_OPTIONS
        if unknown:
            raise UnknownOptionError(f"unknown task option(s): {', '.join(sorted(unknown))}")
        jd = self.job_defaults
        values: dict[str, Any] = {
            "queue": jd.queue,
            "max_attempts": jd.max_attempts,
            "lease": jd.lease,
            "timeout": jd.timeout,
            "result_ttl": jd.result_ttl,
            "backoff": jd.backoff,
            **options,
        }
        for option, check in _CHECKS.items():
            values[option] = check(values[option])
        name = validate_task_name(
            values.pop("name", None) or f"{func.__module__}:{func.__qualname__}"
        )
        # ``self`` is the Scheduler this registry is part of: it enqueues.
        task: Task[P, R] = Task(app=cast(Enqueuer, self), fn=func, name=name, **values)
        # the priority inputs together (e.g. ``priority`` with ``time="auto"``)
        resolve_inputs(
            task.priority, task.weight, task.time, task.resource, task.alpha, task.min_samples
        )
        existing = self.tasks.get(name)
        if existing is not None and existing.fn is not func:
            raise ValidationError(f"task name {name!r} is already registered")
        self.tasks[name] = task
        return task
