"""The dashboard's pages and actions through Starlette's test client, on a real Redis."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import redis

pytest.importorskip("starlette", reason="the dashboard needs the web extra")

from starlette.testclient import TestClient

from scheduler import Scheduler
from scheduler.backend.record import JobState
from scheduler.web import WebAuth, create_app
from scheduler.web.security import CSRF_COOKIE
from tests.helpers import wait_until
from tests.web_helpers import EVIL, Population, populate


@pytest.fixture
def pop(real_app: Scheduler) -> Population:
    return populate(real_app)


def client_for(app: Scheduler, **kwargs: object) -> TestClient:
    kwargs.setdefault("auth", WebAuth())
    return TestClient(create_app(app, **kwargs), follow_redirects=False)  # type: ignore[arg-type]


@pytest.fixture
def web(real_app: Scheduler, pop: Population) -> Iterator[TestClient]:
    with client_for(real_app) as c:
        c.get("/")  # sets the CSRF cookie
        yield c


def csrf(c: TestClient) -> str:
    token = c.cookies.get(CSRF_COOKIE)
    assert token
    return token


def post(c: TestClient, url: str, confirmed: bool = True, **fields: str) -> Any:
    data = {"csrf": csrf(c), **fields}
    if confirmed:
        data["confirmed"] = "yes"
    return c.post(url, data=data)


def state(app: Scheduler, job_id: str, queue: str = "emails") -> JobState:
    return app.job(job_id, queue).status


# -- pages ----------------------------------------------------------------------


def test_overview_shows_queues_counts_workers_and_paused_state(
    web: TestClient, real_app: Scheduler
) -> None:
    real_app.pause("reports")
    page = web.get("/")
    assert page.status_code == 200
    html = page.text
    assert 'data-queue="emails"' in html and 'data-queue="reports"' in html
    assert "host-a:4242:ab12" in html  # the live worker
    assert "paused" in html and "<svg" in html  # paused badge, throughput sparkline
    assert 'data-refresh-url="' in html  # auto-refresh region
    fragment = web.get("/fragments/overview")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-queue="emails"' in fragment.text
    data = web.get("/api/overview").json()
    emails = next(q for q in data["queues"] if q["queue"] == "emails")
    assert (emails["ready"], emails["dead"], emails["leased"]) == (5, 3, 1)


@pytest.mark.parametrize(
    ("state_name", "expected"),
    [
        ("ready", "ready"),
        ("delayed", "delayed"),
        ("failed", "failed"),
        ("leased", "leased"),
        ("dead", "dead"),
        ("succeeded", "succeeded"),
        ("cancelled", "cancelled"),
    ],
)
def test_every_state_lists_its_jobs(
    web: TestClient, pop: Population, state_name: str, expected: str
) -> None:
    ids = {
        "ready": pop.ready,
        "delayed": [pop.delayed],
        "failed": [pop.failed],
        "leased": [pop.leased],
        "dead": pop.dead,
        "succeeded": [pop.succeeded],
        "cancelled": [pop.cancelled],
    }[expected]
    page = web.get(f"/queues/emails?state={state_name}")
    assert page.status_code == 200
    for job_id in ids:
        assert f'data-job="{job_id}"' in page.text
    others = {pop.delayed, pop.failed, pop.leased, pop.succeeded, pop.cancelled} - set(ids)
    for job_id in others:
        assert f'data-job="{job_id}"' not in page.text


def test_ready_jobs_in_run_order_and_dead_newest_first(web: TestClient, pop: Population) -> None:
    page = web.get("/queues/emails?state=ready").text
    # weight i+1: the last enqueued has the highest priority; "evil" has priority 1.
    order = [page.index(f'data-job="{j}"') for j in reversed(pop.ready)]
    assert order == sorted(order)
    dead = web.get("/queues/emails?state=dead").text
    positions = [dead.index(f'data-job="{j}"') for j in pop.dead]
    assert len(set(positions)) == 3


def test_search_by_id_task_args_and_error(web: TestClient, pop: Population) -> None:
    by_args = web.get("/queues/emails", params={"state": "ready", "q": "r2@EXAMPLE"}).text
    assert f'data-job="{pop.ready[2]}"' in by_args and f'data-job="{pop.ready[0]}"' not in by_args
    by_id = web.get("/queues/emails", params={"state": "dead", "q": "dead-1"}).text
    assert 'data-job="dead-1"' in by_id and 'data-job="dead-0"' not in by_id
    by_error = web.get("/queues/emails", params={"state": "dead", "q": "mailbox unavailable"}).text
    assert all(f'data-job="{j}"' in by_error for j in pop.dead)
    by_task = web.get("/queues/emails", params={"state": "delayed", "q": "mail.digest"}).text
    assert f'data-job="{pop.delayed}"' in by_task
    none = web.get("/queues/emails", params={"state": "ready", "q": "no-such-text"}).text
    assert "data-job=" not in none


def test_pages_stay_correct_while_jobs_move(real_app: Scheduler) -> None:
    ids = [real_app.enqueue("t.x", args=[i], queue="q", job_id=f"j{i:02d}").id for i in range(60)]
    with client_for(real_app) as c:
        first = c.get("/queues/q?state=ready").text
        shown = [j for j in ids if f'data-job="{j}"' in first]
        assert shown == ids[:25]
        next_url = first.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
        # Workers take ten jobs of the first page meanwhile: the next page must
        # start right after the last job shown, not ten jobs later.
        for job_id in ids[:10]:
            real_app.job(job_id, "q").cancel()
        second = c.get(next_url).text
        assert [j for j in ids if f'data-job="{j}"' in second] == ids[25:50]


def test_job_detail_shows_fields_error_traceback_timeline(web: TestClient, pop: Population) -> None:
    page = web.get(f"/queues/emails/jobs/{pop.dead[0]}")
    assert page.status_code == 200
    html = page.text
    for needle in (
        "mail.send",
        "SMTPError",
        "550 mailbox unavailable",
        "Traceback",
        "user0@example.com",
    ):
        assert needle in html
    assert 'id="timeline"' in html and ">enqueued<" in html and ">dead<" in html
    ok = web.get(f"/queues/emails/jobs/{pop.succeeded}").text
    assert 'id="result"' in ok and "&#34;sent&#34;: true" in ok
    ready = web.get(f"/queues/emails/jobs/{pop.ready[1]}").text
    assert "weight 2" in ready and "time 2 s" in ready  # the priority inputs


def test_user_data_is_escaped(web: TestClient, pop: Population) -> None:
    for url in (f"/queues/emails/jobs/{pop.evil}", "/queues/emails?state=ready"):
        html = web.get(url).text
        assert EVIL not in html
        assert "&lt;script&gt;" in html
    searched = web.get("/queues/emails", params={"q": "<b>x</b>"}).text
    assert "<b>x</b>" not in searched


def test_workers_and_schedules_pages(web: TestClient) -> None:
    workers = web.get("/workers").text
    assert "host-a" in workers and "4242" in workers and "emails, " in workers.replace("</a>", "")
    schedules = web.get("/schedules").text
    assert 'data-schedule="nightly"' in schedules and "reports.nightly" in schedules


@pytest.mark.parametrize(
    "url",
    [
        "/queues/nope",
        "/queues/bad%20name",
        "/queues/emails/jobs/nope",
        "/queues/emails?state=bogus",
        "/find?id=nope",
        "/bulk/999",
    ],
)
def test_unknown_things_are_404(web: TestClient, url: str) -> None:
    assert web.get(url).status_code == 404


def test_unknown_schedule_and_job_actions_are_404(web: TestClient) -> None:
    assert post(web, "/schedules/reports/nope/pause").status_code == 404
    assert post(web, "/schedules/nope/nightly/pause").status_code == 404
    assert post(web, "/queues/emails/jobs/nope/retry").status_code == 404
    assert post(web, "/queues/nope/pause").status_code == 404


def test_find_goes_to_the_job(web: TestClient, pop: Population) -> None:
    found = web.get("/find", params={"id": pop.delayed})
    assert found.status_code == 303 and found.headers["location"].endswith(
        f"/queues/emails/jobs/{pop.delayed}"
    )


# -- actions --------------------------------------------------------------------


def test_retry_asks_first_then_requeues(
    web: TestClient, real_app: Scheduler, pop: Population
) -> None:
    url = f"/queues/emails/jobs/{pop.dead[0]}/retry"
    asked = post(web, url, confirmed=False)
    assert asked.status_code == 200 and "Please confirm" in asked.text
    assert state(real_app, pop.dead[0]) is JobState.DEAD
    done = post(web, url)
    assert done.status_code == 303
    assert state(real_app, pop.dead[0]) is JobState.READY


def test_cancel_run_now_and_reprioritize(
    web: TestClient, real_app: Scheduler, pop: Population
) -> None:
    assert post(web, f"/queues/emails/jobs/{pop.ready[0]}/cancel").status_code == 303
    assert state(real_app, pop.ready[0]) is JobState.CANCELLED
    post(web, f"/queues/emails/jobs/{pop.delayed}/run-now")
    assert state(real_app, pop.delayed) is JobState.READY
    post(web, f"/queues/emails/jobs/{pop.ready[1]}/reprioritize", priority="1234.5")
    assert real_app.job(pop.ready[1], "emails").info().priority == 1234.5
    post(
        web, f"/queues/emails/jobs/{pop.ready[2]}/reprioritize", weight="3", time="4", resource="2"
    )
    info = real_app.job(pop.ready[2], "emails").info()
    assert (info.priority, info.inputs) == (6.0, (3.0, 4.0, 2.0))
    bad = post(web, f"/queues/emails/jobs/{pop.ready[2]}/reprioritize", priority="x")
    assert bad.status_code == 400


def test_pause_resume_and_purge(web: TestClient, real_app: Scheduler, pop: Population) -> None:
    post(web, "/queues/emails/pause")
    assert real_app.backend.queue_snapshots(["emails"])[0].paused
    post(web, "/queues/emails/resume")
    assert not real_app.backend.queue_snapshots(["emails"])[0].paused
    assert post(web, "/queues/emails/purge", set="bogus").status_code == 400
    post(web, "/queues/emails/purge", set="dead")
    assert real_app.backend.job_set_size("emails", "dead") == 0


def test_bulk_retry_of_a_filtered_set_with_progress(
    web: TestClient, real_app: Scheduler, pop: Population
) -> None:
    started = post(web, "/queues/emails/bulk", action="retry", state="dead", q="user1@")
    assert started.status_code == 303
    progress_url = started.headers["location"]
    wait_until(lambda: 'data-finished="yes"' in web.get(progress_url + "?fragment=1").text)
    page = web.get(progress_url).text
    assert "1 of 1 handled" in page and "1 retried" in page
    assert state(real_app, "dead-1") is JobState.READY
    assert state(real_app, "dead-0") is JobState.DEAD  # not in the filtered set
    post(web, "/queues/emails/bulk", action="cancel", state="ready", q="")
    wait_until(lambda: real_app.backend.job_set_size("emails", "ready") == 0)


def test_schedule_actions(web: TestClient, real_app: Scheduler) -> None:
    post(web, "/schedules/reports/nightly/pause")
    assert real_app.schedules.get("nightly", "reports").paused
    post(web, "/schedules/reports/nightly/resume")
    assert not real_app.schedules.get("nightly", "reports").paused
    before = real_app.backend.job_set_size("reports", "ready")
    post(web, "/schedules/reports/nightly/run-now")
    assert real_app.backend.job_set_size("reports", "ready") == before + 1
    post(web, "/schedules/reports/nightly/remove")
    assert real_app.schedules.list() == []


# -- safety ---------------------------------------------------------------------


ACTIONS = [
    ("/queues/emails/jobs/dead-0/retry", {}),
    ("/queues/emails/pause", {}),
    ("/queues/emails/purge", {"set": "dead"}),
    ("/queues/emails/bulk", {"action": "retry", "state": "dead"}),
    ("/schedules/reports/nightly/remove", {}),
]


@pytest.mark.parametrize(("url", "fields"), ACTIONS)
def test_actions_without_csrf_token_are_refused(
    web: TestClient, real_app: Scheduler, url: str, fields: dict[str, str]
) -> None:
    missing = web.post(url, data={"confirmed": "yes", **fields})
    wrong = web.post(url, data={"confirmed": "yes", "csrf": "x" * 43, **fields})
    foreign = web.post(
        url,
        data={"confirmed": "yes", "csrf": csrf(web), **fields},
        headers={"Origin": "https://evil.example"},
    )
    assert (missing.status_code, wrong.status_code, foreign.status_code) == (403, 403, 403)
    assert state(real_app, "dead-0") is JobState.DEAD
    assert not real_app.backend.queue_snapshots(["emails"])[0].paused
    assert real_app.schedules.list()


def test_actions_are_get_proof(web: TestClient, real_app: Scheduler) -> None:
    assert web.get("/queues/emails/jobs/dead-0/retry").status_code in (404, 405)
    assert state(real_app, "dead-0") is JobState.DEAD


@pytest.mark.parametrize(("url", "fields"), ACTIONS)
def test_read_only_hides_and_refuses_actions(
    real_app: Scheduler, pop: Population, url: str, fields: dict[str, str]
) -> None:
    with client_for(real_app, read_only=True) as c:
        for page in ("/", "/queues/emails?state=dead", "/queues/emails/jobs/dead-0", "/schedules"):
            html = c.get(page).text
            assert 'method="post"' not in html.replace('action="/logout"', "")
            assert "read-only" in html
        refused = post(c, url, **fields)
        assert refused.status_code == 403
    assert state(real_app, "dead-0") is JobState.DEAD
    assert real_app.schedules.list()


def test_token_auth(real_app: Scheduler, pop: Population) -> None:
    with client_for(real_app, auth=WebAuth(token="s3cret")) as c:
        assert c.get("/api/overview").status_code == 401
        assert c.get("/", headers={"Accept": "text/html"}).headers["location"].endswith("/login")
        assert c.get("/api/overview", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/overview", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/static/dashboard.css").status_code == 200
        login = c.get("/login")
        assert login.status_code == 200
        wrong = c.post("/login", data={"csrf": csrf(c), "token": "nope"})
        assert wrong.status_code == 401
        signed = c.post("/login", data={"csrf": csrf(c), "token": "s3cret"})
        assert signed.status_code == 303
        assert c.cookies.get("scheduler_auth") not in (None, "s3cret")  # an HMAC, not the token
        assert c.get("/").status_code == 200


def test_basic_auth(real_app: Scheduler, pop: Population) -> None:
    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    with client_for(real_app, auth=WebAuth(username="ops", password="pw")) as c:
        refused = c.get("/")
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
        assert c.get("/", headers=basic("ops", "bad")).status_code == 401
        assert c.get("/", headers=basic("ops", "pw")).status_code == 200


def test_auth_from_environment() -> None:
    env = {
        "SCHEDULER_WEB_TOKEN": "tok-123",
        "SCHEDULER_WEB_USER": "u",
        "SCHEDULER_WEB_PASSWORD": "pw-456",
    }
    auth = WebAuth.from_env(env)
    assert auth.token == "tok-123" and auth.basic
    assert "tok-123" not in repr(auth) and "pw-456" not in repr(auth)
    assert not WebAuth.from_env({}).enabled
    with pytest.raises(ValueError, match="both"):
        WebAuth.from_env({"SCHEDULER_WEB_USER": "u"})


def test_mounted_inside_another_starlette_app(real_app: Scheduler, pop: Population) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/ops/scheduler", app=create_app(real_app, auth=WebAuth()))])
    with TestClient(outer, follow_redirects=False) as c:
        page = c.get("/ops/scheduler/")
        assert page.status_code == 200
        assert 'href="http://testserver/ops/scheduler/queues/emails"' in page.text
        assert "/ops/scheduler/static/dashboard.css" in page.text
        assert c.get("/ops/scheduler/static/dashboard.js").status_code == 200
        token = c.cookies.get(CSRF_COOKIE)
        done = c.post(
            "/ops/scheduler/queues/emails/pause", data={"csrf": token, "confirmed": "yes"}
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("http://testserver/ops/scheduler/queues/emails")
    assert real_app.backend.queue_snapshots(["emails"])[0].paused


def test_a_backend_is_enough(real_app: Scheduler, pop: Population) -> None:
    with TestClient(create_app(real_app.backend, auth=WebAuth())) as c:
        assert 'data-queue="emails"' in c.get("/").text


def test_redis_down_is_a_503_page(real_app: Scheduler) -> None:
    down = Scheduler(redis.Redis(port=1, socket_connect_timeout=0.2), prefix="t")
    with TestClient(create_app(down, auth=WebAuth())) as c:
        page = c.get("/")
        assert page.status_code == 503 and "Redis" in page.text


def test_job_page_shows_progress_and_takes_ids_with_a_slash(
    real_app: Scheduler, web: TestClient
) -> None:
    """A running job's reported progress is on its page; a natural job id such
    as ``thumb:uploads/a.png`` has its page (the route takes a path)."""
    from scheduler.backend.record import parse_record

    job = real_app.enqueue("thumb.make", queue="thumbs", job_id="thumb:uploads/a.png")
    backend = real_app.backend
    reply = backend.scripts.lease(backend.queue("thumbs"), 1, "w-test", "w-test:1")
    assert [job_id for job_id, _ in reply.jobs] == [job.id]
    token = parse_record(job.id, reply.jobs[0][1]).token
    assert backend.set_progress("thumbs", job.id, token, 0.5, "half <b>way</b>")
    page = web.get("/queues/thumbs/jobs/thumb:uploads/a.png")
    assert page.status_code == 200
    assert 'id="progress"' in page.text and "50%" in page.text
    assert "half &lt;b&gt;way&lt;/b&gt;" in page.text
    assert post(web, "/queues/thumbs/jobs/thumb:uploads/a.png/cancel").status_code == 303
    assert job.status is JobState.CANCELLED
