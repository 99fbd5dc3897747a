"""The schedule Lua scripts, on fakeredis and on a real Redis server (``client`` fixture)."""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import attrs
import pytest
import redis

from scheduler import Scheduler
from scheduler.backend.codes import FireCode, PauseCode
from scheduler.backend.connection import server_time_ms
from scheduler.backend.cron_scripts import CRON_SCRIPT_NAMES, CronScripts, FireEntry, FireJob
from scheduler.backend.keys import QueueKeys
from scheduler.backend.lualoader import script_header
from scheduler.backend.record import JobState, parse_record
from scheduler.backend.scripts import Scripts, load_script_text
from scheduler.cron import Schedule
from scheduler.cron.state import ScheduleStatus, StoredSchedule, parse_stored

CHANNEL = "t:schedules:changed"


@pytest.fixture
def app(client: redis.Redis) -> Scheduler:
    return Scheduler(client, prefix="t")


@pytest.fixture
def cs(client: redis.Redis) -> CronScripts:
    return CronScripts(client)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "default")


def every_second(app: Scheduler, **options: Any) -> Schedule:
    return app.every(1, "m:f", [1], declare=False, id="s1", **options)


def stored(client: redis.Redis, qk: QueueKeys, sid: str = "s1") -> StoredSchedule:
    raw = client.hget(qk.schedules, sid)
    assert isinstance(raw, bytes | str)
    return parse_stored(raw)


def upsert(cs: CronScripts, qk: QueueKeys, s: Schedule, next_ms: int | None, paused: bool = False):  # type: ignore[no-untyped-def]
    return cs.upsert(qk, s.id, s.digest, s.to_json(), next_ms, paused=paused, channel=CHANNEL)


class Fired(NamedTuple):
    status: str
    created: int
    value: int


STATUS = {
    FireCode.FIRED: "fired",
    FireCode.STALE: "stale",
    FireCode.EARLY: "early",
    FireCode.DROPPED: "dropped",
}


def entry(
    cs: CronScripts,
    qk: QueueKeys,
    s: Schedule,
    expected: int,
    new_next: int | None,
    fires: list[int],
    missed: int = 0,
    record: bytes | str | None = None,
) -> FireEntry:
    """The entry of a plan, made from the record stored now (or ``record``)."""
    if record is None:
        record = cs.client.hget(qk.schedules, s.id) or ""  # type: ignore[assignment]
    assert record is not None
    jobs = [FireJob(s.job_id(f), f, s.due_ms(f), s.job_meta(f, missed)) for f in fires]
    return FireEntry(s.id, record, expected, False, new_next, missed, s.job, jobs)


def fire(
    cs: CronScripts,
    qk: QueueKeys,
    s: Schedule,
    expected: int,
    new_next: int | None,
    fires: list[int],
    missed: int = 0,
    record: bytes | str | None = None,
) -> Fired:
    reply = cs.fire(qk, [entry(cs, qk, s, expected, new_next, fires, missed, record)])
    (outcome,) = reply.outcomes
    if outcome.code is FireCode.FIRED:
        return Fired("fired", outcome.value, reply.now_ms)
    return Fired(STATUS[outcome.code], 0, outcome.value)


def test_every_cron_script_has_a_header_naming_keys_argv_returns_errors_and_events() -> None:
    for name in CRON_SCRIPT_NAMES:
        head = script_header(name)
        assert head.startswith(f"-- {name}.lua -- "), name
        assert "KEYS[1" in head and "ARGV[1]" in head, name
        for part in ("\n-- Returns: ", "\n-- Errors: ", "\n-- Events: "):
            assert part in head, (name, part)


def test_upsert_creates_then_leaves_an_equal_definition_alone(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    reply = upsert(cs, qk, s, 5_000)
    assert (reply.outcome, reply.status) == ("created", "A")
    assert client.zscore(qk.cron, "s1") == 5_000
    # The same definition again (another process, a restart): nothing moves.
    assert upsert(cs, qk, s, 9_000).outcome == "unchanged"
    assert client.zscore(qk.cron, "s1") == 5_000
    rec = stored(client, qk)
    assert rec.status is ScheduleStatus.ACTIVE and rec.digest == s.digest
    assert Schedule.from_json(rec.definition) == s


def test_upsert_of_a_changed_definition_updates_in_place(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    assert fire(cs, qk, s, 5_000, 6_000, [5_000]).status == "fired"
    changed = app.every(2, "m:f", [2], declare=False, id="s1")
    assert changed.digest != s.digest
    assert upsert(cs, qk, changed, 8_000).outcome == "updated"
    assert client.hlen(qk.schedules) == 1 and client.zcard(qk.cron) == 1
    assert client.zscore(qk.cron, "s1") == 8_000
    rec = stored(client, qk)
    assert rec.digest == changed.digest
    assert rec.last_fire_ms == 5_000 and rec.fired == 1  # history kept


def test_upsert_keeps_a_paused_schedule_paused_and_ends_without_next(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    assert upsert(cs, qk, s, 5_000, paused=True).status == "P"
    assert client.zscore(qk.cron, "s1") is None
    changed = app.every(3, "m:f", declare=False, id="s1")
    assert upsert(cs, qk, changed, 6_000).status == "P"
    assert client.zscore(qk.cron, "s1") is None
    ended = app.every(1, "m:f", declare=False, id="s2")
    reply = cs.upsert(qk, "s2", ended.digest, ended.to_json(), None, paused=False, channel=CHANNEL)
    assert reply.status == "E" and client.zscore(qk.cron, "s2") is None


def test_upsert_repairs_an_active_schedule_missing_from_the_cron_set(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    client.delete(qk.cron)
    assert upsert(cs, qk, s, 7_000).outcome == "unchanged"
    assert client.zscore(qk.cron, "s1") == 7_000


def test_pause_resume_remove(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    assert cs.pause(qk, "s1", True, None, channel=CHANNEL) == 1
    assert cs.pause(qk, "s1", True, None, channel=CHANNEL) == 0
    assert client.zscore(qk.cron, "s1") is None
    assert stored(client, qk).status is ScheduleStatus.PAUSED
    assert cs.pause(qk, "s1", False, 9_000, channel=CHANNEL) == 1
    assert cs.pause(qk, "s1", False, 9_500, channel=CHANNEL) == 0  # not paused
    assert client.zscore(qk.cron, "s1") == 9_000
    assert cs.pause(qk, "nope", True, None, channel=CHANNEL) == -1
    assert cs.remove(qk, "s1", channel=CHANNEL) == 1
    assert cs.remove(qk, "s1", channel=CHANNEL) == 0
    assert client.hlen(qk.schedules) == 0 and client.zcard(qk.cron) == 0


def test_changes_are_published(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(CHANNEL)
    try:
        s = every_second(app)
        upsert(cs, qk, s, 5_000)
        upsert(cs, qk, s, 5_000)  # unchanged: no message
        cs.pause(qk, "s1", True, None, channel=CHANNEL)
        cs.remove(qk, "s1", channel=CHANNEL)
        cs.pause(qk, "s1", True, None, channel=CHANNEL)  # already paused: no message
        got: list[object] = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=0.5)
            if msg is not None and msg["type"] == "message":
                got.append(msg["data"])
        assert pubsub.get_message(timeout=0.05) is None  # nothing more was published
        assert [g.decode() if isinstance(g, bytes) else g for g in got] == ["default"] * 3
    finally:
        pubsub.close()


def test_fire_creates_the_job_and_advances_exactly_once(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    reply = fire(cs, qk, s, 5_000, 6_000, [5_000])
    assert (reply.status, reply.created) == ("fired", 1)
    assert reply.value >= server_time_ms(client) - 5_000
    # A second process with the same plan is told the schedule moved on.
    again = fire(cs, qk, s, 5_000, 6_000, [5_000])
    assert (again.status, again.value) == ("stale", 6_000)
    assert client.zscore(qk.cron, "s1") == 6_000
    job = parse_record("cron:s1:5000", client.hget(qk.jobs, "cron:s1:5000"))  # type: ignore[arg-type]
    assert job.state is JobState.READY and job.task == "m:f" and job.payload == "[[1],{}]"
    assert json.loads(job.meta) == {
        "schedule": "s1",
        "fire_at": 5_000,
        "misfire": "coalesce",
        "missed": 0,
    }
    rec = stored(client, qk)
    assert (rec.last_fire_ms, rec.last_job_id, rec.fired) == (5_000, "cron:s1:5000", 1)
    assert client.llen(qk.wake) == 1  # an idle worker is woken
    assert int(client.hget(qk.stats, "enqueued") or 0) == 1


def test_fire_refuses_a_changed_paused_or_removed_schedule(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    assert fire(cs, qk, s, 4_000, 6_000, [4_000]).status == "stale"  # wrong expected time
    # The record changed since it was read (e.g. updated): stale, nothing written.
    assert fire(cs, qk, s, 5_000, 6_000, [5_000], record=b"another").status == "stale"
    cs.pause(qk, "s1", True, None, channel=CHANNEL)
    assert fire(cs, qk, s, 5_000, 6_000, [5_000]).value == -1
    cs.remove(qk, "s1", channel=CHANNEL)
    assert fire(cs, qk, s, 5_000, 6_000, [5_000]).status == "stale"
    assert client.hlen(qk.jobs) == 0


def test_fire_never_runs_early(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    future = server_time_ms(client) + 60_000
    upsert(cs, qk, s, future)
    reply = fire(cs, qk, s, future, future + 1000, [future])
    assert reply.status == "early" and client.hlen(qk.jobs) == 0
    assert client.zscore(qk.cron, "s1") == future
    upsert(cs, qk, every_second(app, start=None), future)
    with pytest.raises(redis.ResponseError, match="bad arguments"):
        fire(cs, qk, s, future, future, [])


def test_fire_without_jobs_skips_and_counts_missed(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app, misfire="skip")
    upsert(cs, qk, s, 5_000)
    assert fire(cs, qk, s, 5_000, 12_000, [], missed=7).status == "fired"
    rec = stored(client, qk)
    assert (rec.missed, rec.fired, rec.last_job_id) == (7, 0, None)
    assert client.zscore(qk.cron, "s1") == 12_000 and client.hlen(qk.jobs) == 0


def test_fire_many_jobs_and_end_the_schedule(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app, misfire="catch_up")
    upsert(cs, qk, s, 5_000)
    reply = fire(cs, qk, s, 5_000, None, [5_000, 6_000, 7_000])
    assert (reply.status, reply.created) == ("fired", 3)
    assert client.zscore(qk.cron, "s1") is None
    rec = stored(client, qk)
    assert rec.status is ScheduleStatus.ENDED and rec.last_job_id == "cron:s1:7000"


def test_a_repeated_firing_never_duplicates_a_job(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    # A job of the same firing already exists (e.g. the reply of a first call
    # was lost and the state repaired): it is not created twice.
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    from scheduler.backend.scripts import EnqueueItem

    Scripts(client).enqueue(
        qk, [EnqueueItem("cron:s1:5000", "m:f", "[[],{}]", "1.0", "", s.job.options)]
    )
    reply = fire(cs, qk, s, 5_000, 6_000, [5_000])
    assert (reply.status, reply.created) == ("fired", 0)
    assert client.hlen(qk.jobs) == 1 and stored(client, qk).fired == 0


def test_jittered_firing_is_a_delayed_job(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    now = server_time_ms(client)
    s = every_second(app, jitter=30)
    fire_ms = now - now % 1000
    upsert(cs, qk, s, fire_ms)
    due = s.due_ms(fire_ms)
    fire(cs, qk, s, fire_ms, fire_ms + 1000, [fire_ms])
    job = parse_record(s.job_id(fire_ms), client.hget(qk.jobs, s.job_id(fire_ms)))  # type: ignore[arg-type]
    if due > now + 50:  # (the jitter of this firing is large enough to still be ahead)
        assert job.state is JobState.DELAYED and job.ready_ms == due
    assert fire_ms <= due < fire_ms + 30_000


def test_bad_arguments_are_refused(cs: CronScripts, qk: QueueKeys, client: redis.Redis) -> None:
    script = client.register_script(load_script_text("cron_fire"))
    with pytest.raises(redis.ResponseError, match="bad arguments"):
        script(keys=[*qk.standard(), qk.schedules, qk.cron], args=[0, "s", "d", 1, "", 0, "t"])
    with pytest.raises(redis.ResponseError, match="bad arguments"):  # 1 entry, too short
        script(keys=[*qk.standard(), qk.schedules, qk.cron], args=[0, 1, "s", "", 1, "F"])
    upsert_script = client.register_script(load_script_text("schedule_upsert"))
    with pytest.raises(redis.ResponseError, match="bad arguments"):
        upsert_script(keys=[qk.schedules, qk.cron], args=["s", "d", "{}", "x", "A", CHANNEL, "q"])


def test_cron_package_and_scripts_are_in_the_build() -> None:
    # The wheel is built from an explicit package list (tests/test_packaging.py
    # builds one); the cron package and its scripts must be part of it.
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "scheduler.cron" in config["packages"]
    assert "*.lua" in config["package-data"]["scheduler.lua"]
    assert "*.lua" in config["package-data"]["scheduler.lua.lib"]
    for name in CRON_SCRIPT_NAMES:
        assert (root / "lua" / f"{name}.lua").is_file()
        assert "--@include" not in load_script_text(name)
    assert (root / "lua" / "lib" / "schedule.lua").is_file()


def damage(client: redis.Redis, qk: QueueKeys, sid: str, old: bytes, new: bytes) -> bytes:
    raw = client.hget(qk.schedules, sid)
    assert isinstance(raw, bytes) and old in raw
    bad = raw.replace(old, new, 1)
    client.hset(qk.schedules, sid, bad)
    return bad


def test_one_call_fires_many_schedules_each_on_its_own(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    now = server_time_ms(client)
    s0, s1, s2, s3 = (app.every(1, "m:f", [i], declare=False, id=f"s{i}") for i in range(4))
    for s in (s0, s1, s2, s3):
        upsert(cs, qk, s, 5_000)
    # s3's fired counter is "1_0": Python's int() takes it, Lua's tonumber does
    # not. It used to make the script raise half-way and stop every schedule.
    bad = damage(client, qk, "s3", b"\x1f0\x1f0\x1f", b"\x1f1_0\x1f0\x1f")
    client.zadd(qk.cron, {"ghost": 5_000})  # in the cron set, no record
    reply = cs.fire(
        qk,
        [
            entry(cs, qk, s0, 5_000, 6_000, [5_000]),
            entry(cs, qk, s1, 4_000, 6_000, [4_000]),  # stale: it is at 5 000
            entry(cs, qk, s2, 5_000, 6_000, [now + 60_000]),  # early
            entry(cs, qk, s3, 5_000, 6_000, [5_000]),  # damaged: dropped, not fired
            FireEntry("ghost", "", 5_000, drop=True),
        ],
    )
    assert [(o.code, o.value) for o in reply.outcomes] == [
        (FireCode.FIRED, 1),
        (FireCode.STALE, 5_000),
        (FireCode.EARLY, reply.now_ms),
        (FireCode.DROPPED, 0),
        (FireCode.DROPPED, 0),
    ]
    assert [k.decode() for k in client.hkeys(qk.jobs)] == ["cron:s0:5000"]
    assert client.zscore(qk.cron, "s0") == 6_000
    assert client.zscore(qk.cron, "s1") == client.zscore(qk.cron, "s2") == 5_000
    assert client.zscore(qk.cron, "s3") is None and client.zscore(qk.cron, "ghost") is None
    assert client.hget(qk.schedules, "s3") == bad  # kept as it was, for an operator


def test_upsert_replaces_a_damaged_record_and_pause_refuses_it(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    bad = damage(client, qk, "s1", b"\x1f0\x1f0\x1f", "\x1f0\x1f\u0661\x1f".encode())
    with pytest.raises(redis.ResponseError, match="bad schedule record"):
        cs.pause(qk, "s1", True, None, channel=CHANNEL)
    assert client.hget(qk.schedules, "s1") == bad and client.zscore(qk.cron, "s1") == 5_000
    reply = upsert(cs, qk, s, 7_000)
    assert (reply.outcome, reply.status) == ("replaced", "A")
    rec = stored(client, qk)
    assert (rec.fired, rec.missed, rec.digest) == (0, 0, s.digest)
    assert client.zscore(qk.cron, "s1") == 7_000
    # A definition edited by hand under the same digest is updated back.
    damage(client, qk, "s1", b'"m:f"', b'"m:g"')
    assert upsert(cs, qk, s, 8_000).outcome == "updated"
    assert json.loads(stored(client, qk).definition)["job"]["task"] == "m:f"
    assert cs.pause(qk, "s1", True, None, channel=CHANNEL) is PauseCode.CHANGED


def test_a_plan_past_its_until_is_late_and_writes_nothing(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    # A plan made ahead holds only until `until_ms`: a cron process that
    # stalled past it must plan again under the misfire policy.
    s0, s1 = (app.every(1, "m:f", [i], declare=False, id=f"s{i}") for i in range(2))
    for s in (s0, s1):
        upsert(cs, qk, s, 5_000)
    late = attrs.evolve(entry(cs, qk, s0, 5_000, 6_000, [5_000]), until_ms=6_001)
    holds = attrs.evolve(entry(cs, qk, s1, 5_000, 6_000, [5_000]), until_ms=2**52)
    reply = cs.fire(qk, [late, holds])
    assert [(o.code, o.value) for o in reply.outcomes] == [
        (FireCode.LATE, reply.now_ms),
        (FireCode.FIRED, 1),
    ]
    assert [k.decode() for k in client.hkeys(qk.jobs)] == ["cron:s1:5000"]
    assert client.zscore(qk.cron, "s0") == 5_000 and stored(client, qk, "s0").fired == 0


def test_an_id_repeated_in_one_call_applies_once(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s = every_second(app)
    upsert(cs, qk, s, 5_000)
    first = entry(cs, qk, s, 5_000, 6_000, [5_000])
    other = entry(cs, qk, s, 5_000, 7_000, [5_000, 6_000])  # a different plan, same read
    reply = cs.fire(qk, [first, other])
    assert [(o.code, o.value) for o in reply.outcomes] == [
        (FireCode.FIRED, 1),
        (FireCode.STALE, 5_000),
    ]
    assert client.hlen(qk.jobs) == 1 and client.zscore(qk.cron, "s1") == 6_000
    assert stored(client, qk).fired == 1


def test_calls_sent_together_run_in_order_each_on_its_own(
    app: Scheduler, cs: CronScripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s0, s1 = (app.every(1, "m:f", [i], declare=False, id=f"s{i}") for i in range(2))
    for s in (s0, s1):
        upsert(cs, qk, s, 5_000)
    e0, e1 = entry(cs, qk, s0, 5_000, 6_000, [5_000]), entry(cs, qk, s1, 5_000, 6_000, [5_000])
    # The second call repeats s0's entry: the first call moved it, so it is stale.
    replies = cs.fire_many(qk, [[e0.args()], [e1.args(), e0.args()]])
    assert [[(o.code, o.value) for o in r.outcomes] for r in replies] == [
        [(FireCode.FIRED, 1)],
        [(FireCode.FIRED, 1), (FireCode.STALE, 6_000)],
    ]
    events = client.xrange(qk.events)
    enqueued = [e for _, e in events if e[b"e"] == b"enqueued"]
    assert sorted(b",".join(e[b"j"] for e in enqueued).split(b",")) == [
        b"cron:s0:5000",
        b"cron:s1:5000",
    ]
