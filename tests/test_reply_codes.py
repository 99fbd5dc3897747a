"""Named reply codes: ``scheduler/backend/codes.py`` and ``lua/lib/codes.lua``
agree, the wrappers return the enum members, and a script's
``ERR scheduler: ...`` reply surfaces as :class:`scheduler.errors.ScriptError`
(on fakeredis and on a real server)."""

from __future__ import annotations

import re

import pytest
import redis

from scheduler.backend.codes import (
    FAMILIES,
    CancelCode,
    CompleteCode,
    FailCode,
    HeartbeatCode,
    ReleaseCode,
    RetryCode,
)
from scheduler.backend.cron_scripts import CronScripts
from scheduler.backend.keys import QueueKeys
from scheduler.backend.lualoader import read_lua
from scheduler.backend.record import JobOptions
from scheduler.backend.scripts import EnqueueItem, ScriptCall, ScriptReplyError, Scripts
from scheduler.errors import ScriptError

OPTS = JobOptions(max_attempts=2, lease_ms=60_000, result_ttl_ms=3_600_000, dead_ttl_ms=-1)


def lua_codes() -> dict[str, int]:
    found: dict[str, int] = {}
    for match in re.finditer(
        r"^local ([A-Z_, ]+?)\s*=\s*([-\d, ]+)$", read_lua("lib/codes.lua"), re.M
    ):
        names = [n.strip() for n in match.group(1).split(",")]
        values = [int(v) for v in match.group(2).split(",")]
        assert len(names) == len(values), match.group(0)
        found.update(zip(names, values, strict=True))
    return found


def test_python_and_lua_codes_match() -> None:
    python = {
        f"{prefix}_{member.name}": int(member)
        for prefix, family in FAMILIES.items()
        for member in family
    }
    assert lua_codes() == python


def test_each_family_gives_each_outcome_its_own_value() -> None:
    for family in FAMILIES.values():
        values = [int(m) for m in family]
        assert len(values) == len(set(values)), family  # no aliases


@pytest.fixture
def s(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "codes")


def lease_one(s: Scripts, qk: QueueKeys, job_id: str) -> str:
    s.enqueue(qk, [EnqueueItem(job_id, "m:f", "[[],{}]", "1.0", "", OPTS.encode())])
    reply = s.lease(qk, 1, "w1", f"req-{job_id}")
    ((leased_id, text),) = reply.jobs
    assert leased_id == job_id
    return text.split("\x1f")[4]


def test_wrappers_return_enum_members(s: Scripts, qk: QueueKeys) -> None:
    token = lease_one(s, qk, "a")
    beat = s.heartbeat(qk, [("a", token), ("nope", "1")])
    assert beat[0] > 1 and beat[1] is HeartbeatCode.GONE
    (done,) = s.complete(qk, [("a", token, "1")])
    assert done is CompleteCode.RECORDED
    assert s.heartbeat(qk, [("a", token)]) == [HeartbeatCode.REPORTED]
    assert s.fail(qk, [("a", token, "{}", 0)]) == [FailCode.STALE]
    assert s.release(qk, [("a", token)]) == [ReleaseCode.STALE]
    assert s.retry(qk, ["a", "zz"]) == [RetryCode.REQUEUED, RetryCode.NO_JOB]
    assert s.cancel(qk, "a", "{}") is CancelCode.CANCELLED
    assert s.cancel(qk, "a", "{}") is CancelCode.ALREADY_FINAL


def test_script_errors_surface_as_script_error(s: Scripts, qk: QueueKeys) -> None:
    bad = ScriptCall("release", qk.standard(), [0, 2, "only-one"], lambda r: r)
    with pytest.raises(ScriptError, match=r"^scheduler: bad argument count$") as caught:
        s.run_many([bad])
    assert isinstance(caught.value, ScriptReplyError)
    with pytest.raises(ScriptError, match="bad argument count"):
        s.run_streamed(iter([bad]))
    with pytest.raises(ScriptError, match="bad value"):
        s.queue_config(qk, "paused", "maybe")
    with pytest.raises(ScriptError, match="unknown setting"):
        s.queue_config(qk, "colour", "1")
    with pytest.raises(ScriptError, match="bad arguments"):
        s.purge(qk, "nowhere")


def test_cron_script_errors_surface_as_script_error(client: redis.Redis, qk: QueueKeys) -> None:
    cs = CronScripts(client)
    with pytest.raises(ScriptError, match="bad schedule record"):
        client.hset(qk.schedules, "s1", "garbage")
        cs.pause(qk, "s1", True, None, channel="ch")


def test_other_redis_errors_are_not_rewrapped(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    client.set(qk.meta, "not a hash")
    with pytest.raises(redis.ResponseError) as caught:
        s.queue_config(qk, "paused", "1")
    assert not isinstance(caught.value, ScriptError)
