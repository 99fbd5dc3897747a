"""The adapter protocol, our adapter, and :func:`make`, which builds any
library's adapter (the peers' are in :mod:`bench.peers`).

An adapter knows how to enqueue (one at a time, in bulk), which command runs
its default worker, and how to read back from Redis what happened (how many
jobs finished, when each finished, what a ``stamp`` task returned). Peers are
imported lazily, so a run of ours alone never imports them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import redis

from bench.util import scheduler_module

#: Largest number of jobs prepared in client memory at once when prefilling.
CHUNK = 20_000

BIN = Path(sys.executable).parent


class Lib(Protocol):
    """What a scenario needs from a library."""

    name: str
    #: Human-readable description of the worker command (for the report).
    worker_desc: str

    def enqueue_one(self, n: int) -> list[Any]:
        """Enqueue ``n`` no-op jobs, one call per job; return the handles."""
        ...

    def enqueue_bulk(self, n: int) -> list[Any]:
        """Enqueue ``n`` no-op jobs through the bulk API; return the handles."""
        ...

    def prefill(self, n: int, *, delay: float | None = None) -> list[str]:
        """Enqueue ``n`` no-op (``stamp`` for Huey) jobs fast; return their ids."""
        ...

    def worker_cmd(self, concurrency: int) -> list[str]:
        """The command line of one worker process."""
        ...

    def done_count(self) -> int:
        """How many jobs have finished successfully (read from Redis)."""
        ...

    def finish_times(self, ids: Sequence[str]) -> list[float]:
        """Epoch seconds at which each job finished (read from Redis)."""
        ...

    def enqueue_stamp(self) -> Any:
        """Enqueue one ``stamp`` job; return its handle."""
        ...

    def stamp_results(self, handles: Sequence[Any]) -> list[float]:
        """The value each ``stamp`` job returned (its start time, epoch seconds)."""
        ...

    def handle_id(self, handle: Any) -> str:
        """The job id of a handle."""
        ...


class Ours:
    """This project: ``bench.app`` (default settings), ``scheduler worker``."""

    name = "ours"

    def __init__(self, url: str) -> None:
        from bench import app as bench_app

        self.mod = bench_app
        self.url = url
        self.app = bench_app.app
        self.qk = self.app.queue_keys(self.app.default_queue)
        self.r: redis.Redis = redis.Redis.from_url(url)
        self.worker_desc = "scheduler worker bench.app:app --concurrency 10 --log-level WARNING"
        #: Extra environment of the worker process (a variant's switches).
        self.worker_env: dict[str, str] = {}

    def enqueue_one(self, n: int) -> list[Any]:
        noop = self.mod.noop
        return [noop.enqueue() for _ in range(n)]

    def enqueue_bulk(self, n: int) -> list[Any]:
        noop = self.mod.noop
        return self.app.enqueue_many([noop.spec() for _ in range(n)])

    def prefill(self, n: int, *, delay: float | None = None, priorities: int = 0) -> list[str]:
        """As the protocol; with ``priorities`` > 0 job ``i`` gets priority
        ``i % priorities`` (an explicit priority)."""
        timing = {} if delay is None else {"delay": delay}
        variants = [self.mod.noop.options(**timing, priority=float(p)) for p in range(priorities)]
        variants = variants or [self.mod.noop.options(**timing)]
        ids: list[str] = []
        for start in range(0, n, CHUNK):
            count = min(CHUNK, n - start)
            specs = [variants[(start + i) % len(variants)].spec() for i in range(count)]
            ids.extend(j.id for j in self.app.enqueue_many(specs))
        return ids

    def worker_cmd(self, concurrency: int) -> list[str]:
        return [
            str(BIN / "scheduler"),
            "worker",
            "bench.app:app",
            "--concurrency",
            str(concurrency),
            "--log-level",
            "WARNING",
        ]

    def done_count(self) -> int:
        return int(self.r.hget(self.qk.key("stats"), "succeeded") or 0)

    def _records(self, ids: Sequence[str]) -> list[Any]:
        _mod = scheduler_module("record")
        parse_record = _mod.parse_record

        out = []
        for start in range(0, len(ids), 5000):
            chunk = list(ids[start : start + 5000])
            for job_id, text in zip(chunk, self.r.hmget(self.qk.jobs, chunk), strict=True):
                if text is not None:
                    out.append(parse_record(job_id, text))
        return out

    def records(self, ids: Sequence[str]) -> list[Any]:
        """The parsed records of ``ids`` (missing ones left out)."""
        return self._records(ids)

    def finish_times(self, ids: Sequence[str]) -> list[float]:
        return [rec.finished_ms / 1000 for rec in self._records(ids) if rec.finished_ms]

    def enqueue_stamp(self) -> Any:
        return self.mod.stamp.enqueue()

    def stamp_results(self, handles: Sequence[Any]) -> list[float]:
        import json

        recs = self._records([h.id for h in handles])
        return [float(json.loads(rec.outcome)) for rec in recs if rec.state.value == "succeeded"]

    def handle_id(self, handle: Any) -> str:
        return str(handle.id)


def make(name: str, url: str) -> Lib:
    """The adapter called ``name``: ``ours``, a variant of ours
    (:mod:`bench.variants`: ``ours-cap``, ``ours-limq``, ``ours-limt``,
    ``ours-timeout``, ``ours-auto``, ``ours-mwnoop``, ``ours-mwreal``,
    ``ours-async``, ``ours-gather``), ``rq``, ``rq-fork``, ``huey`` or
    ``dramatiq``."""
    os.environ["BENCH_REDIS_URL"] = url
    if name == "ours":
        return Ours(url)
    if name.startswith("ours-"):
        from bench import variants

        variant = name.removeprefix("ours-")
        if variant in CHECKED:
            return variants.OursChecked(url, variant)
        if variant in ASYNC:
            return variants.OursAsync(url, variant)
        if variant in FEATURES:
            return variants.OursFeature(url, variant)
    if name in ("rq", "rq-fork", "huey", "dramatiq"):
        from bench import peers

        if name == "huey":
            return peers.Huey(url)
        if name == "dramatiq":
            return peers.Dramatiq(url)
        return peers.RQ(url, fork=name == "rq-fork")
    raise ValueError(f"unknown library {name!r}")


LIBS = ("ours", "rq", "rq-fork", "huey", "dramatiq")

#: Variants of ours (``ours-<variant>``, :mod:`bench.variants`): capacity or
#: limits on; one feature on; the async producer.
CHECKED = ("cap", "limq", "limt")
FEATURES = ("timeout", "auto", "mwnoop", "mwreal")
ASYNC = ("async", "gather")
