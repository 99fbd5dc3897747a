"""The peers' adapters (RQ, Huey, Dramatiq) of :class:`bench.libs.Lib`, each
through its library's public API.

Each adapter imports its library and task module (``bench.peer_*``) when it is
built, so a run of ours alone never imports a peer; :func:`bench.libs.make`
builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from bench.libs import BIN, CHUNK


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


class Dramatiq:
    """Dramatiq with its Redis broker: ``actor.send()`` / ``group(...).run()``
    (Dramatiq's only multi-enqueue API: one dispatch-script call per
    message); ``dramatiq bench.peer_dramatiq --processes 1 --threads 10``
    (one worker process, like the others; Dramatiq's default is one per core
    and 8 threads). Finish times come from :func:`bench.peer_dramatiq.stamp`'s
    stored results; ``done_count`` from the broker's message hash (a message
    leaves it when acked, after its result is stored)."""

    name = "dramatiq"

    def __init__(self, url: str) -> None:
        from bench import peer_dramatiq

        self.mod = peer_dramatiq
        self.r: redis.Redis = redis.Redis.from_url(url)
        self.msgs_key = f"{peer_dramatiq.broker.namespace}:default.msgs"
        self.sent = 0
        self.messages: dict[str, Any] = {}
        self.worker_desc = "dramatiq bench.peer_dramatiq --processes 1 --threads 10"

    def enqueue_one(self, n: int) -> list[Any]:
        send = self.mod.noop.send
        out = [send() for _ in range(n)]
        self.sent += n
        return out

    def enqueue_bulk(self, n: int) -> list[Any]:
        from dramatiq import group

        g = group([self.mod.noop.message() for _ in range(n)]).run()
        self.sent += n
        return list(g.children)

    def prefill(self, n: int, *, delay: float | None = None) -> list[str]:
        assert delay is None
        from dramatiq import group

        ids: list[str] = []
        for start in range(0, n, CHUNK):
            msgs = [self.mod.stamp.message() for _ in range(min(CHUNK, n - start))]
            group(msgs).run()
            self.sent += len(msgs)
            self.messages.update((m.message_id, m) for m in msgs)
            ids.extend(m.message_id for m in msgs)
        return ids

    def worker_cmd(self, concurrency: int) -> list[str]:
        return [
            str(BIN / "dramatiq"),
            "bench.peer_dramatiq",
            "--processes",
            "1",
            "--threads",
            str(concurrency),
        ]

    def done_count(self) -> int:
        return self.sent - int(self.r.hlen(self.msgs_key))

    def _results(self, messages: Sequence[Any]) -> list[float]:
        backend = self.mod.backend
        out = []
        for start in range(0, len(messages), 5000):
            chunk = messages[start : start + 5000]
            pipe = self.r.pipeline(transaction=False)
            for m in chunk:
                pipe.lindex(backend.build_message_key(m), 0)
            for raw in pipe.execute():
                if raw is not None:
                    out.append(float(backend.unwrap_result(backend.encoder.decode(raw))))
        return out

    def finish_times(self, ids: Sequence[str]) -> list[float]:
        # As for Huey: the drain's jobs are ``stamp`` jobs, whose result is
        # their start time; a no-op finishes within microseconds of it.
        return self._results([self.messages[i] for i in ids if i in self.messages])

    def enqueue_stamp(self) -> Any:
        self.sent += 1
        return self.mod.stamp.send()

    def stamp_results(self, handles: Sequence[Any]) -> list[float]:
        return self._results(list(handles))

    def handle_id(self, handle: Any) -> str:
        return str(handle.message_id)
