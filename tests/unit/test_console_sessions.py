"""The console's sessions sealed into their cookies (console/_auth.py): any replica with the same
secret opens them, nothing else does, and the cookie never shows the API key it carries."""

from __future__ import annotations

import base64

from tierlift.console._auth import Sessions, csrf_ok

SECRET = "a-test-secret-of-enough-length"
KEY = "tl_3f2a9c1b7d04_Zm9vYmFyYmF6cXV4cXV1eHF1dXpxdXV6"  # the shape of a real key


def _decoded(cookie: str) -> bytes:
    return base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_session_sealed_by_one_replica_opens_on_another_with_the_same_secret_only() -> None:
    session, cookie = Sessions(SECRET, 60).open(KEY, "admin", "3f2a9c1b7d04", now=1000)
    found = Sessions(SECRET, 60).find(cookie, now=1001)  # another replica, or this one restarted
    assert found is not None and found == session
    assert (found.key, found.role, found.key_id, found.expires) == (KEY, "admin", "3f2a9c1b7d04", 1060)
    assert Sessions("another-secret-long-enough", 60).find(cookie, now=1001) is None


def test_a_tampered_or_forged_cookie_is_refused() -> None:
    sessions = Sessions(SECRET, 60)
    _session, cookie = sessions.open(KEY, "viewer", "3f2a9c1b7d04", now=1000)
    sealed = _decoded(cookie)
    for at in range(len(sealed)):  # every byte: the nonce, the tag, the ciphertext
        flipped = bytearray(sealed)
        flipped[at] ^= 0x01
        assert sessions.find(_encoded(bytes(flipped)), now=1001) is None, at
    middle = len(cookie) // 2
    swapped = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    assert sessions.find(swapped, now=1001) is None
    for forged in ("", "forged.9999999999.AAAA", cookie[:-8], cookie + "AAAA", _encoded(bytes(len(sealed))),
                   "%%%not-base64%%%", cookie * 20):  # fmt: skip
        assert sessions.find(forged, now=1001) is None, forged
    assert sessions.find(None) is None


def test_a_cookie_past_its_sealed_expiry_is_refused_although_it_opens() -> None:
    sessions = Sessions(SECRET, 60)
    _session, cookie = sessions.open(KEY, "admin", "3f2a9c1b7d04", now=1000)
    assert sessions.find(cookie, now=1059) is not None
    assert sessions.find(cookie, now=1060) is None
    assert Sessions(SECRET, 7 * 86400).find(cookie, now=1060) is None  # the sealed expiry rules, not the lifetime


def test_the_cookie_holds_neither_the_key_nor_its_base64_and_stays_small() -> None:
    sessions = Sessions(SECRET, 8 * 3600)
    session, cookie = sessions.open(KEY, "admin", "3f2a9c1b7d04")
    assert KEY not in cookie and session.csrf not in cookie
    for shift in range(3):  # the key's base64 at each alignment within a longer text, in both alphabets
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            middle = encode(b"x" * shift + KEY.encode()).decode()[4:-4]
            assert middle not in cookie, (shift, encode)
    assert sessions.open(KEY, "admin", "3f2a9c1b7d04")[1] != cookie  # a fresh nonce and token each login
    _long, longest = sessions.open("tl_" + "k" * 500, "finance", "k" * 64)
    assert len(cookie) < 512 and len(longest) < 2048  # browsers keep 4 KB per cookie


def test_the_csrf_token_round_trips_through_the_cookie() -> None:
    sessions = Sessions(SECRET, 60)
    session, cookie = sessions.open(KEY, "admin", "3f2a9c1b7d04", now=1000)
    found = Sessions(SECRET, 60).find(cookie, now=1001)
    assert found is not None and found.csrf == session.csrf and len(session.csrf) >= 32
    assert csrf_ok(found, session.csrf)
    assert not csrf_ok(found, "stale") and not csrf_ok(found, "")
    other, _cookie = sessions.open(KEY, "admin", "3f2a9c1b7d04", now=1000)
    assert not csrf_ok(found, other.csrf)  # a token is its session's own
    assert KEY not in repr(found) and found.csrf not in repr(found)
