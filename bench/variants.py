"""Variants of ours with one feature switched on, for the feature-cost
scenarios: each is alternated with plain ``ours`` in the same run.

* :class:`OursChecked` -- capacity and limits, never binding (issue 14);
* :class:`OursFeature` -- a per-job execution timeout, a learned time
  (``time="auto"``), or a middleware chain (a pass-through one, a real one);
* :class:`OursAsync` -- the async producer (``await app.aenqueue``) from one
  event loop, one call at a time or many at once (``asyncio.gather``).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from bench.libs import CHUNK, Ours

#: Per-job execution timeout of ``ours-timeout``, seconds (never reached).
TIMEOUT_S = 60.0
#: Enqueue calls in flight at once for ``ours-gather``.
GATHER = 100
#: Jobs run before ``ours-auto`` is measured, so its task has statistics
#: (more than ``min_samples``) and the learned estimate is computed.
SEED = 20


class OursChecked(Ours):
    """Ours with the dispatch checks of issue 14 switched on but never
    binding, so a drain measures what checking them costs:

    * ``ours-cap``: the worker has ``--capacity 1000`` (the jobs take 1
      unit each, at most concurrency + prefetch = 20 are held);
    * ``ours-limq``: queue limits, concurrency 10^6 and rate 10^9/s;
    * ``ours-limt``: the same limits on the queue and on the task (task
      limits make the lease script walk the ready set instead of popping).
    """

    def __init__(self, url: str, variant: str) -> None:
        super().__init__(url)
        self.name = f"ours-{variant}"
        self.variant = variant
        if variant == "cap":
            self.worker_desc += " --capacity 1000"

    def prefill(self, n: int, *, delay: float | None = None, priorities: int = 0) -> list[str]:
        """Set the (non-binding) limits on the emptied server, then prefill."""
        if self.variant in ("limq", "limt"):
            queue = self.app.default_queue
            self.app.set_limits(queue, concurrency=1_000_000, rate="1000000000/s")
            if self.variant == "limt":
                self.app.set_limits(
                    queue, task=self.mod.noop.name, concurrency=1_000_000, rate="1000000000/s"
                )
        return super().prefill(n, delay=delay, priorities=priorities)

    def worker_cmd(self, concurrency: int) -> list[str]:
        extra = ["--capacity", "1000"] if self.variant == "cap" else []
        return [*super().worker_cmd(concurrency), *extra]


class OursFeature(Ours):
    """Ours with one feature on, the rest as :class:`~bench.libs.Ours`:

    * ``ours-timeout``: every job has ``timeout=60`` (the worker watches a
      deadline per running job; the record carries the timeout);
    * ``ours-auto``: every job has ``time="auto"``; :data:`SEED` jobs are run
      first (an in-process burst worker) so the task has statistics and the
      enqueue script computes the learned estimate;
    * ``ours-mwnoop``: the worker's app has one middleware that only calls
      ``call_next()`` (``$BENCH_MIDDLEWARE=noop``, :mod:`bench.app`);
    * ``ours-mwreal``: one real middleware, the timing one of
      :mod:`scheduler.middleware`'s docstring (``$BENCH_MIDDLEWARE=timing``).

    Plain ``ours`` has no middleware: the empty chain.
    """

    OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "timeout": {"timeout": TIMEOUT_S},
        "auto": {"time": "auto"},
    }
    MIDDLEWARE: ClassVar[dict[str, str]] = {"mwnoop": "noop", "mwreal": "timing"}

    def __init__(self, url: str, variant: str) -> None:
        super().__init__(url)
        self.name = f"ours-{variant}"
        self.variant = variant
        self.options = self.OPTIONS.get(variant, {})
        self.seeded = 0
        if variant in self.MIDDLEWARE:
            self.worker_env = {"BENCH_MIDDLEWARE": self.MIDDLEWARE[variant]}
            self.worker_desc += f" (BENCH_MIDDLEWARE={self.MIDDLEWARE[variant]})"

    def _seed(self) -> None:
        """Run :data:`SEED` jobs once (``ours-auto``): statistics for the task."""
        if self.variant != "auto" or self.seeded:
            return
        from scheduler import Worker

        bound = self.mod.noop.options(**self.options)
        for _ in range(SEED):
            bound.enqueue()
        if not Worker(self.app, concurrency=1).run_until_empty(timeout=60):
            raise RuntimeError("the seed jobs did not run within 60 s")
        self.seeded = SEED

    def done_count(self) -> int:
        return super().done_count() - self.seeded

    def enqueue_one(self, n: int) -> list[Any]:
        if not self.options:
            return super().enqueue_one(n)
        self._seed()
        bound = self.mod.noop.options(**self.options)
        return [bound.enqueue() for _ in range(n)]

    def prefill(self, n: int, *, delay: float | None = None, priorities: int = 0) -> list[str]:
        if not self.options:
            return super().prefill(n, delay=delay, priorities=priorities)
        assert delay is None and not priorities
        self._seed()
        bound = self.mod.noop.options(**self.options)
        ids: list[str] = []
        for start in range(0, n, CHUNK):
            specs = [bound.spec() for _ in range(min(CHUNK, n - start))]
            ids.extend(j.id for j in self.app.enqueue_many(specs))
        return ids


class OursAsync(Ours):
    """Ours through the async producer, on one event loop kept for the
    adapter's life (the ``redis.asyncio`` client is bound to it):

    * ``ours-async``: ``await app.aenqueue(noop)``, one after the other;
      bulk: ``await app.aenqueue_many(...)``;
    * ``ours-gather``: :data:`GATHER` ``aenqueue`` calls at a time through
      ``asyncio.gather`` (one connection each from the client's pool).
    """

    def __init__(self, url: str, variant: str) -> None:
        super().__init__(url)
        self.name = f"ours-{variant}"
        self.variant = variant
        self.loop = asyncio.new_event_loop()

    async def _one(self, n: int) -> list[Any]:
        app, noop = self.app, self.mod.noop
        if self.variant == "gather":
            out: list[Any] = []
            for start in range(0, n, GATHER):
                calls = [app.aenqueue(noop) for _ in range(min(GATHER, n - start))]
                out.extend(await asyncio.gather(*calls))
            return out
        return [await app.aenqueue(noop) for _ in range(n)]

    def enqueue_one(self, n: int) -> list[Any]:
        return self.loop.run_until_complete(self._one(n))

    def enqueue_bulk(self, n: int) -> list[Any]:
        specs = [self.mod.noop.spec() for _ in range(n)]
        return self.loop.run_until_complete(self.app.aenqueue_many(specs))
