"""A firing's job meta is built from text kept per schedule; it equals the
general encoding (the schedule's keys after the user's, JSON)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.backend.cron_scripts import JobTemplate
from scheduler.cron.policy import MisfirePolicy
from scheduler.cron.schedule import Schedule
from scheduler.serialization import encode_meta

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
user_meta = st.none() | st.dictionaries(
    st.sampled_from(["a", "schedule", "missed", "fire_at", "z"]),
    st.integers() | st.text(),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    sid=ids,
    meta=user_meta,
    policy=st.sampled_from(list(MisfirePolicy)),
    fire=st.integers(min_value=0, max_value=253_370_764_800_000),
    missed=st.integers(min_value=0, max_value=10**12),
)
def test_job_meta_equals_the_general_encoding(
    sid: str, meta: dict[str, Any] | None, policy: MisfirePolicy, fire: int, missed: int
) -> None:
    job = JobTemplate("t", "[[],{}]", "0.0", "", "3,1000,1000,1000", meta or None)
    schedule = Schedule(id=sid, queue="q", job=job, cron="* * * * *", misfire=policy)
    expected: dict[str, Any] = dict(meta or {})
    expected.update(schedule=sid, fire_at=fire, misfire=str(policy), missed=missed)
    assert schedule.job_meta(fire, missed) == encode_meta(expected)
