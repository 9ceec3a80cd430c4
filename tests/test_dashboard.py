"""The dashboard in process (Litestar's TestClient on a real SQLite file): sessions, CSRF, what
each page shows, escaping of partner text, secrets, and the store queries behind the pages. The
browser scenarios are in test_dashboard_browser.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import Config, load_config
from receiver.simulator.standin import StandIn
from receiver.store import open_store
from receiver.tests_identity import scope, test_id
from receiver.web.dashboard.session import (
    COOKIE,
    MAX_AGE,
    session_key,
    sign_session,
    valid_session,
)
from tests.conftest import SECRET, TOKEN, callback_body, signed

HOSTILE_NAME = "<script>alert('name')</script>"
HOSTILE_ERROR = "<img src=x onerror=alert(1)> & more"


def result_document(**custom: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(callback_body())
    document["custom_data"] = {"branch": "feat/login", "repository": "acme/shop", **custom}
    document["results"].update(
        status="failed",
        total_tests=2,
        passed=1,
        failed=1,
        tests=[
            {"test": "Login works", "status": "passed", "duration_ms": 1200},
            {
                "test": HOSTILE_NAME,
                "status": "failed",
                "duration_ms": 3000,
                "error": HOSTILE_ERROR,
                "screenshot_url": "javascript:alert(2)",
                "video_url": "https://videos.example.com/run.webm",
            },
        ],
    )
    return document


def post(client: TestClient[Any], document: dict[str, Any]) -> int:
    body = json.dumps(document).encode()
    answer = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    result_id: int = answer.json()["result_id"]
    return result_id


def csrf(client: TestClient[Any], page: str = "/") -> str:
    """The CSRF token a page of the dashboard hands out (in its forms and its cookie)."""
    client.get(page)
    token: str = client.cookies["receiver_csrf"]
    return token


def sign_in(client: TestClient[Any], config: Config) -> None:
    key = session_key(config)
    assert key is not None
    client.cookies.set(COOKIE, sign_session(key))


ROUTED = (
    '[delivery]\nmax_attempts = 1\n\n[[routes]]\nname = "chat"\n'
    'notify = ["json://127.0.0.1:9/hook?token=hook-secret-value"]\n'
)


@pytest.fixture
def routed(write_config: Callable[[str], Path], env: dict[str, str]) -> Config:
    return load_config(write_config(ROUTED), env)


@pytest.fixture
def dashboard(routed: Config) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(routed)) as client:
        sign_in(client, routed)
        yield client


# -- sessions ----------------------------------------------------------------------------------


def test_every_page_needs_a_session_and_sends_the_browser_to_sign_in(
    client: TestClient[Any],
) -> None:
    for path in ["/", "/results/1", "/jobs", "/jobs/1", "/deliveries", "/history", "/tests/x"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 302, path
        assert answer.headers["location"].startswith("/login"), path
    assert client.get("/jobs", follow_redirects=False).headers["location"] == "/login?next=%2Fjobs"
    hx = client.get("/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert hx.status_code == 401 and hx.headers["hx-redirect"] == "/login"
    assert client.get("/events", follow_redirects=False).status_code == 302


def test_the_right_token_signs_in_with_a_signed_httponly_samesite_cookie(
    client: TestClient[Any],
) -> None:
    token = csrf(client, "/login")
    wrong = client.post("/login", data={"token": "nope", "_csrf_token": token})
    assert wrong.status_code == 401
    assert "Wrong token" in wrong.text and COOKIE not in wrong.headers.get("set-cookie", "")
    right = client.post(
        "/login",
        data={"token": TOKEN, "_csrf_token": token, "next": "/deliveries"},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/deliveries"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=v1.")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and f"Max-Age={MAX_AGE}" in cookie
    assert TOKEN not in cookie
    assert client.get("/deliveries", follow_redirects=False).status_code == 200


def test_sign_in_never_sends_the_browser_to_another_site(client: TestClient[Any]) -> None:
    token = csrf(client, "/login")
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        answer = client.post(
            "/login",
            data={"token": TOKEN, "_csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/", target


def test_sign_out_removes_the_cookie(dashboard: TestClient[Any]) -> None:
    answer = dashboard.post(
        "/logout", data={"_csrf_token": csrf(dashboard)}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert (
        f'{COOKIE}=""' in answer.headers["set-cookie"]
        or f"{COOKIE}=;" in (answer.headers["set-cookie"])
    )
    assert "Max-Age=0" in answer.headers["set-cookie"]


def test_a_session_survives_a_restart_and_ends_when_the_token_changes(
    write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    path = write_config("")
    first = load_config(path, env)
    cookie = sign_session(session_key(first) or b"")
    again = load_config(path, env)  # another process, another instance: the same key
    assert valid_session(session_key(again), cookie)
    rotated = load_config(path, {**env, "RECEIVER_API_TOKEN": "a-new-token"})
    assert not valid_session(session_key(rotated), cookie)
    chosen = load_config(path, {**env, "RECEIVER_SESSION_SECRET": "s" * 32})
    assert session_key(chosen) != session_key(first)
    assert valid_session(session_key(chosen), sign_session(session_key(chosen) or b""))


def test_a_tampered_or_expired_cookie_is_no_session(routed: Config) -> None:
    key = session_key(routed)
    good = sign_session(key or b"")
    version, expires, mac = good.split(".")
    assert not valid_session(key, f"{version}.{int(expires) + 1000}.{mac}")
    assert not valid_session(key, f"{version}.{expires}.{'0' * len(mac)}")
    assert not valid_session(key, sign_session(key or b"", now=time.time() - MAX_AGE - 1))
    assert not valid_session(key, "")
    assert not valid_session(None, good)


def test_without_a_token_the_dashboard_says_how_to_open_it(
    write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    config = load_config(write_config(""), {k: v for k, v in env.items() if "TOKEN" not in k})
    with TestClient(create_app(config)) as client:
        page = client.get("/")  # redirected to /login
        assert page.status_code == 200
        assert "The dashboard is closed" in page.text and "RECEIVER_API_TOKEN" in page.text
        answer = client.post("/login", data={"token": "", "_csrf_token": csrf(client, "/login")})
        assert answer.status_code == 401 and "RECEIVER_API_TOKEN" in answer.text


# -- cross-site requests -----------------------------------------------------------------------


def test_a_dashboard_post_without_the_csrf_token_is_refused(
    dashboard: TestClient[Any], routed: Config
) -> None:
    result_id = post(dashboard, result_document())
    delivery = dashboard.get(f"/api/results/{result_id}", headers=_bearer()).json()
    delivery_id = delivery["deliveries"][0]["id"]
    refused = dashboard.post(f"/deliveries/{delivery_id}/retry", data={"next": "/"})
    assert refused.status_code == 403
    forged = dashboard.post(
        f"/deliveries/{delivery_id}/retry", data={"_csrf_token": "0" * 128, "next": "/"}
    )
    assert forged.status_code == 403
    taken = dashboard.post(
        f"/deliveries/{delivery_id}/retry",
        data={"_csrf_token": csrf(dashboard), "next": f"/results/{result_id}"},
        follow_redirects=False,
    )
    assert taken.status_code == 303 and taken.headers["location"] == f"/results/{result_id}"


def test_the_bearer_api_and_callbacks_need_no_csrf_token(dashboard: TestClient[Any]) -> None:
    result_id = post(dashboard, result_document())  # a callback: no CSRF token
    api = dashboard.get(f"/api/results/{result_id}", headers=_bearer()).json()
    delivery_id = api["deliveries"][0]["id"]
    dashboard.cookies.clear()
    answer = dashboard.post(f"/api/deliveries/{delivery_id}/retry", headers=_bearer())
    assert answer.status_code == 200, answer.text


# -- what the pages show -----------------------------------------------------------------------


def test_partner_text_is_escaped_and_only_http_links_are_made(dashboard: TestClient[Any]) -> None:
    result_id = post(dashboard, result_document(deploy_id="<b>bold</b>"))
    page = dashboard.get(f"/results/{result_id}").text
    assert HOSTILE_NAME not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in page
    assert 'href="javascript' not in page and 'src="javascript' not in page  # no link made
    assert 'src="https://videos.example.com/run.webm"' in page  # the video plays in the page
    listing = dashboard.get("/").text
    assert "1 of 2 tests failed" in listing and "<script>alert" not in listing
    answer = dashboard.get("/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]


def test_no_page_shows_a_secret(dashboard: TestClient[Any]) -> None:
    result_id = post(dashboard, result_document(api_token="custom-secret-value"))
    job_id = dashboard.get(f"/api/results/{result_id}", headers=_bearer()).json()["job_id"]
    for path in [
        "/",
        f"/results/{result_id}",
        "/deliveries",
        "/jobs",
        f"/jobs/{job_id}",
        "/history?branch=feat/login",
    ]:
        page = dashboard.get(path).text
        assert "hook-secret-value" not in page, path
        assert "custom-secret-value" not in page, path
        assert TOKEN not in page and SECRET not in page, path
    shown = dashboard.get(f"/results/{result_id}").text
    assert "set (19 chars)" in shown  # custom_data's api_token and the raw callback's


def test_a_result_page_has_counts_tests_deliveries_and_the_raw_callback_folded(
    dashboard: TestClient[Any],
) -> None:
    first = post(dashboard, result_document(deploy_id="1"))
    second = post(dashboard, result_document(deploy_id="2"))
    page = dashboard.get(f"/results/{second}").text
    assert "2 total, 1 passed, 1 failed" in page
    assert "https://app.qualitymax.io/#/projects/137" in page  # the provider's report
    assert '<details class="raw">' in page and "&#34;event&#34;: &#34;test_results&#34;" in page
    assert f'href="/results/{first}"' in page  # the strip: this test's earlier run
    assert "json://127.0.0.1:9/hook" in page and "Retry delivery" in page
    identity = test_id("qualitymax", "acme/shop", "Login works")
    assert f'href="/tests/{identity}"' in page


def test_filters_search_and_paging(dashboard: TestClient[Any]) -> None:
    for n in range(3):
        post(dashboard, result_document(branch=f"feat/{n}", deploy_id=str(n)))
    passed = json.loads(callback_body())
    passed["custom_data"] = {"branch": "main", "repository": "acme/other"}
    post(dashboard, passed)

    def rows(html: str) -> list[str]:
        return re.findall(r'<tr id="result-(\d+)"', html)

    assert rows(dashboard.get("/").text) == ["4", "3", "2", "1"]
    assert rows(dashboard.get("/?branch=feat/1").text) == ["2"]
    assert rows(dashboard.get("/?status=passed").text) == ["4"]
    assert rows(dashboard.get("/?repository=acme/other").text) == ["4"]
    assert rows(dashboard.get("/?provider=qualigate").text) == []
    assert rows(dashboard.get("/?q=LOGIN").text) == ["4", "3", "2", "1"]  # any case
    assert rows(dashboard.get("/?q=script").text) == ["3", "2", "1"]
    assert rows(dashboard.get("/?q=no+such+test").text) == []
    assert rows(dashboard.get("/?cursor=3").text) == ["2", "1"]
    with_htmx = dashboard.get("/?status=&branch=feat%2F1&q=", headers={"HX-Request": "true"})
    assert with_htmx.headers["hx-push-url"] == "/?branch=feat%2F1"


def test_history_and_a_tests_page(dashboard: TestClient[Any]) -> None:
    for n in range(3):
        post(dashboard, result_document(deploy_id=str(n)))
    history = dashboard.get("/history?branch=feat/login").text
    assert history.count('class="mark bad"') == 3
    assert 'role="img" aria-label="Pass rate per day' in history
    assert re.search(
        r"<td data-label=\"Results\">3</td><td data-label=\"Passed\">0 \(0 %\)", history
    )
    by_repository = dashboard.get("/history?repository=acme/shop").text
    assert by_repository.count('class="mark bad"') == 3
    chooser = dashboard.get("/history").text
    assert 'href="/history?branch=feat/login"' in chooser
    identity = test_id("qualitymax", "acme/shop", HOSTILE_NAME)
    page = dashboard.get(f"/tests/{identity}").text
    assert page.count('class="mark bad"') == 3
    assert '<td data-label="Runs">3</td>' in page and "&lt;img src=x" in page
    assert dashboard.get("/tests/0000000000000000").status_code == 404


def test_jobs_pages(dashboard: TestClient[Any]) -> None:
    result_id = post(dashboard, result_document())
    job_id = dashboard.get(f"/api/results/{result_id}", headers=_bearer()).json()["job_id"]
    assert f'href="/jobs/{job_id}"' in dashboard.get("/jobs").text
    page = dashboard.get(f"/jobs/{job_id}").text
    assert "submitted" in page and f'href="/results/{result_id}"' in page
    assert dashboard.get("/jobs/999").status_code == 404


def test_every_dead_delivery_of_a_target_is_retried_at_once(
    write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    hanging = StandIn(lambda request: None)  # the retries stay pending while it holds them
    target = f"json://127.0.0.1:{hanging.port}/hook"
    config = load_config(
        write_config(
            f'[delivery]\ntimeout_seconds = 2\n[[routes]]\nname = "chat"\nnotify = ["{target}"]\n'
        ),
        env,
    )
    try:
        with TestClient(create_app(config)) as dashboard:
            sign_in(dashboard, config)
            ids = [post(dashboard, result_document(deploy_id=str(n))) for n in range(3)]
            database = open_store(config.db_path)
            try:
                database.write_sync(
                    lambda tx: tx.execute(
                        "UPDATE deliveries SET state = 'dead', lease = NULL, last_error = 'x'"
                    )
                )
            finally:
                database.close()
            assert "Retry 3 dead" in dashboard.get("/deliveries").text
            answer = dashboard.post(
                "/deliveries/retry-dead",
                data={"_csrf_token": csrf(dashboard), "target": target},
                follow_redirects=False,
            )
            assert answer.status_code == 303
            states = [
                dashboard.get(f"/api/results/{i}", headers=_bearer()).json()["deliveries"][0]
                for i in ids
            ]
            assert [d["state"] for d in states] == ["pending"] * 3
            page = dashboard.get("/deliveries").text
            assert "Retry 3 dead" not in page
            assert '<td data-label="Pending">3</td>' in page  # per target, from the outbox
    finally:
        hanging.close()


def test_the_schema_page_loads_nothing_from_another_host(client: TestClient[Any]) -> None:
    page = client.get("/schema").text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources
    assert "fonts.googleapis" not in page and "cdn" not in page.lower()
    script = client.get(
        sources[-1] if sources[-1].endswith(".js") else "/static/redoc.standalone.js"
    )
    assert script.status_code == 200 and b"Redoc" in script.content[:2000]
    assert b"cdn.redoc.ly" not in script.content  # its footer's logo, replaced by data:


def test_static_assets_are_vendored_with_their_licences(client: TestClient[Any]) -> None:
    for name in ["htmx.min.js", "htmx-sse.js", "app.css"]:
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert "max-age=31536000" in answer.headers["cache-control"]
    assert b"Zero-Clause BSD" in client.get("/static/htmx.min.js").content[:200]
    assert client.get("/static/htmx.LICENSE").status_code == 200


# -- the identity of a test --------------------------------------------------------------------


def test_a_tests_identity_is_stable_and_stored_with_each_run(routed: Config) -> None:
    assert test_id("qualitymax", "acme/shop", "Login works") == "80de3c539fea0466"
    assert test_id("qualigate", "acme/shop", "Login works") != test_id(
        "qualitymax", "acme/shop", "Login works"
    )
    assert scope("acme/shop", {"project_id": 7}) == "acme/shop"
    assert scope(None, {"project_id": 7}) == "7" and scope(None, {"project": "web"}) == "web"
    assert scope(None, {"project_id": True}) == "" and scope(None, {}) == ""
    with TestClient(create_app(routed)) as client:
        post(client, result_document())
    database = open_store(routed.db_path)
    try:
        stored = database.read(
            lambda tx: tx.execute("SELECT name, test_id FROM tests ORDER BY id").fetchall()
        )
        assert stored == [
            ("Login works", test_id("qualitymax", "acme/shop", "Login works")),
            (HOSTILE_NAME, test_id("qualitymax", "acme/shop", HOSTILE_NAME)),
        ]
        days = database.read(lambda tx: tx.execute("SELECT * FROM result_days").fetchall())
        assert sorted(row[:2] + row[3:5] for row in days) == [
            ("branch", "feat/login", 1, 0),
            ("repository", "acme/shop", 1, 0),
        ]
        # As a database stored before 0005 meets 0006: tests without identity, no catalog.
        database.write_sync(lambda tx: tx.execute("UPDATE tests SET test_id = NULL"))
        database.write_sync(lambda tx: tx.execute("DROP TABLE test_identities"))
        database.write_sync(
            lambda tx: tx.execute("DELETE FROM _migrations WHERE name = '0006_test_identities'")
        )
    finally:
        database.close()
    database = open_store(routed.db_path)  # migrates again
    try:
        again = database.read(
            lambda tx: tx.execute("SELECT name, test_id FROM tests ORDER BY id").fetchall()
        )
        assert again == stored
        names = database.read(
            lambda tx: tx.execute(
                "SELECT name, scope FROM test_identities ORDER BY name"
            ).fetchall()
        )
        assert names == [(HOSTILE_NAME, "acme/shop"), ("Login works", "acme/shop")]
    finally:
        database.close()


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_pages_and_files_are_gzipped_but_not_the_api(dashboard: TestClient[Any]) -> None:
    post(dashboard, result_document())
    gzip = {"Accept-Encoding": "gzip"}
    assert dashboard.get("/", headers=gzip).headers["content-encoding"] == "gzip"
    assert dashboard.get("/static/htmx.min.js", headers=gzip).headers["content-encoding"] == "gzip"
    api = dashboard.get("/api/results", headers={**gzip, **_bearer()})
    assert api.status_code == 200 and "content-encoding" not in api.headers
