"""Read-side queries (scheduler.admin) on fakeredis and on a real Redis server."""

from __future__ import annotations

import threading

import pytest
import redis

from scheduler import JobSpec, Scheduler
from scheduler.admin import (
    follow_events,
    job_ids,
    list_jobs,
    list_workers,
    overview,
    queue_status,
    recent_events,
    stream_position,
)
from scheduler.admin import queues as queues_module
from scheduler.errors import InvalidNameError, ValidationError
from tests.helpers import wait_until
from tests.test_cli_common import lease_all, make_dead


def test_queue_status_counts_and_unknown_queue(app: Scheduler) -> None:
    app.enqueue("m:f", queue="q")
    app.enqueue("m:f", queue="q", delay=60)
    (status,) = queue_status(app.backend, ["q"])
    assert [status.ready, status.delayed, status.leased, status.dead, status.done] == [
        1,
        1,
        0,
        0,
        0,
    ]
    assert status.totals["enqueued"] == 2 and status.oldest_ready_exact
    assert status.oldest_ready_age is not None and 0 <= status.oldest_ready_age < 60
    (unknown,) = queue_status(app.backend, ["nothing-here"])
    assert unknown.ready == 0 and unknown.oldest_ready_age is None and not unknown.paused
    with pytest.raises(InvalidNameError):
        queue_status(app.backend, ["a{b"])


def test_oldest_ready_is_the_longest_waiting_not_the_next_to_run(
    app: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    qk = app.queue_keys("q")
    app.enqueue("m:f", queue="q", job_id="old", priority=1)
    now = app.backend.server_time_ms()
    # Pretend "old" has been ready for 100 s (rewrite its ready time in the record).
    text = app.redis.hget(qk.jobs, "old")
    assert isinstance(text, bytes)
    fields = text.decode().split("\x1f")
    fields[7] = str(now - 100_000)
    app.redis.hset(qk.jobs, "old", "\x1f".join(fields))
    app.enqueue_many([JobSpec("m:f", options=_opts(priority=5)) for _ in range(9)])
    (status,) = queue_status(app.backend, ["q"])
    assert status.oldest_ready_age is not None and status.oldest_ready_age >= 100
    assert status.oldest_ready_exact
    monkeypatch.setattr(queues_module, "OLDEST_SCAN_LIMIT", 4)  # sample: both ends
    (sampled,) = queue_status(app.backend, ["q"])
    assert not sampled.oldest_ready_exact
    assert sampled.oldest_ready_age is not None and sampled.oldest_ready_age >= 100  # the tail


def _opts(**kw: object) -> object:
    from scheduler import EnqueueOptions

    return EnqueueOptions(queue="q", **kw)  # type: ignore[arg-type]


def test_jobs_per_second_over_the_last_minute(app: Scheduler) -> None:
    qk = app.queue_keys("q")
    now_s = app.backend.server_time_ms() // 1000
    app.redis.hset(
        qk.stats,
        mapping={f"r:{now_s}": 30, f"r:{now_s - 59}": 30, f"r:{now_s - 60}": 1000, "rsec": now_s},
    )
    app.redis.sadd(app.keys.queues, "q")
    (status,) = overview(app.backend).queues
    assert status.jobs_per_s == 1.0  # (30 + 30) / 60; the bucket 60 s ago is out


def test_list_jobs_states_and_limits(app: Scheduler) -> None:
    for i in range(5):
        app.enqueue("m:f", queue="q", job_id=f"r{i}", priority=i)
    assert [j.id for j in list_jobs(app.backend, "q", "ready", limit=3)] == ["r4", "r3", "r2"]
    assert [j.id for j in list_jobs(app.backend, "q", "ready", limit=3, offset=3)] == ["r1", "r0"]
    with pytest.raises(ValidationError, match="unknown state"):
        list_jobs(app.backend, "q", "sleeping")
    with pytest.raises(ValidationError):
        list_jobs(app.backend, "q", "ready", limit=0)


def test_list_jobs_offset_in_a_set_shared_by_two_states(app: Scheduler) -> None:
    for job_id in "abcd":
        app.enqueue("m:f", queue="q", job_id=job_id)
    app.job("a").cancel()
    app.job("c").cancel()
    leased = lease_all(app, "q", 2)
    app.scripts.complete(app.queue_keys("q"), [(i, t, "null") for i, t in leased])
    assert [j.id for j in list_jobs(app.backend, "q", "cancelled")] == ["a", "c"]
    assert [j.id for j in list_jobs(app.backend, "q", "cancelled", offset=1)] == ["c"]
    assert [j.id for j in list_jobs(app.backend, "q", "succeeded", offset=1, limit=5)] == ["d"]
    assert list_jobs(app.backend, "q", "succeeded", offset=2) == []


def test_job_ids_filter_by_task_and_state(app: Scheduler) -> None:
    dead_a = make_dead(app, 3, task="m:a", queue="q")
    dead_b = make_dead(app, 2, task="m:b", queue="q")
    assert sorted(job_ids(app.backend, "q", "dead")) == sorted(dead_a + dead_b)
    assert sorted(job_ids(app.backend, "q", "dead", "m:b")) == sorted(dead_b)
    assert job_ids(app.backend, "q", "failed") == []
    app.enqueue("m:f", queue="q", job_id="retrying", max_attempts=2)
    ((job_id, token),) = lease_all(app, "q", 1, worker="w2")
    app.scripts.fail(app.queue_keys("q"), [(job_id, token, "{}", 60_000)])
    app.enqueue("m:f", queue="q", job_id="later", delay=60)
    assert job_ids(app.backend, "q", "failed") == ["retrying"]
    assert [j.id for j in list_jobs(app.backend, "q", "delayed")] == ["later"]


def test_list_workers_prunes_expired_entries(app: Scheduler) -> None:
    keys = app.keys
    app.redis.zadd(keys.workers, {"alive": 2000.0, "dead": 1000.0})
    app.redis.hset(
        keys.worker("alive"),
        mapping={"host": "h", "pid": "7", "queues": "a,b", "concurrency": "2", "beat": "1.5"},
    )
    (w,) = list_workers(app.backend)
    expected = ("alive", "h", 7, ("a", "b"), 2, 1.5)
    assert (w.id, w.host, w.pid, w.queues, w.concurrency, w.last_beat) == expected
    assert app.redis.zrange(keys.workers, 0, -1) == [b"alive"]
    assert list_workers(app.backend, "b") and not list_workers(app.backend, "c")


def test_recent_events_limit(app: Scheduler) -> None:
    for i in range(5):
        app.enqueue("m:f", queue="q", job_id=f"e{i}")
    events = recent_events(app.backend, count=2)
    assert [e.job for e in events] == ["e3", "e4"] and events[0].event == "enqueued"
    assert recent_events(app.backend, ["q"], count=0) == []


def test_follow_events_from_a_position(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="f")
    app.enqueue("m:f", queue="q1", job_id="old")
    old_ms = int(recent_events(app.backend, count=1)[0].id.split("-")[0])
    wait_until(lambda: app.backend.server_time_ms() > old_ms)  # the position covers whole ms
    since = stream_position(app.backend)
    app.enqueue("m:f", queue="q1", job_id="new")  # after the position: delivered
    stop = threading.Event()
    seen: list[str] = []

    def produce() -> None:
        app.enqueue("m:f", queue="q2", job_id="late-queue")  # registered while following

    for event in follow_events(app.backend, since=since, block=0.2, stop=stop):
        seen.append(event.job)
        if event.job == "new":
            threading.Thread(target=produce).start()
        if event.job == "late-queue":
            stop.set()
    assert seen == ["new", "late-queue"]


# -- the storage layer's reads behind the admin queries --------------------------


def test_a_damaged_record_is_skipped_not_fatal(app: Scheduler) -> None:
    for i in range(3):
        app.enqueue("m:f", queue="q", job_id=f"j{i}", priority=i)
    app.redis.hset(app.queue_keys("q").jobs, "j1", "not a record")
    assert [j.id for j in list_jobs(app.backend, "q", "ready")] == ["j2", "j0"]
    assert job_ids(app.backend, "q", "ready") == ["j2", "j1", "j0"]  # ids only: unread
    assert job_ids(app.backend, "q", "ready", "m:f") == ["j2", "j0"]
    (status,) = queue_status(app.backend, ["q"])
    assert status.ready == 3 and status.oldest_ready_age is not None


def test_queue_snapshots_read_sizes_settings_and_counters(app: Scheduler) -> None:
    app.enqueue("m:f", queue="q")
    app.enqueue("m:f", queue="q", delay=60)
    app.pause("q")
    app.set_aging("q", 0.5)
    full, empty = app.backend.queue_snapshots(["q", "none"])
    assert full.queue == "q" and full.paused and full.aging == 0.5
    assert full.sizes == {"ready": 1, "delayed": 1, "leased": 0, "dead": 0, "done": 0}
    assert full.stats["enqueued"] == "2"
    assert empty.sizes == dict.fromkeys(full.sizes, 0) and not empty.paused
    assert empty.aging == 0.0 and empty.stats == {}
    (asked,) = app.backend.queue_snapshots(["q"], stats=["enqueued", "dead"])
    assert asked.stats == {"enqueued": "2"}  # absent counters are left out
    (none,) = app.backend.queue_snapshots(["q"], stats=[])
    assert none.stats == {} and none.sizes == full.sizes
    assert app.backend.queue_snapshots([]) == []
    with pytest.raises(InvalidNameError):
        app.backend.queue_snapshots(["a{b"])


def test_job_set_range_gives_job_ids_in_score_order(app: Scheduler) -> None:
    for i in range(3):
        app.enqueue("m:f", queue="q", job_id=f"d{i}", delay=60 + i)
    page = app.backend.job_set_range("q", "delayed", 0, 1)
    assert [job_id for job_id, _ in page] == ["d0", "d1"]
    assert page[0][1] < page[1][1]  # ETA, ms
    assert [job_id for job_id, _ in app.backend.job_set_range("q", "delayed", -1, -1)] == ["d2"]
    assert app.backend.job_set_size("q", "delayed") == 3
    assert app.backend.job_set_size("q", "dead") == 0
    with pytest.raises(ValidationError, match="unknown job set"):
        app.backend.job_set_range("q", "jobs", 0, -1)
    with pytest.raises(ValidationError, match="unknown job set"):
        app.backend.job_set_size("q", "meta")


def test_worker_registry_entries_and_forgetting(app: Scheduler) -> None:
    keys = app.keys
    assert app.backend.worker_entries() == []
    app.redis.zadd(keys.workers, {"old": 1000.0, "new": 3000.0})
    app.redis.hset(keys.worker("new"), mapping={"host": "h", "queues": "a"})
    new, old = app.backend.worker_entries()
    assert (new.id, new.beat_ms, new.details) == ("new", 3000.0, {"host": "h", "queues": "a"})
    assert (old.id, old.details) == ("old", {})
    app.backend.forget_workers(["old"])
    app.backend.forget_workers([])
    assert [e.id for e in app.backend.worker_entries()] == ["new"]


def test_recent_event_entries_newest_first(app: Scheduler) -> None:
    app.enqueue("m:f", queue="q", job_id="a")
    app.enqueue("m:f", queue="q", job_id="b")
    (entries, nothing) = app.backend.recent_event_entries(["q", "none"], 5)
    assert [e.fields["j"] for e in entries] == ["b", "a"] and nothing == []
    assert entries[0].fields["e"] == "enqueued"
    assert app.backend.recent_event_entries([], 5) == []


def test_event_reader_reads_after_each_cursor(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="er")
    app.enqueue("m:f", queue="q1", job_id="one")
    (first,) = app.backend.recent_event_entries(["q1"], 1)[0]
    app.enqueue("m:f", queue="q1", job_id="two")
    app.enqueue("m:f", queue="q2", job_id="three")
    with app.backend.event_reader(1.0) as reader:
        got = reader.read_events({"q1": first.id, "q2": "0-0"}, block_ms=100, count=10)
        assert sorted((q, [e.fields["j"] for e in entries]) for q, entries in got) == [
            ("q1", ["two"]),
            ("q2", ["three"]),
        ]
        last = {q: entries[-1].id for q, entries in got}
        assert reader.read_events(last, block_ms=10, count=10) == []
        assert reader.read_events({}, block_ms=10, count=10) == []
