"""One adapter per library, through each library's public API.

An adapter knows how to enqueue (one at a time, in bulk), which command runs
its default worker, and how to read back from Redis what happened (how many
jobs finished, when each finished, what a ``stamp`` task returned). Peers are
imported lazily, so a run of ours alone never imports them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
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


class RQ:
    """RQ: ``Queue.enqueue`` / ``Queue.enqueue_many``; ``rq worker`` with
    ``SimpleWorker`` (runs jobs in the worker process: RQ's fastest single
    process), or with RQ's default ``Worker``, which forks a work horse per job
    (``fork=True``)."""

    def __init__(self, url: str, *, fork: bool) -> None:
        from rq import Queue

        from bench import peer_rq

        self.mod = peer_rq
        self.url = url
        self.r: redis.Redis = redis.Redis.from_url(url)
        self.q = Queue("default", connection=self.r)
        self.fork = fork
        self.name = "rq-fork" if fork else "rq"
        self.worker_desc = (
            "rq worker --quiet" + ("" if fork else " -w rq.SimpleWorker") + " default"
        )

    def enqueue_one(self, n: int) -> list[Any]:
        q, noop = self.q, self.mod.noop
        return [q.enqueue(noop) for _ in range(n)]

    def enqueue_bulk(self, n: int) -> list[Any]:
        from rq import Queue

        noop = self.mod.noop
        return self.q.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])

    def prefill(self, n: int, *, delay: float | None = None) -> list[str]:
        assert delay is None
        ids: list[str] = []
        for start in range(0, n, CHUNK):
            ids.extend(j.id for j in self.enqueue_bulk(min(CHUNK, n - start)))
        return ids

    def worker_cmd(self, concurrency: int) -> list[str]:
        cmd = [str(BIN / "rq"), "worker", "--url", self.url, "--quiet"]
        if not self.fork:
            cmd += ["--worker-class", "rq.SimpleWorker"]
        return [*cmd, "default"]

    def done_count(self) -> int:
        from rq.registry import FinishedJobRegistry

        return int(self.r.zcard(FinishedJobRegistry(queue=self.q).key))

    def finish_times(self, ids: Sequence[str]) -> list[float]:
        from rq.job import Job

        out = []
        for start in range(0, len(ids), 5000):
            pipe = self.r.pipeline(transaction=False)
            for job_id in ids[start : start + 5000]:
                pipe.hget(Job.key_for(job_id), "ended_at")
            for raw in pipe.execute():
                if raw:
                    stamp = datetime.strptime(raw.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
                    out.append(stamp.replace(tzinfo=UTC).timestamp())
        return out

    def enqueue_stamp(self) -> Any:
        return self.q.enqueue(self.mod.stamp)

    def stamp_results(self, handles: Sequence[Any]) -> list[float]:
        out = []
        for job in handles:
            value = job.return_value(refresh=True)
            if value is not None:
                out.append(float(value))
        return out

    def handle_id(self, handle: Any) -> str:
        return str(handle.id)


class Huey:
    """Huey: ``task()`` / ``task.map()`` (Huey's only multi-enqueue API, one LPUSH
    per job); ``huey_consumer -w 10 -k thread``."""

    name = "huey"

    def __init__(self, url: str) -> None:
        from bench import peer_huey

        self.mod = peer_huey
        self.huey = peer_huey.huey
        self.r: redis.Redis = redis.Redis.from_url(url)
        self.results_key = self.huey.storage.result_key
        self.worker_desc = "huey_consumer bench.peer_huey.huey -w 10 -k thread -q"

    def enqueue_one(self, n: int) -> list[Any]:
        noop = self.mod.noop
        return [noop() for _ in range(n)]

    def enqueue_bulk(self, n: int) -> list[Any]:
        result = self.mod.noop.map([()] * n)
        return list(result) if result is not None else []

    def prefill(self, n: int, *, delay: float | None = None) -> list[str]:
        assert delay is None
        group = self.mod.stamp.map([()] * n)
        return [r.id for r in group]

    def worker_cmd(self, concurrency: int) -> list[str]:
        return [
            str(BIN / "huey_consumer"),
            "bench.peer_huey.huey",
            "-w",
            str(concurrency),
            "-k",
            "thread",
            "-q",
        ]

    def done_count(self) -> int:
        return int(self.r.hlen(self.results_key))

    def finish_times(self, ids: Sequence[str]) -> list[float]:
        # The drain's jobs are ``stamp`` jobs: their result is their start
        # time; a no-op finishes within microseconds of it.
        deserialize = self.huey.serializer.deserialize
        wanted = set(ids)
        return [
            float(deserialize(v))
            for k, v in self.r.hgetall(self.results_key).items()
            if k.decode() in wanted
        ]

    def enqueue_stamp(self) -> Any:
        return self.mod.stamp()

    def stamp_results(self, handles: Sequence[Any]) -> list[float]:
        out = []
        for h in handles:
            value = h.get(blocking=True, timeout=30, preserve=True)
            if value is not None:
                out.append(float(value))
        return out

    def handle_id(self, handle: Any) -> str:
        return str(handle.id)


def make(name: str, url: str) -> Lib:
    """The adapter called ``name``: ``ours``, ``ours-cap``, ``ours-limq``,
    ``ours-limt``, ``rq``, ``rq-fork`` or ``huey``."""
    os.environ["BENCH_REDIS_URL"] = url
    if name == "ours":
        return Ours(url)
    if name.startswith("ours-"):
        return OursChecked(url, name.removeprefix("ours-"))
    if name == "rq":
        return RQ(url, fork=False)
    if name == "rq-fork":
        return RQ(url, fork=True)
    if name == "huey":
        return Huey(url)
    raise ValueError(f"unknown library {name!r}")


LIBS = ("ours", "rq", "rq-fork", "huey")

#: The variants of ours with capacity or limits on (:class:`OursChecked`).
CHECKED = ("ours-cap", "ours-limq", "ours-limt")
