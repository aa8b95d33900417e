"""The console's actions (POST): login and logout, and what an admin may do. The guard in _app.py
has checked the session, the CSRF token and the origin before any of these run; each action is
one Ledger or Assessor call with the admin's own key, so the backend audits it under that key,
as it does the same action from the CLI. The console also logs each action (never the key)."""

from __future__ import annotations

import grpc
from aiohttp import web

from tierlift.console._app import BACKEND, PREFIX, SESSIONS, redirect, refuse, render, session_of
from tierlift.console._auth import COOKIE, same_origin
from tierlift.console._backend import NotForConsole
from tierlift.console._pages import keys_page
from tierlift.core.identity import key_id_of
from tierlift.core.logging import get_logger
from tierlift.v1 import assessor_pb2, ledger_pb2

log = get_logger(__name__)
ROLLOUT_ACTIONS = ("pause", "resume", "promote", "abort")


async def login(request: web.Request) -> web.StreamResponse:
    # no session yet, so no CSRF token: the origin check stops a foreign page logging a browser
    # into the attacker's key (login CSRF)
    if not same_origin(request.host, request.headers.get("Origin"), request.headers.get("Referer")):
        return refuse(request, 403, "refused: log in from the console's own page")
    form = await request.post()
    key = str(form.get("key", "")).strip()
    try:
        role = await request.app[BACKEND].role_of(key) if key else ""
    except NotForConsole as exc:
        return render(request, "login.html", status=403, error=str(exc))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise
        role = ""
    if not role:
        log.info("console_login_refused")
        return render(request, "login.html", status=401, error="that key was not accepted")
    session, cookie = request.app[SESSIONS].open(key, role, key_id_of(key))
    log.info("console_login", key_id=session.key_id, role=role)
    response = redirect(f"{PREFIX}/")
    response.set_cookie(COOKIE, cookie, max_age=request.app[SESSIONS].lifetime_s, path=PREFIX, httponly=True,
                        samesite="Strict", secure=request.secure)  # fmt: skip
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """Deletes the cookie, which holds the whole session (a copy stays valid until it expires: _auth.py)."""
    response = redirect(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


def _not_admin(request: web.Request) -> web.Response | None:
    session = session_of(request)
    if session.acts:
        return None
    log.warning("console_action_refused", path=request.path, key_id=session.key_id, role=session.role)
    return refuse(request, 403, f"role {session.role!r} may look, not act: actions are for admin keys")


async def change_rollout(request: web.Request) -> web.StreamResponse:
    if refused := _not_admin(request):
        return refused
    backend, session = request.app[BACKEND], session_of(request)
    rollout_id, action = request.match_info["rollout_id"], request.match_info["action"]
    if action not in ROLLOUT_ACTIONS or backend.assessor is None:
        return refuse(request, 404, f"no such rollout action: {action}")
    reason = str((await request.post()).get("reason", ""))[:500] or "from the console"
    change = assessor_pb2.RolloutChange(rollout_id=rollout_id, action=action, reason=reason)
    state = await backend.call(backend.assessor, "ChangeRollout", change, session.key)
    log.info("console_rollout_changed", key_id=session.key_id, rollout_id=rollout_id, action=action)
    return redirect(f"{PREFIX}/rollouts?id={state.rollout_id}&done={action}")


async def create_key(request: web.Request) -> web.StreamResponse:
    """The new key's secret is shown once, on this response (not stored, not redirected to)."""
    if refused := _not_admin(request):
        return refused
    backend, session, form = request.app[BACKEND], session_of(request), await request.post()
    workloads = [w.strip() for w in str(form.get("workloads", "")).split(",") if w.strip()]
    wanted = ledger_pb2.KeyRequest(tenant=str(form.get("tenant", "")).strip(), role=str(form.get("role", "")),
                                   workloads=workloads, expires_at=str(form.get("expires_at", "")).strip(),
                                   description=str(form.get("description", "")).strip())  # fmt: skip
    created = await backend.ledger_call("CreateKey", wanted, session.key)
    log.info("console_key_created", key_id=session.key_id, created=created.key.key_id, role=created.key.role)
    return await keys_page(request, created)  # no-store, as every page: the secret stays out of caches


async def revoke_key(request: web.Request) -> web.StreamResponse:
    if refused := _not_admin(request):
        return refused
    backend, session = request.app[BACKEND], session_of(request)
    key_id = request.match_info["key_id"]
    await backend.ledger_call("RevokeKey", ledger_pb2.KeyId(key_id=key_id), session.key)
    log.info("console_key_revoked", key_id=session.key_id, revoked=key_id)
    return redirect(f"{PREFIX}/keys?done=revoked")


def _budget_of(form: dict[str, str]) -> ledger_pb2.Budget:
    ratio = form.get("soft_ratio", "").strip()
    try:
        soft = float(ratio) if ratio else 0.0
    except ValueError:
        soft = -1.0  # the ledger refuses it, naming the field
    return ledger_pb2.Budget(tenant=form.get("tenant", "").strip(), workload=form.get("workload", "").strip(),
                             period=form.get("period", "").strip(), limit_usd=form.get("limit_usd", "").strip(),
                             soft_ratio=soft, action=form.get("action", "").strip())  # fmt: skip


async def set_budget(request: web.Request) -> web.StreamResponse:
    if refused := _not_admin(request):
        return refused
    backend, session = request.app[BACKEND], session_of(request)
    budget = _budget_of({k: str(v) for k, v in (await request.post()).items()})
    await backend.ledger_call("SetBudget", budget, session.key)
    log.info("console_budget_set", key_id=session.key_id, tenant=budget.tenant, workload=budget.workload)
    return redirect(f"{PREFIX}/keys?done=budget+set")


async def delete_budget(request: web.Request) -> web.StreamResponse:
    if refused := _not_admin(request):
        return refused
    backend, session = request.app[BACKEND], session_of(request)
    budget = _budget_of({k: str(v) for k, v in (await request.post()).items()})
    await backend.ledger_call("DeleteBudget", budget, session.key)
    log.info("console_budget_deleted", key_id=session.key_id, tenant=budget.tenant, workload=budget.workload)
    return redirect(f"{PREFIX}/keys?done=budget+deleted")
