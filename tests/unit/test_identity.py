from datetime import UTC, datetime, timedelta

from tierlift.core.identity import KeyBook, digest, new_key
from tierlift.v1 import events_pb2


def state(key: str, **fields: object) -> events_pb2.KeyState:
    key_id = key.split("_")[1]
    return events_pb2.KeyState(key_id=key_id, secret_sha256=digest(key), tenant="acme", role="app", **fields)  # type: ignore[arg-type]


def test_a_key_authenticates_until_it_is_revoked_or_expires() -> None:
    book = KeyBook()
    key = new_key()[1]
    book.put(state(key))
    principal = book.authenticate(key)
    assert principal is not None and (principal.tenant, principal.role) == ("acme", "app")
    assert book.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # the same id, another secret
    book.put(state(key, revoked=True))
    assert book.authenticate(key) is None
    expiring = new_key()[1]
    expired = state(expiring)
    expired.expires_at.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    book.put(expired)
    assert book.authenticate(expiring) is None


def test_service_keys_are_trusted_by_their_hash_only() -> None:
    book = KeyBook()
    router_key = new_key()[1]
    book.trust_service(digest(router_key), "router")
    principal = book.authenticate(router_key)
    assert principal is not None and principal.role == "router"
    assert book.authenticate("") is None and book.authenticate(digest(router_key)) is None
