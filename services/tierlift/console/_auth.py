"""Sessions, cookies and CSRF for the console.

A login exchanges an API key for a session, and the session travels in its cookie: the key, the
role and key id the ledger answered, the expiry and the CSRF token, sealed (XSalsa20-Poly1305:
PyNaCl's SecretBox) under a key derived from TIERLIFT_CONSOLE_SECRET. The server keeps nothing,
so every replica given the same secret opens every session, and a restart or an upgrade signs no
one out. The cookie is HttpOnly and SameSite=Strict, and its content is ciphertext: no page renders
the key and no script, nor whoever reads the cookie jar, can read it. A forged or tampered cookie
fails authentication; one past its sealed expiry is refused although it opens.

What a server-side store gave and this does not: logout deletes the browser's cookie but cannot
recall a copy of it, which stays valid until its expiry (TIERLIFT_CONSOLE_SESSION_S) unless the
key is revoked: revoking the API key in the ledger ends every session that carries it, since each
backend call presents the key. And the secret now guards keys, not only session ids: it and a
captured cookie give the key inside, so keep the secret as a key (the chart mounts it from a
Secret); changing it ends every session.

Every POST carries the session's CSRF token in a hidden field and must come from this origin
(Origin, else Referer): SameSite=Strict already keeps the cookie off cross-site requests, the
token and the origin check are the belts beside those braces."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.secret

COOKIE = "tierlift_console"
_KDF_PERSON = b"tl-console-box-1"  # the KDF's context: a key for sealing sessions, and only that
_MAX_COOKIE = 4096  # what browsers keep; a session seals to under 300 characters


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


class Sessions:
    """Sessions sealed into cookie values, and opened from them, under the console's secret."""

    def __init__(self, secret: str, lifetime_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("the console's secret must be at least 16 characters")
        box_key = hashlib.blake2b(secret.encode(), digest_size=nacl.secret.SecretBox.KEY_SIZE, person=_KDF_PERSON)
        self._box = nacl.secret.SecretBox(box_key.digest())
        self.lifetime_s = lifetime_s

    def open(self, key: str, role: str, key_id: str, now: float | None = None) -> tuple[Session, str]:
        """A new session and its cookie value: the session, sealed (a random nonce each time)."""
        now = time.time() if now is None else now
        session = Session(key=key, role=role, key_id=key_id, expires=int(now) + self.lifetime_s)
        sealed = self._box.encrypt(json.dumps(dataclasses.asdict(session), separators=(",", ":")).encode())
        return session, base64.urlsafe_b64encode(bytes(sealed)).rstrip(b"=").decode()

    def find(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries: None when it is missing, forged, tampered with or expired."""
        if not cookie or len(cookie) > _MAX_COOKIE:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            session = Session(**json.loads(self._box.decrypt(sealed)))
        except (ValueError, TypeError, nacl.exceptions.CryptoError):  # not base64, not ours, or changed
            return None
        now = time.time() if now is None else now
        return session if isinstance(session.expires, int) and session.expires > now else None


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
