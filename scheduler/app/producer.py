"""Enqueueing, sync and async: producer hooks, then validation, then the
enqueue script (part of :class:`scheduler.Scheduler`).

Every job goes the same way: the app's ``before_enqueue`` hooks see its
:class:`JobSpec` (:meth:`Producer.before_enqueue`), the
:class:`scheduler.building.JobBuilder` validates and encodes it, and the
backend's ``enqueue`` script writes it -- one call per job, or per
:data:`BULK_BATCH` jobs of one queue for the bulk methods. Nothing is written
for a job that a hook or the builder refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import attrs

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.aio import AsyncBackend
from scheduler.backend.scripts import EnqueueItem
from scheduler.building import JobBuilder
from scheduler.errors import UnknownOptionError, ValidationError
from scheduler.job import Job
from scheduler.task import EnqueueOptions, JobSpec, Task
from scheduler.validation import shown

__all__ = ["BULK_BATCH", "BeforeEnqueue", "Producer"]

#: A producer hook: called with each job's :class:`JobSpec` before it is
#: validated; returns a changed spec (e.g. ``spec.with_meta(trace=...)``) or
#: None to keep it; raises to refuse the job (nothing is written).
BeforeEnqueue = Callable[[JobSpec], JobSpec | None]

#: Jobs per enqueue script call in :meth:`Producer.enqueue_many`.
BULK_BATCH = defaults.BULK_BATCH


class Producer:
    """``enqueue``, ``enqueue_many``, their async forms and the
    ``before_enqueue`` hooks; mixed into :class:`scheduler.Scheduler`."""

    backend: Backend
    builder: JobBuilder
    #: Producer hooks (:meth:`before_enqueue`), in order.
    enqueue_hooks: list[BeforeEnqueue]

    def _aio(self) -> AsyncBackend:  # provided by Scheduler
        raise NotImplementedError

    def _job(self, job_id: str, queue: str) -> Job:  # provided by Scheduler
        raise NotImplementedError

    def enqueue(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        options: EnqueueOptions | None = None,
        **option_kwargs: Any,
    ) -> Job:
        """Enqueue one job and return its handle.

        Args:
            task: a registered :class:`Task`, or a task name (``"pkg.mod:fn"``)
                for producers that do not import the task's code (the app's
                defaults then apply unless a task of that name is registered).
            args: positional arguments (JSON-serializable; tuples become lists).
            kwargs: keyword arguments (JSON-serializable).
            options: an :class:`EnqueueOptions`; or give its fields as keyword
                arguments (``delay=``, ``eta=``, ``priority=``, ``job_id=``, ...).

        Returns:
            A :class:`Job`. If ``job_id`` names an existing job, that job's
            handle is returned and nothing is written (idempotency key).

        Raises:
            ValidationError: bad name, priority inputs, times (beyond the
                limits of ``docs/design.md``, "Limits", too) or payload
                (:class:`PayloadError` for arguments that are not JSON, would
                not come back exactly, or are too large or too deep), options
                that are not an :class:`EnqueueOptions`
                (:class:`UnknownOptionError` for an unknown keyword). Nothing
                is written then.
        """
        queue, item = self._build(task, args, kwargs, _options(options, option_kwargs))
        backend = self.backend
        backend.register_queue(queue)
        backend.scripts.enqueue(backend.queue(queue), [item])
        return self._job(item.job_id, queue)

    def enqueue_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        """Enqueue many jobs in few round trips (one script call per
        :data:`BULK_BATCH` jobs of one queue).

        All specs are validated before anything is written, so bad input
        writes nothing. Each script call is atomic; a Redis failure between
        calls can leave earlier batches written (re-running is safe: job ids
        given by the caller make it idempotent).

        Returns:
            Handles in the order of ``specs``.

        Raises:
            ValidationError: as :meth:`enqueue`, for any spec, or an item
                that is not a :class:`JobSpec`.
        """
        built, by_queue = self._build_many(specs)
        backend = self.backend
        for queue in by_queue:
            backend.register_queue(queue)
        # Batches go out as they are packed, with two in flight, so packing the
        # next one overlaps with Redis running the last (one slot per queue).
        scripts = backend.scripts
        for queue, items in by_queue.items():
            qk = backend.queue(queue)
            scripts.run_streamed(
                scripts.enqueue_call(qk, items[start : start + BULK_BATCH])
                for start in range(0, len(items), BULK_BATCH)
            )
        return [self._job(item.job_id, queue) for queue, item in built]

    # -- the async producer ------------------------------------------------

    async def aenqueue(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        options: EnqueueOptions | None = None,
        **option_kwargs: Any,
    ) -> Job:
        """:meth:`enqueue` on ``redis.asyncio``: the same hooks, validation,
        script and reply; the event loop is never blocked.

        Raises:
            ValidationError: as :meth:`enqueue` (nothing written).
            redis.RedisError: the server failed the call.
        """
        queue, item = self._build(task, args, kwargs, _options(options, option_kwargs))
        qk = self.backend.queue(queue)
        aio = self._aio()
        await aio.register_queue(qk, queue)
        await aio.run_many([self.backend.scripts.enqueue_call(qk, [item])])
        return self._job(item.job_id, queue)

    async def aenqueue_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        """:meth:`enqueue_many` on ``redis.asyncio``: every spec validated
        first, then one pipelined round trip per queue (a script call per
        :data:`BULK_BATCH` jobs).

        Raises:
            ValidationError: as :meth:`enqueue_many` (nothing written).
        """
        built, by_queue = self._build_many(specs)
        aio = self._aio()
        scripts = self.backend.scripts
        for queue, items in by_queue.items():
            qk = self.backend.queue(queue)
            await aio.register_queue(qk, queue)
            await aio.run_many(
                [
                    scripts.enqueue_call(qk, items[start : start + BULK_BATCH])
                    for start in range(0, len(items), BULK_BATCH)
                ]
            )
        return [self._job(item.job_id, queue) for queue, item in built]

    # -- building (hooks, then validation) -------------------------------------

    def before_enqueue(self, fn: BeforeEnqueue) -> BeforeEnqueue:
        """Register a producer hook (usable as a decorator); hooks run in
        order on each job of :meth:`enqueue`, :meth:`enqueue_many`,
        :meth:`aenqueue`, :meth:`aenqueue_many` and ``task.enqueue``, before
        validation. A hook gets the job's :class:`JobSpec` and returns a
        changed one (``spec.with_meta(tenant="acme")``) or None; an exception
        refuses the job and propagates (for a bulk call: nothing is written).

        Cron firings do not run hooks: a schedule's job is built once, when
        the schedule is declared, and fired by the cron script -- put what
        every firing needs in the schedule's ``meta=``.

        Raises:
            ValidationError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise ValidationError(f"before_enqueue takes a callable, got {shown(fn)}")
        self.enqueue_hooks.append(fn)
        return fn

    def _build(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        opts: EnqueueOptions,
    ) -> tuple[str, EnqueueItem]:
        if self.enqueue_hooks:
            # args/kwargs are validated by the builder, after the hooks.
            spec = JobSpec(task, cast(tuple[Any, ...], args), cast(dict[str, Any], kwargs), opts)
            spec = self._hooked(spec)
            task, args, kwargs, opts = spec.task, spec.args, spec.kwargs, spec.options
        return self.builder.build(task, args, kwargs, opts)

    def _hooked(self, spec: JobSpec) -> JobSpec:
        for hook in self.enqueue_hooks:
            changed = hook(spec)
            if changed is not None:
                if not isinstance(changed, JobSpec):
                    raise ValidationError(
                        f"before_enqueue hook {shown(hook)} returned {shown(changed)}, "
                        "not a JobSpec or None"
                    )
                spec = changed
        return spec

    def _build_many(
        self, specs: Iterable[JobSpec]
    ) -> tuple[list[tuple[str, EnqueueItem]], dict[str, list[EnqueueItem]]]:
        """Every spec built (hooks, then validation), and the items by queue."""
        build = self._build
        built = [build(s.task, s.args, s.kwargs, _options(s.options, {})) for s in _specs(specs)]
        by_queue: dict[str, list[EnqueueItem]] = {}
        for queue, item in built:
            by_queue.setdefault(queue, []).append(item)
        return built, by_queue


def _specs(specs: Iterable[JobSpec]) -> list[JobSpec]:
    """``specs`` as a list, each checked to be a :class:`JobSpec`.

    Raises:
        ValidationError: ``specs`` is not iterable, or an item is not a JobSpec.
    """
    try:
        items = list(specs)
    except TypeError:
        raise ValidationError(f"enqueue_many takes JobSpec items, got {shown(specs)}") from None
    for spec in items:
        if not isinstance(spec, JobSpec):
            raise ValidationError(f"enqueue_many takes JobSpec items, got {shown(spec)}")
    return items


def _options(options: object, extra: dict[str, Any]) -> EnqueueOptions:
    """The per-job options of an enqueue call: ``options`` updated by ``extra``.

    Raises:
        ValidationError: ``options`` is not an :class:`EnqueueOptions`.
        UnknownOptionError: an unknown keyword.
    """
    if options is not None and not isinstance(options, EnqueueOptions):
        raise ValidationError(f"options must be an EnqueueOptions, got {shown(options)}")
    unknown = set(extra) - set(attrs.fields_dict(EnqueueOptions))
    if unknown:
        raise UnknownOptionError(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
    if options is None:
        return EnqueueOptions(**extra)
    return attrs.evolve(options, **extra) if extra else options
