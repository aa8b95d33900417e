"""The console's aiohttp application: routes, the session guard, rendering and security headers.

It is an aiohttp sub-application meant to live under PREFIX: the gateway mounts it beside the
OpenAI edge (gateway/main.py) and `python -m tierlift.console.main` serves it alone. Pages are
rendered on the server with Jinja2 (autoescaped); htmx and Chart.js are files of this package, so
the browser fetches nothing from elsewhere and the Content-Security-Policy can say 'self' only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import jinja2
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from tierlift.console._auth import COOKIE, Session, Sessions, csrf_ok, same_origin
from tierlift.console._backend import Backend
from tierlift.core.catalog import tier_name
from tierlift.core.logging import get_logger

log = get_logger(__name__)
PREFIX = "/console"
HERE = Path(__file__).parent
BACKEND = web.AppKey("backend", Backend)
SESSIONS = web.AppKey("sessions", Sessions)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
TRACE_URL = web.AppKey("trace_url", str)  # a tracing UI's trace page, "{trace_id}" in it; "" = no links
SESSION = web.RequestKey("console_session", Session)  # the Session the guard found
_OPEN = (f"{PREFIX}/login", f"{PREFIX}/static/")  # reachable without a session
_HEADERS = {
    # scripts, styles, images and XHR from this origin only; no framing (clickjacking)
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold spend, key ids and (once) a new key's secret
}
_STATUS_OF = {  # a backend refusal, as the page's HTTP status
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    templates, session = request.app[TEMPLATES], request.get(SESSION)
    page = templates.get_template(template).render(base=PREFIX, session=session, path=request.path, **context)
    return web.Response(text=page, status=status, content_type="text/html", headers=_HEADERS)


def refuse(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, message=message)


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the page (a reload does not repeat the action)."""
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def to_login(request: web.Request) -> web.Response:
    response = redirect(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but login and static files needs a live session; every POST a valid CSRF token
    and this origin. A backend refusal becomes a page (and an invalid key, a new login)."""
    if not request.path.startswith(_OPEN):
        session = request.app[SESSIONS].find(request.cookies.get(COOKIE))
        if session is None:
            return to_login(request) if request.method == "GET" else refuse(request, 403, "no session: log in")
        request[SESSION] = session
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf")
            if not same_origin(request.host, request.headers.get("Origin"), request.headers.get("Referer")):
                log.warning("console_cross_origin_refused", path=request.path, key_id=session.key_id)
                return refuse(request, 403, "refused: this form was not sent from the console's own pages")
            if not isinstance(token, str) or not csrf_ok(session, token):
                log.warning("console_csrf_refused", path=request.path, key_id=session.key_id)
                return refuse(request, 403, "refused: the form's token is missing or stale; reload the page")
    try:
        return await handler(request)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:  # the key was revoked or expired meanwhile
            return to_login(request)  # which deletes the cookie: its session is over
        status = _STATUS_OF.get(exc.code(), 502)
        return refuse(request, status, f"{exc.code().name}: {exc.details() or ''}")


def _timestamp(value: Timestamp) -> str:
    return value.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds") if value.seconds else ""


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value escaped: request ids, descriptions, reasons come from users
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the test, not the page silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tier"] = tier_name
    env.filters["pct"] = lambda share: f"{100 * float(share):.1f}%"
    env.filters["ts"] = _timestamp
    return env


def build_console(backend: Backend, sessions: Sessions, trace_url: str = "") -> web.Application:
    """The console, to be mounted at PREFIX (`app.add_subapp(PREFIX, build_console(...))`).
    `trace_url`: TIERLIFT_CONSOLE_TRACE_URL, checked (console/main.py); "" shows trace ids unlinked."""
    from tierlift.console import _actions, _pages

    app = web.Application(middlewares=[guard])
    app[BACKEND], app[SESSIONS], app[TEMPLATES] = backend, sessions, _templates()
    app[TRACE_URL] = trace_url
    app.router.add_get("/login", _pages.login_form)
    app.router.add_post("/login", _actions.login)
    app.router.add_post("/logout", _actions.logout)
    app.router.add_get("/", _pages.overview)
    app.router.add_get("/spend", _pages.spend)
    app.router.add_get("/spend.csv", _pages.spend_csv)
    app.router.add_get("/requests", _pages.requests)
    app.router.add_get("/requests/{request_id}", _pages.request_page)
    app.router.add_get("/quality", _pages.quality)
    app.router.add_get("/rollouts", _pages.rollouts)
    app.router.add_post("/rollouts/{rollout_id}/{action}", _actions.change_rollout)
    app.router.add_get("/keys", _pages.keys)
    app.router.add_post("/keys/create", _actions.create_key)
    app.router.add_post("/keys/{key_id}/revoke", _actions.revoke_key)
    app.router.add_post("/budgets/set", _actions.set_budget)
    app.router.add_post("/budgets/delete", _actions.delete_budget)
    app.router.add_static("/static", HERE / "static")
    return app
