"""``scheduler enqueue``, ``jobs list`` and ``job ...`` against a real Redis server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from scheduler import JobState, Scheduler, defaults
from tests.helpers import running, wait_until
from tests.test_cli_common import Run, as_json, capp, lease_all, make_dead, one_line_error, run

__all__ = ["capp", "run"]  # fixtures


def test_enqueue_then_list_in_run_order(run: Run, capp: Scheduler) -> None:
    for job_id, prio in [("low", "1"), ("high-a", "9"), ("mid", "5"), ("high-b", "9")]:
        result = run(
            "enqueue",
            "m:f",
            "--args",
            "[1, 2]",
            "--kwargs",
            '{"k": "v"}',
            "--priority",
            prio,
            "--job-id",
            job_id,
        )
        assert result.exit_code == 0, result.output
        assert job_id in result.stdout
    data = as_json(run("jobs", "list", "-q", "default", "--json"))
    assert data["queue"] == "default" and data["state"] == "ready"
    assert [j["id"] for j in data["jobs"]] == ["high-a", "high-b", "mid", "low"]  # FIFO in ties
    first = data["jobs"][0]
    assert first["args"] == [1, 2] and first["kwargs"] == {"k": "v"}
    assert first["task"] == "m:f" and first["priority"] == 9.0 and first["state"] == "ready"
    page = as_json(run("jobs", "list", "-q", "default", "--limit", "2", "--offset", "1", "--json"))
    assert [j["id"] for j in page["jobs"]] == ["high-b", "mid"]
    table = run("jobs", "list", "-q", "default")
    assert table.exit_code == 0
    assert table.stdout.index("high-a") < table.stdout.index("mid") < table.stdout.index("low")


def test_enqueue_formula_delay_at_and_json(run: Run, capp: Scheduler) -> None:
    data = as_json(run("enqueue", "m:f", "--weight", "3", "--time", "2", "--queue", "q1", "--json"))
    assert data["queue"] == "q1" and data["priority"] == 6.0 and data["state"] == "ready"
    info = capp.job(data["id"]).info()
    assert info.inputs == (3.0, 2.0, 1.0)
    late = as_json(run("enqueue", "m:f", "--delay", "2h", "--job-id", "late", "--json"))
    soon = as_json(run("enqueue", "m:f", "--delay", "90s", "--job-id", "soon", "--json"))
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    mid = as_json(run("enqueue", "m:f", "--at", at, "--job-id", "mid", "--json"))
    assert {late["state"], soon["state"], mid["state"]} == {"delayed"}
    listed = as_json(run("jobs", "list", "-q", "default", "-s", "delayed", "--json"))["jobs"]
    assert [j["id"] for j in listed] == ["soon", "mid", "late"]  # ETA order
    # the same job id again: nothing written, the existing job is shown
    again = as_json(run("enqueue", "m:f", "--job-id", "late", "--json"))
    assert again["state"] == "delayed"


def test_enqueue_bad_input(run: Run, capp: Scheduler) -> None:
    one_line_error(run("enqueue", "m:f", "--args", "{nope"), 2, "--args is not valid JSON")
    one_line_error(run("enqueue", "m:f", "--args", '{"a": 1}'), 2, "--args must be a JSON array")
    one_line_error(run("enqueue", "m:f", "--kwargs", "[1]"), 2, "--kwargs must be a JSON object")
    one_line_error(run("enqueue", "bad name!"), 2, "invalid task name")
    one_line_error(run("enqueue", "m:f", "--queue", "a{b}"), 2, "invalid queue name")
    one_line_error(run("enqueue", "m:f", "--priority", "nan"), 2, "priority must be finite")
    one_line_error(run("enqueue", "m:f", "--weight", "-1"), 2, "weight must be >= 0")
    one_line_error(run("enqueue", "m:f", "--resource", "0"), 2, "resource must be > 0")
    one_line_error(run("enqueue", "m:f", "--priority", "1", "--weight", "2"), 2, "not both")
    one_line_error(run("enqueue", "m:f", "--delay", "5", "--at", "2030-01-01"), 2, "not both")
    one_line_error(run("enqueue", "m:f", "--delay", "soon"), 2, "not a duration")
    one_line_error(run("enqueue", "m:f", "--at", "tomorrow"), 2, "ISO 8601")
    one_line_error(run("enqueue", "m:f", "--max-attempts", "0"), 2, "max_attempts")
    assert run("enqueue", "m:f", "--priority", "abc").exit_code == 2  # click's type check
    assert capp.queue_names() == []  # nothing was written


def test_job_show_all_fields_human_and_json(run: Run, capp: Scheduler) -> None:
    (dead_id,) = make_dead(capp, 1, task="pkg.mod:crunch")
    data = as_json(run("job", "show", dead_id, "--json"))
    assert data["id"] == dead_id and data["state"] == "dead" and data["task"] == "pkg.mod:crunch"
    assert data["error"]["error"] == "ValueError: boom"
    assert data["error"]["traceback"].startswith("Traceback")
    assert data["attempts"] == 1 and data["max_attempts"] == defaults.MAX_ATTEMPTS
    assert data["progress"] is None  # never reported (see test_task_context for progress)
    assert data["finished_at"] and data["args"] == [0] and data["kwargs"] == {}
    assert {"priority", "weight", "time", "resource", "enqueued_at", "ready_at"} <= set(data)
    assert {"lease_deadline", "worker", "result", "meta"} <= set(data)
    human = run("job", "show", dead_id)
    assert human.exit_code == 0
    attempts = f"1 of {defaults.MAX_ATTEMPTS}"
    for text in ("pkg.mod:crunch", "dead", "ValueError: boom", "traceback:", attempts, "progress"):
        assert text in human.stdout, text

    capp.enqueue("m:f", [5], queue="work", job_id="inflight", weight=2, time=3, resource=4)
    lease_all(capp, "work", 1, worker="w-7")
    data = as_json(run("job", "show", "inflight", "--queue", "work", "--json"))
    assert data["state"] == "leased" and data["worker"] == "w-7" and data["lease_deadline"]
    assert (data["weight"], data["time"], data["resource"], data["priority"]) == (2, 3, 4, 1.5)
    assert "weight=2.0 time=3.0s resource=4.0" in run("job", "show", "inflight").stdout


def test_job_lookup_errors(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", job_id="there", queue="q1")
    one_line_error(run("job", "show", "missing"), 1, "no job 'missing'")
    one_line_error(run("job", "show", "there", "--queue", "q2"), 1, "no job")
    one_line_error(run("job", "show", "bad id"), 2, "invalid job id")
    one_line_error(run("job", "cancel", "missing"), 1, "no job")
    one_line_error(run("job", "retry", "missing"), 1, "no job")
    one_line_error(run("job", "run-now", "missing"), 1, "no job")
    one_line_error(run("job", "reprioritize", "missing", "-p", "1"), 1, "no job")


def test_cancel_retry_run_now(run: Run, capp: Scheduler) -> None:
    job = capp.enqueue("m:f", job_id="j1")
    result = run("job", "cancel", "j1")
    assert result.exit_code == 0 and "cancelled" in result.stdout
    assert job.status is JobState.CANCELLED
    one_line_error(run("job", "cancel", "j1"), 1, "already finished")
    data = as_json(run("job", "retry", "j1", "--json"))
    assert data == {
        "id": "j1",
        "queue": "default",
        "action": "retried",
        "changed": True,
        "state": "ready",
    }
    one_line_error(run("job", "retry", "j1"), 1, "is ready")

    delayed = capp.enqueue("m:f", job_id="later", delay=3600)
    one_line_error(run("job", "run-now", "j1"), 1, "only delayed jobs")
    assert run("job", "run-now", "later").exit_code == 0
    assert delayed.status is JobState.READY
    ready = as_json(run("jobs", "list", "-q", "default", "--json"))["jobs"]
    assert [j["id"] for j in ready] == ["j1", "later"]  # equal priority: FIFO (retry = requeue)


def _blocked_in_blpop(app: Scheduler) -> bool:
    """A connection of the server waits in BLPOP: an idle worker's waiter."""
    return any(c["cmd"] == "blpop" and "b" in c["flags"] for c in app.redis.client_list())


def test_an_action_reports_the_state_it_made_though_a_waiting_worker_takes_the_job(
    run: Run, capp: Scheduler
) -> None:
    """An idle worker's lease is pipelined behind its BLPOP, so it runs in
    Redis right after the retry wakes it -- before the CLI could read the job
    again. The line reports what the retry did (``examples/demo.py`` prints it)."""
    release = threading.Event()
    calls: list[int] = []

    @capp.task(name="cli:flaky", max_attempts=1)
    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first attempt")
        release.wait(30)

    job = flaky.enqueue()
    with running(capp):
        wait_until(lambda: job.status is JobState.DEAD)
        wait_until(lambda: _blocked_in_blpop(capp))
        try:
            result = run("job", "retry", job.id)
            assert result.exit_code == 0, result.output
            assert result.stdout == f"retried: job {job.id} (queue default) is now ready\n"
            wait_until(lambda: len(calls) == 2)  # the worker did take it at once
        finally:
            release.set()
    assert job.status is JobState.SUCCEEDED


def test_reprioritize(run: Run, capp: Scheduler) -> None:
    a = capp.enqueue("m:f", job_id="a", weight=2, time=5, resource=1)
    capp.enqueue("m:f", job_id="b", priority=7)
    assert run("job", "reprioritize", "b", "--priority", "20").exit_code == 0
    assert capp.job("b").info().priority == 20
    # only the given input changes; the others keep the job's values
    assert run("job", "reprioritize", "a", "--resource", "0.5").exit_code == 0
    info = a.info()
    assert info.inputs == (2.0, 5.0, 0.5) and info.priority == 20.0
    ready = as_json(run("jobs", "list", "-q", "default", "--json"))["jobs"]
    assert [j["id"] for j in ready] == ["a", "b"]  # both 20 now: a keeps its earlier place
    one_line_error(run("job", "reprioritize", "a"), 2, "give --priority")
    one_line_error(run("job", "reprioritize", "a", "-p", "1", "--time", "2"), 2, "not both")
    one_line_error(run("job", "reprioritize", "a", "-p", "inf"), 2, "priority must be finite")
    one_line_error(run("job", "reprioritize", "a", "--time", "0"), 2, "time must be > 0")
    lease_all(capp, "default", 5)
    one_line_error(run("job", "reprioritize", "a", "-p", "3"), 1, "is leased")


def test_list_leased_failed_dead_succeeded(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", job_id="short", lease=30)
    capp.enqueue("m:f", job_id="long", lease=600)
    capp.enqueue("m:f", job_id="ok")
    capp.enqueue("m:f", job_id="again", max_attempts=3)
    leased = dict(lease_all(capp, "default", 4, worker="wk"))
    qk = capp.queue_keys("default")
    capp.scripts.complete(qk, [("ok", leased["ok"], '"fine"')])
    capp.scripts.fail(qk, [("again", leased["again"], '{"error":"E: x"}', 60_000)])
    by_deadline = as_json(run("jobs", "list", "-q", "default", "-s", "leased", "--json"))["jobs"]
    assert [j["id"] for j in by_deadline] == ["short", "long"]
    assert all(j["worker"] == "wk" and j["lease_deadline"] for j in by_deadline)
    failed = as_json(run("jobs", "list", "-q", "default", "-s", "failed", "--json"))["jobs"]
    assert [j["id"] for j in failed] == ["again"] and failed[0]["error"]["error"] == "E: x"
    assert as_json(run("jobs", "list", "-q", "default", "-s", "delayed", "--json"))["jobs"] == []
    done = as_json(run("jobs", "list", "-q", "default", "-s", "succeeded", "--json"))["jobs"]
    assert [(j["id"], j["result"]) for j in done] == [("ok", "fine")]
    human = run("jobs", "list", "-q", "default", "-s", "leased")
    assert "lease deadline" in human.stdout and "wk" in human.stdout
    assert "E: x" in run("jobs", "list", "-q", "default", "-s", "failed").stdout


def test_leased_jobs_show_how_long_they_have_been_running(run: Run, capp: Scheduler) -> None:
    import threading

    from tests.helpers import running, wait_until

    release = threading.Event()

    @capp.task
    def hold() -> None:
        release.wait(30)

    job = hold.enqueue()
    with running(capp, concurrency=1):
        wait_until(lambda: job.info().started_at is not None)
        listing = run("jobs", "list", "-q", "default", "-s", "leased")
        shown = run("job", "show", job.id)
        data = as_json(run("job", "show", job.id, "--json"))
        release.set()
    assert listing.exit_code == 0 and "running for" in listing.output, listing.output
    assert "running for" in shown.output and "not started" not in shown.output, shown.output
    assert data["started_at"] is not None
    assert as_json(run("job", "show", job.id, "--json"))["started_at"] is None  # finished


def test_job_show_has_the_running_jobs_progress(run: Run, capp: Scheduler) -> None:
    job = capp.enqueue("m:f", job_id="busy")
    ((job_id, token),) = lease_all(capp, "default", 1)
    assert capp.backend.set_progress("default", job_id, token, 0.25, "resized 1 of 4")
    data = as_json(run("job", "show", job.id, "--json"))
    assert data["progress"]["value"] == 0.25 and data["progress"]["message"] == "resized 1 of 4"
    human = run("job", "show", job.id)
    assert "25% resized 1 of 4" in human.stdout
