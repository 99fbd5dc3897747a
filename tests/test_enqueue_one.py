"""``enqueue_one.lua`` (the single-job path) writes the same job as
``enqueue.lua``, on fakeredis and on a real server; the version 3 record
stores default options as "" and reads version 2 records."""

from __future__ import annotations

import pytest
import redis

from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import (
    DEFAULT_OPTIONS,
    FIELDS,
    SEP,
    JobOptions,
    JobState,
    parse_record,
    split_leased,
)
from scheduler.backend.scripts import EnqueueItem, ScriptCall, ScriptReplyError, Scripts

# Fields that differ between two jobs enqueued one after the other.
_OWN = {"seq", "enqueued_ms", "ready_ms", "aged"}


def item(job_id: str, **kw: object) -> EnqueueItem:
    fields: dict[str, object] = {
        "job_id": job_id,
        "task": "m:f",
        "payload": "[[1],{}]",
        "priority": "2.5",
        "inputs": "1,2.5,1",
        "options": DEFAULT_OPTIONS,
        "meta": '{"k":1}',
    }
    fields.update(kw)
    return EnqueueItem(**fields)  # type: ignore[arg-type]


@pytest.fixture
def s(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "q")


def fields(client: redis.Redis, qk: QueueKeys, job_id: str) -> dict[str, str]:
    text = client.hget(qk.jobs, job_id)
    assert text is not None
    values = text.decode().split(SEP, len(FIELDS) - 1)
    return {name: v for name, v in zip(FIELDS, values, strict=True) if name not in _OWN}


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"options": "3,1000,0,-1,500"},
        {"inputs": "", "priority": "-7"},
        {"delay_ms": 60_000},
        {"eta_ms": 1},  # in the past: ready at once
    ],
)
def test_one_job_is_the_same_job_as_a_batch_of_one(
    client: redis.Redis, s: Scripts, qk: QueueKeys, kw: dict[str, object]
) -> None:
    one = s.enqueue_call(qk, [item("a", **kw)])
    assert one.name == "enqueue_one"
    assert s.run_many([one]) == [[True]]
    # A batch of two goes through enqueue.lua.
    assert s.enqueue(qk, [item("b", **kw), item("c", **kw)]) == [True, True]
    assert fields(client, qk, "a") == fields(client, qk, "b")
    a, b = (parse_record(j, client.hget(qk.jobs, j) or b"") for j in "ab")
    assert a.state == b.state
    assert a.seq < b.seq
    in_set = qk.delayed if a.state is JobState.DELAYED else qk.ready
    assert client.zscore(in_set, f"{a.seq}:a") is not None


def test_default_options_are_stored_empty_and_read_as_the_defaults(
    client: redis.Redis, s: Scripts, qk: QueueKeys
) -> None:
    s.enqueue(qk, [item("d")])
    text = (client.hget(qk.jobs, "d") or b"").decode()
    assert text.split(SEP)[FIELDS.index("options")] == ""
    assert text.split(SEP)[0] == "3"
    rec = parse_record("d", text)
    assert rec.options == JobOptions(10, 60_000, 3_600_000, 604_800_000)
    # The worker's decoder hands the field on; JobOptions reads "" as the defaults.
    options = split_leased(text)[4]  # LEASED_FIELDS: token, task, payload, attempts, options
    assert JobOptions.decode(options) == rec.options
    # A lease reads the default lease time from "" (its deadline is 60 s out).
    reply = s.lease(qk, 1, "w1", "r1")
    assert [job_id for job_id, _ in reply.jobs] == ["d"]
    deadline = client.zscore(qk.leased, "d")
    assert deadline is not None
    assert deadline - parse_record("d", reply.jobs[0][1]).enqueued_ms >= 59_000


def test_a_version_2_record_is_still_read(client: redis.Redis, s: Scripts, qk: QueueKeys) -> None:
    s.enqueue(qk, [item("v2", options="4,60000,0,-1")])
    text = (client.hget(qk.jobs, "v2") or b"").decode()
    client.hset(qk.jobs, "v2", "2" + text[1:])
    assert parse_record("v2", "2" + text[1:]).options.max_attempts == 4
    reply = s.lease(qk, 1, "w1", "r1")
    assert [job_id for job_id, _ in reply.jobs] == ["v2"]
    assert parse_record("v2", reply.jobs[0][1]).state is JobState.LEASED


def test_an_existing_id_is_left_alone(client: redis.Redis, s: Scripts, qk: QueueKeys) -> None:
    assert s.enqueue(qk, [item("x")]) == [True]
    before = client.hget(qk.jobs, "x")
    assert s.enqueue(qk, [item("x", payload="[[2],{}]")]) == [False]
    assert client.hget(qk.jobs, "x") == before
    assert client.zcard(qk.ready) == 1
    assert client.hget(qk.stats, "enqueued") == b"1"


def test_the_single_job_script_refuses_a_learned_time(
    client: redis.Redis, s: Scripts, qk: QueueKeys
) -> None:
    learned = item("l", inputs="1,1,1,0.5,5")
    assert s.enqueue_call(qk, [learned]).name == "enqueue"
    call = ScriptCall("enqueue_one", qk.standard(), [10_000, 1, *learned.argv()], list)
    with pytest.raises(ScriptReplyError, match="learned time"):
        s.run_many([call])
    assert client.hget(qk.jobs, "l") is None
    assert s.enqueue(qk, [learned]) == [True]
