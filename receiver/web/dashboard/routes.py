"""The dashboard's routes: pages behind a session, sign-in and sign-out, live results.

Every page is a GET rendered on the server; every change is a form POST (it works without
JavaScript, htmx only spares the reload) protected by Litestar's CSRF middleware (see
receiver.app). A page without a valid session redirects to ``/login``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, ResponseHeader
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from receiver import live as live_results
from receiver.config import Config
from receiver.services import Services
from receiver.store import NotFound, deliveries, results
from receiver.store.results import ResultFilter
from receiver.web.dashboard import pages
from receiver.web.dashboard.format import github_web, query
from receiver.web.dashboard.session import (
    COOKIE,
    MAX_AGE,
    session_key,
    sign_session,
    token_matches,
    valid_session,
)

TEMPLATES: Final = Path(__file__).parent / "templates"
KEEPALIVE_SECONDS: Final = 15.0
# No inline script or style, no frames; images and videos come from the providers' hosts.
SECURITY_HEADERS: Final = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; img-src 'self' http: https: data:; media-src http: https:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'",
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]
Text = Annotated[str | None, QueryParameter(description="Only results with this value")]
Cursor = Annotated[int | None, QueryParameter(description="The last id of the previous page")]
State = Annotated[
    Literal["pending", "sent", "dead"] | None, QueryParameter(name="state", required=False)
]


class LoginForm(msgspec.Struct):
    token: str = ""
    next: str = "/"


class RetryForm(msgspec.Struct):
    next: str = "/deliveries"


class RetryTargetForm(msgspec.Struct):
    target: str
    next: str = "/deliveries"


Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def local_path(target: str) -> str:
    """``target`` if it is a path on this site, else ``/``: a redirect never leaves the site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def signed_in(request: Request[Any, Any, Any]) -> bool:
    """For the pages' before_request hook, which runs before dependencies are resolved."""
    config: Config = request.app.state.services.config
    key = session_key(config)
    return valid_session(key, request.cookies.get(COOKIE))


async def require_session(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The pages' before_request: no valid session, no page (sign in first)."""
    if signed_in(request):
        return None
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" + query(next=wanted if wanted != "/" else None)
    if request.headers.get("hx-request"):  # htmx follows this header instead of a redirect
        return Response("", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target)


def _web(services: Services) -> str:
    return github_web(services.config.github.api_url)


def _page(
    name: str,
    request: Request[Any, Any, Any],
    headers: dict[str, str] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    return Template(
        template_name=name,
        context={"path": request.url.path, **context},
        headers=headers,
        status_code=status_code,
    )


def _result_filter(
    status: str | None, branch: str | None, provider: str | None, repository: str | None
) -> ResultFilter:
    """The Results page's filters (an empty form field filters nothing)."""
    return ResultFilter(
        status=status or None,
        branch=branch or None,
        provider=provider or None,
        repository=repository or None,
    )


# -- pages -------------------------------------------------------------------------------------


@get("/", sync_to_thread=True, name="results")
def results_list(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    status: Text = None,
    branch: Text = None,
    provider: Text = None,
    repository: Text = None,
    q: Annotated[str | None, QueryParameter(description="Part of a test's name")] = None,
    cursor: Cursor = None,
) -> Template:
    where = msgspec.structs.replace(
        _result_filter(status, branch, provider, repository), limit=pages.PAGE_SIZE, before=cursor
    )
    search = (q or "").strip() or None
    page = services.store.read(lambda tx: pages.results_page(tx, where, search, _web(services)))
    filters = {"status": status, "branch": branch, "provider": provider, "repository": repository}
    here = "/" + query(**filters, q=search, cursor=cursor)
    # htmx shows this address for a filtered list: without the empty fields of the form.
    headers = {"HX-Push-Url": here} if request.headers.get("hx-request") else {}
    return _page(
        "results.html",
        request,
        headers,
        page=page,
        filters=filters,
        q=search,
        cursor=cursor,
        live=cursor is None and search is None,
        live_url="/events" + query(**filters),
        older_url=query(**filters, q=search, cursor=page.next_cursor),
        newest_url=query(**filters, q=search),
    )


@get("/results/{result_id:int}", sync_to_thread=True)
def result_view(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    result_id: Annotated[int, PathParameter()],
) -> Template:
    model = services.store.read(lambda tx: pages.result_page(tx, result_id, _web(services)))
    return _page("result.html", request, model=model)


@get("/jobs", sync_to_thread=True)
def jobs_list(
    request: Request[Any, Any, Any], services: NamedDependency[Services], cursor: Cursor = None
) -> Template:
    page = services.store.read(lambda tx: pages.jobs_page(tx, before=cursor))
    return _page("jobs.html", request, page=page)


@get("/jobs/{job_id:int}", sync_to_thread=True)
def job_view(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    job_id: Annotated[int, PathParameter()],
) -> Template:
    model = services.store.read(lambda tx: pages.job_page(tx, job_id, _web(services)))
    return _page("job.html", request, model=model)


@get("/deliveries", sync_to_thread=True)
def deliveries_list(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    wanted: State = None,
    cursor: Cursor = None,
) -> Template:
    page = services.store.read(lambda tx: pages.deliveries_page(tx, state=wanted, before=cursor))
    return _page(
        "deliveries.html",
        request,
        page=page,
        state=wanted,
        older_url=query(state=wanted, cursor=page.next_cursor),
    )


@get("/history", sync_to_thread=True)
def history(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    branch: Text = None,
    repository: Text = None,
) -> Template:
    scope, value = ("repository", repository) if repository else ("branch", branch)
    model = services.store.read(
        lambda tx: pages.history_page(tx, scope if value else None, value or None)
    )
    return _page("history.html", request, model=model)


@get("/tests/{test_id:str}", sync_to_thread=True)
def test_view(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    test_id: Annotated[str, PathParameter()],
) -> Template:
    model = services.store.read(lambda tx: pages.test_page(tx, test_id))
    return _page("test.html", request, model=model)


# -- changes -----------------------------------------------------------------------------------


@post("/deliveries/{delivery_id:int}/retry", status_code=303)
async def retry_delivery(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    delivery_id: Annotated[int, PathParameter()],
    data: Annotated[RetryForm, Form],
) -> Redirect:
    await services.store.write(lambda tx: deliveries.redeliver(tx, delivery_id))
    return _sending_again(services, data.next)


@post("/deliveries/retry-dead", status_code=303)
async def retry_dead(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    data: Annotated[RetryTargetForm, Form],
) -> Redirect:
    """Every dead delivery of one target back to pending (after fixing the target)."""
    await services.store.write(lambda tx: deliveries.redeliver_dead(tx, data.target))
    return _sending_again(services, data.next)


def _sending_again(services: Services, next_page: str) -> Redirect:
    """After deliveries went back to pending: the worker sends them now; back to the page."""
    if services.worker is not None:
        services.worker.wake()
    return Redirect(local_path(next_page), status_code=303)


# -- live results ------------------------------------------------------------------------------


@get("/events", sync_to_thread=False)
def events(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    status: Text = None,
    branch: Text = None,
    provider: Text = None,
    repository: Text = None,
) -> ServerSentEvent:
    """New results as rows of the Results page (htmx's SSE extension puts them on top)."""
    where = _result_filter(status, branch, provider, repository)
    return ServerSentEvent(_stream(request, services, where), headers={"Cache-Control": "no-store"})


async def _stream(
    request: Request[Any, Any, Any], services: Services, where: ResultFilter
) -> AsyncIterator[ServerSentEventMessage]:
    if services.live is None:
        return
    template = request.app.template_engine.get_template("_row.html")  # type: ignore[union-attr]
    async with services.live.subscribe() as queue:
        yield ServerSentEventMessage(comment="live")
        while True:
            try:
                result_id = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keepalive")  # finds a gone client
                continue
            if result_id == live_results.CLOSED:
                return
            html = await asyncio.to_thread(_render_row, services, template, result_id, where)
            if html is not None:
                yield ServerSentEventMessage(event="result", data=html, id=result_id)


def _render_row(
    services: Services, template: Any, result_id: int, where: ResultFilter
) -> str | None:
    with contextlib.suppress(NotFound):
        found = services.store.read(lambda tx: results.get(tx, result_id))
        if pages.matches(found, where):
            rendered: str = template.render(row=pages.row(found, _web(services)), fresh=True)
            return rendered
    return None


# -- signing in --------------------------------------------------------------------------------


@get("/login", sync_to_thread=False)
def login_page(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    next: Annotated[str, QueryParameter(description="Where to go once signed in")] = "/",
) -> Template:
    closed = not services.config.api_token
    return _login_page(request, closed=closed, next_page=next, signed_in=signed_in(request))


@post("/login", status_code=303)
async def login(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    data: Annotated[LoginForm, Form],
) -> Response[Any]:
    config = services.config
    key = session_key(config)
    if key is None or not token_matches(config, data.token.strip()):
        error = (
            "The dashboard is closed: set RECEIVER_API_TOKEN on the service and restart it"
            if key is None
            else "Wrong token: paste the service's RECEIVER_API_TOKEN"
        )
        return _login_page(request, closed=key is None, next_page=data.next, error=error)
    # Behind a TLS-terminating proxy (fly.io) the request is http: the public URL tells.
    secure = request.url.scheme == "https" or (config.server.public_url or "").startswith("https:")
    return Redirect(
        local_path(data.next),
        status_code=303,
        cookies=[
            Cookie(
                key=COOKIE,
                value=sign_session(key),
                max_age=MAX_AGE,
                httponly=True,
                samesite="lax",  # a link from chat or a PR comment opens the page signed in
                secure=secure,
                path="/",
            )
        ],
    )


def _login_page(
    request: Request[Any, Any, Any],
    *,
    closed: bool,
    next_page: str,
    error: str | None = None,
    signed_in: bool = False,
) -> Template:
    """The sign-in form; after a refused token (``error``) answered 401."""
    return _page(
        "login.html",
        request,
        status_code=200 if error is None else 401,
        closed=closed,
        next=local_path(next_page),
        error=error,
        signed_in=signed_in,
    )


@post("/logout", status_code=303)
async def logout() -> Redirect:
    return Redirect(
        "/login",
        status_code=303,
        cookies=[Cookie(key=COOKIE, value="", max_age=0, expires=0, httponly=True, path="/")],
    )


def not_found_page(request: Request[Any, Any, Any], exc: NotFound) -> Template:
    return Template(
        template_name="not_found.html",
        context={"path": request.url.path, "detail": str(exc)},
        status_code=404,
    )


def dashboard_router() -> Router:
    """The pages (behind a session) and sign-in (open), with the security headers."""
    protected = Router(
        "/",
        route_handlers=[
            results_list,
            result_view,
            jobs_list,
            job_view,
            deliveries_list,
            history,
            test_view,
            retry_delivery,
            retry_dead,
            events,
        ],
        before_request=require_session,
        exception_handlers={NotFound: not_found_page},
        include_in_schema=False,
    )
    return Router(
        "/",
        route_handlers=[protected, login_page, login, logout],
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
    )
