"""``scheduler schedules ...`` against a real Redis server (cron API: scheduler.cron)."""

from __future__ import annotations

from scheduler import JobState, Scheduler
from tests.test_cli_common import Run, as_json, capp, one_line_error, run

__all__ = ["capp", "run"]  # fixtures

ADD_DAILY = (
    "schedules",
    "add",
    "reports:daily",
    "--cron",
    "0 6 * * *",
    "--tz",
    "Europe/Paris",
    "--id",
    "daily",
    "--queue",
    "reports",
    "--args",
    '["pdf"]',
    "--priority",
    "4",
    "--json",
)


def test_add_list_pause_resume_remove(run: Run, capp: Scheduler) -> None:
    assert as_json(run("schedules", "list", "--json")) == {"schedules": [], "damaged": []}
    added = as_json(run(*ADD_DAILY))
    assert added["outcome"] == "created"
    s = added["schedule"]
    assert (s["id"], s["queue"], s["kind"], s["cron"], s["tz"]) == (
        "daily",
        "reports",
        "cron",
        "0 6 * * *",
        "Europe/Paris",
    )
    assert s["status"] == "active" and s["next_fire"] and s["task"] == "reports:daily"
    again = as_json(run(*ADD_DAILY))  # the same definition again
    assert again["outcome"] == "unchanged"
    tick = run("schedules", "add", "m:tick", "--every", "30s", "--id", "tick", "--paused")
    assert tick.exit_code == 0 and "created" in tick.stdout
    listed = as_json(run("schedules", "list", "--json"))["schedules"]
    assert [(x["id"], x["status"]) for x in listed] == [("tick", "paused"), ("daily", "active")]
    assert listed[0]["every_s"] == 30 and listed[0]["next_fire"] is None
    human = run("schedules", "list")
    assert human.exit_code == 0 and "daily" in human.stdout and "every 0:00:30" in human.stdout

    assert run("schedules", "resume", "tick").exit_code == 0
    one_line_error(run("schedules", "resume", "tick"), 1, "already active")
    paused = as_json(run("schedules", "pause", "daily", "--queue", "reports", "--json"))
    assert paused["changed"] is True and paused["schedule"]["status"] == "paused"
    one_line_error(run("schedules", "pause", "daily"), 1, "already paused")

    declined = run("schedules", "remove", "daily", input="n\n")
    assert declined.exit_code == 1 and len(capp.schedules.list()) == 2
    assert "Error: not confirmed: nothing removed" in declined.stderr
    assert "unexpected" not in declined.output
    assert run("schedules", "remove", "daily", "--yes").exit_code == 0
    assert [i.id for i in capp.schedules.list()] == ["tick"]


def test_run_now_enqueues_one_job_from_the_template(run: Run, capp: Scheduler) -> None:
    assert (
        run(
            "schedules",
            "add",
            "m:report",
            "--every",
            "1h",
            "--id",
            "hourly",
            "--kwargs",
            '{"fmt": "csv"}',
            "--weight",
            "2",
            "--time",
            "3",
        ).exit_code
        == 0
    )
    data = as_json(run("schedules", "run-now", "hourly", "--json"))
    assert data["id"].startswith("cron:hourly:now-") and data["schedule"] == "hourly"
    info = capp.job(data["id"]).info()
    assert info.state is JobState.READY and info.task == "m:report"
    assert info.kwargs == {"fmt": "csv"} and info.priority == 6.0
    assert info.meta["schedule"] == "hourly" and info.meta["manual"] is True
    assert capp.schedules.get("hourly").fired == 0  # the schedule's own timing is untouched


def test_schedule_bad_input(run: Run, capp: Scheduler) -> None:
    one_line_error(run("schedules", "add", "m:f", "--cron", "61 * * * *"), 2)
    one_line_error(run("schedules", "add", "m:f", "--cron", "not cron"), 2)
    one_line_error(run("schedules", "add", "m:f"), 2, "--cron EXPR or --every")
    one_line_error(run("schedules", "add", "m:f", "--cron", "* * * * *", "--every", "5m"), 2)
    one_line_error(run("schedules", "add", "m:f", "--cron", "* * * * *", "--tz", "Mars/Base"), 2)
    one_line_error(run("schedules", "add", "m:f", "--every", "0.5s"), 2, "at least 1 s")
    one_line_error(run("schedules", "add", "m:f", "--every", "5m", "--args", "[1"), 2, "JSON")
    one_line_error(run("schedules", "add", "m:f", "--every", "5m", "--start", "soon"), 2)
    one_line_error(run("schedules", "add", "m:f", "--every", "5m", "--id", "a b"), 2, "invalid")
    assert capp.schedules.list() == []
    for words in (["pause", "nope"], ["resume", "nope"], ["run-now", "nope"]):
        one_line_error(run("schedules", *words), 1, "no schedule 'nope'")
    one_line_error(run("schedules", "remove", "nope", "--yes"), 1, "no schedule")


def test_every_command_handles_a_damaged_record(run: Run, capp: Scheduler) -> None:
    qk = capp.queue_keys("default")
    for sid in ("ok", "num", "mix"):
        capp.schedules.add(capp.every(60, "m:f", id=sid, declare=False))
    num = capp.redis.hget(qk.schedules, "num")
    mix = capp.redis.hget(qk.schedules, "mix")
    assert isinstance(num, bytes) and isinstance(mix, bytes)
    capp.redis.hset(qk.schedules, "num", num.replace(b"\x1f0\x1f0\x1f", b"\x1f1_0\x1f0\x1f"))
    capp.redis.hset(qk.schedules, "mix", mix.replace(b'"id":"mix"', b'"id":"ok"'))
    capp.redis.hset(qk.schedules, "junk", "garbage")
    listed = run("schedules", "list", "--json")
    assert listed.exit_code == 0
    doc = as_json(listed)
    assert [s["id"] for s in doc["schedules"]] == ["ok"]
    assert sorted(d["id"] for d in doc["damaged"]) == ["junk", "mix", "num"]
    human = run("schedules", "list")
    assert human.exit_code == 0 and "damaged" in human.stdout and "Traceback" not in human.output
    for sid in ("junk", "mix", "num"):
        before = capp.redis.hget(qk.schedules, sid)
        for words in (["pause", sid], ["resume", sid], ["run-now", sid]):
            one_line_error(run("schedules", *words), 1, "damaged", sid, "queue 'default'")
        assert capp.redis.hget(qk.schedules, sid) == before  # nothing written
        removed = run("schedules", "remove", sid, "--yes")
        assert removed.exit_code == 0, removed.output
        assert not capp.redis.hexists(qk.schedules, sid)
    assert [i.id for i in capp.schedules.list()] == ["ok"]
    assert capp.redis.hlen(qk.jobs) == 0


def test_a_bad_misfire_policy_is_one_line(run: Run, capp: Scheduler) -> None:
    one_line_error(
        run("schedules", "add", "m:f", "--every", "5m", "--misfire", "bogus"), 2, "misfire"
    )
    ok = run("schedules", "add", "m:f", "--every", "5m", "--misfire", "catch_up", "--json")
    assert as_json(ok)["schedule"]["misfire"] == "catch_up"
