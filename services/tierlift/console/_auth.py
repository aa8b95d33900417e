"""Sessions, cookies and CSRF for the console.

A login exchanges an API key for a session. The key stays on the server (in `Sessions`, in
memory): the browser holds only a random session id, signed with HMAC-SHA256 under the server's
secret and carrying its expiry, in an HttpOnly, SameSite=Strict cookie. So a key is never rendered
back nor readable by a script, a forged or tampered cookie fails the signature, and an expired one
is refused even where the store still remembers it. Sessions do not outlive the process: a restart
(or another replica) asks the user to log in again, which is the price of never shipping the key
to the browser.

Every POST carries the session's CSRF token in a hidden field and must come from this origin
(Origin, else Referer): SameSite=Strict already keeps the cookie off cross-site requests, the
token and the origin check are the belts beside those braces."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

COOKIE = "tierlift_console"
MAX_SESSIONS = 10_000  # a bound on memory, whoever keeps logging in


@dataclass
class Session:
    key: str = field(repr=False)  # the API key every backend call presents; never rendered
    role: str  # "viewer", "finance" or "admin", as the ledger answered at login
    key_id: str  # public part of the key: shown as "who you are", and what audits name
    expires: int  # unix seconds
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def sees_money(self) -> bool:
        return self.role in ("finance", "admin")

    @property
    def acts(self) -> bool:
        return self.role == "admin"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Sessions:
    """Session ids to sessions, and the signed cookie values that name them."""

    def __init__(self, secret: str, lifetime_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("the console's secret must be at least 16 characters")
        self._secret = secret.encode()
        self.lifetime_s = lifetime_s
        self._by_id: dict[str, Session] = {}

    def sign(self, session_id: str, expires: int) -> str:
        payload = f"{session_id}.{expires}"
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b64(mac)}"

    def open(self, key: str, role: str, key_id: str, now: float | None = None) -> tuple[Session, str]:
        """A new session and its cookie value."""
        now = time.time() if now is None else now
        self._forget_expired(now)
        if len(self._by_id) >= MAX_SESSIONS:  # the oldest go first
            for old in sorted(self._by_id, key=lambda sid: self._by_id[sid].expires)[: MAX_SESSIONS // 10]:
                del self._by_id[old]
        session_id = secrets.token_urlsafe(32)
        session = Session(key=key, role=role, key_id=key_id, expires=int(now) + self.lifetime_s)
        self._by_id[session_id] = session
        return session, self.sign(session_id, session.expires)

    def find(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie names: None when it is missing, forged, expired or forgotten."""
        if not cookie or cookie.count(".") != 2:
            return None
        session_id, expires_text, _mac = cookie.split(".")
        if not expires_text.isdigit() or not hmac.compare_digest(self.sign(session_id, int(expires_text)), cookie):
            return None
        now = time.time() if now is None else now
        session = self._by_id.get(session_id)
        if session is None or int(expires_text) <= now or session.expires <= now:
            return None
        return session

    def close(self, cookie: str | None) -> None:
        """Logout: only a cookie that would open the session may close it."""
        if cookie and self.find(cookie) is not None:
            del self._by_id[cookie.split(".")[0]]

    def _forget_expired(self, now: float) -> None:
        for session_id in [sid for sid, s in self._by_id.items() if s.expires <= now]:
            del self._by_id[session_id]


def csrf_ok(session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), token.encode())


def same_origin(host: str, origin: str | None, referer: str | None) -> bool:
    """Whether a POST comes from a page of this host. Browsers send Origin on every POST; a
    Referer stands in where a privacy setting strips Origin. Neither: refused, as a browser that
    sends neither cannot show us where it came from. The scheme is not compared: behind a proxy
    that ends TLS the console sees http while the browser says https."""
    source = origin if origin and origin != "null" else referer
    if not source:
        return False
    try:
        return urlsplit(source).netloc.lower() == host.lower()
    except ValueError:
        return False
