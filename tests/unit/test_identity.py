import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tierlift.core.entry import StartupError
from tierlift.core.identity import KeyBook, digest, new_key
from tierlift.core.nats_access import (
    EVENTS,
    EventSigner,
    ProducerCheck,
    Signed,
    TrustedProducer,
    new_seed,
    public_key,
    subject_matches,
    trusted_keys,
)
from tierlift.ledger._keys import key_row
from tierlift.router._fair_share import FairShare, OverLimit, TenantLimits
from tierlift.v1 import events_pb2, ledger_pb2


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


def test_certificate_names_map_to_principals_and_a_bad_mapping_fails_at_start() -> None:
    book = KeyBook()
    book.trust_certificates("router.tierlift.svc=router, spiffe://corp/ns/billing/sa/app=app:billing")
    router = book.by_certificate({"x509_common_name": [b"router.tierlift.svc"]})
    assert router is not None and router.role == "router"
    app = book.by_certificate({"x509_subject_alternative_name": [b"other", b"spiffe://corp/ns/billing/sa/app"]})
    assert app is not None and (app.role, app.tenant) == ("app", "billing")
    assert book.by_certificate({"x509_common_name": [b"intruder"]}) is None
    assert book.by_certificate({}) is None
    for bad in ("no-role", "x=emperor", "x=app", "x=admin:acme", "=router"):
        with pytest.raises(StartupError, match="TIERLIFT_TLS_IDENTITIES"):
            KeyBook().trust_certificates(bad)


def test_a_key_the_policy_limits_is_capped_on_top_of_its_tenant() -> None:
    share = FairShare(keys={"k-batch": TenantLimits(concurrent=1)}, default=TenantLimits(concurrent=3))
    share.admit("acme", 10, "k-batch")
    with pytest.raises(OverLimit, match="API key 'k-batch' has 1 requests in flight"):
        share.admit("acme", 10, "k-batch")
    share.admit("acme", 10, "k-web")  # another key of the same tenant still gets in
    share.admit("acme", 10, "k-web")
    with pytest.raises(OverLimit, match="tenant 'acme' has 3 requests in flight"):
        share.admit("acme", 10, "k-web")
    share.release("acme", "k-batch")
    share.admit("acme", 10, "k-batch")


def test_events_are_signed_by_their_producer_and_checked_against_trusted_keys() -> None:
    router, stranger = new_seed(), new_seed()
    check = ProducerCheck([TrustedProducer("router", public_key(router))])
    headers = EventSigner(router).headers("tierlift.attempt.finished", b"payload")
    assert check.problem("tierlift.attempt.finished", b"payload", headers) == ""
    assert "does not match" in check.problem("tierlift.attempt.finished", b"changed", headers)
    assert "does not match" in check.problem("tierlift.request.completed", b"payload", headers)  # another subject
    foreign = EventSigner(stranger).headers("tierlift.attempt.finished", b"payload")
    assert "not a trusted producer" in check.problem("tierlift.attempt.finished", b"payload", foreign)
    assert check.problem("tierlift.attempt.finished", b"payload", None) == "event is not signed"
    with pytest.raises(ValueError, match="not a public user nkey"):
        trusted_keys(f"router={router}")  # a seed where a public key belongs
    with pytest.raises(ValueError, match="is not role=UKEY"):
        trusted_keys(public_key(router))  # a key without the role it speaks for


@pytest.mark.parametrize("role", ["router", "ledger", "assessor", "observer"])
def test_a_producer_signs_only_what_its_role_may_publish(role: str) -> None:
    """A valid signature is not enough: the subject must be one its role publishes (EVENTS). The
    assessor's signature on an attempt, the router's on a key state, are refused."""
    seed = new_seed()
    check = ProducerCheck([TrustedProducer(role, public_key(seed))])
    subjects = ["tierlift.attempt.finished", "tierlift.request.completed", "tierlift.shadow.finished",
                "tierlift.budget.state.acme._all.day", "tierlift.keys.state.k1", "tierlift.rollout.state.r1",
                "tierlift.quality.scored", "tierlift.audit.keys.create", "tierlift.audit.rollout.start"]  # fmt: skip
    for subject in subjects:
        problem = check.problem(subject, b"x", EventSigner(seed).headers(subject, b"x"))
        allowed = any(subject_matches(pattern, subject) for pattern in EVENTS[role])
        assert (problem == "") == allowed, (role, subject, problem)
        if not allowed:
            assert f"({role}) may not sign {subject}" in problem
    assert EVENTS["assessor"] and not any(subject_matches(p, "tierlift.attempt.finished") for p in EVENTS["assessor"])


def test_a_retired_key_is_taken_for_what_the_stream_stored_before_it_retired() -> None:
    old = new_seed()
    [retired] = trusted_keys(f"router={public_key(old)}@2026-12-07T10:00:00Z")
    check = ProducerCheck([retired])
    subject = "tierlift.attempt.finished"
    headers = EventSigner(old).headers(subject, b"x")
    before = datetime(2026, 12, 7, 9, 59, tzinfo=UTC).timestamp()
    after = datetime(2026, 12, 7, 10, 1, tzinfo=UTC).timestamp()
    assert check.problem(subject, b"x", headers, before) == ""  # a backlog signed before the rotation
    assert "retired" in check.problem(subject, b"x", headers, after)
    assert "retired" in check.problem(subject, b"x", headers, None)  # when it was stored is unknown
    with pytest.raises(ValueError, match="ISO 8601"):
        trusted_keys(f"router={public_key(old)}@yesterday")


def test_nats_subject_matching() -> None:
    assert subject_matches("tierlift.>", "tierlift.a.b") and not subject_matches("tierlift.>", "tierlift")
    assert subject_matches("a.*.c", "a.b.c") and not subject_matches("a.*.c", "a.b.c.d")
    assert subject_matches("tierlift.keys.used", "tierlift.keys.used")
    assert not subject_matches("tierlift.keys.used", "tierlift.keys.used.x")


async def test_a_large_batch_is_checked_in_the_helper_process_with_the_same_verdicts() -> None:
    """The ledger's batches of 64 events or more are verified in a helper process: each event
    gets the verdict `problem` gives, in order, while the helper starts (checked here) and once
    it runs; a helper that dies is replaced, and the batch it was given is checked here instead,
    not lost or passed unchecked."""
    router, stranger = new_seed(), new_seed()
    check = ProducerCheck([TrustedProducer("router", public_key(router))], helper_from=64)
    subject = "tierlift.attempt.finished"
    events: list[Signed] = []
    for i in range(200):
        payload = f"event {i}".encode()
        signer = EventSigner(stranger if i % 7 == 3 else router)
        headers: dict[str, str] | None = signer.headers(subject, payload)
        if i % 11 == 5:
            payload += b" changed after signing"
        if i % 13 == 9:
            headers = None
        events.append((subject, payload, headers, None))
    expected = [check.problem(*event) for event in events]
    assert 0 < expected.count("") < len(expected)  # the batch mixes good and refused events
    try:
        assert await check.problems(events) == expected  # checked here: the helper is starting
        assert check._helper_started is not None
        await asyncio.wait_for(asyncio.wrap_future(check._helper_started), 60)
        assert await check.problems(events) == expected  # checked by the helper
        assert check._helper is not None
        [pid] = [p.pid for p in check._helper._processes.values()]
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        assert await check.problems(events) == expected  # checked here: the helper is gone
        assert check._helper is None
    finally:
        check.close()


def test_a_key_request_that_cannot_be_stored_is_refused_naming_the_field() -> None:
    # PostgreSQL's text cannot hold NUL: the insert failed as INTERNAL where SQLite stored it
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="description: contains a NUL character"):
        key_row(ledger_pb2.KeyRequest(role="admin", description="ops\x00"), now)
    with pytest.raises(ValueError, match="description: longer than 200"):
        key_row(ledger_pb2.KeyRequest(role="admin", description="x" * 201), now)
    assert key_row(ledger_pb2.KeyRequest(role="admin", description="ops team"), now)[0]["description"] == "ops team"


def test_the_signature_helper_dies_with_its_parent_even_on_sigkill(tmp_path: Path) -> None:
    """A ledger killed by SIGKILL must not leave its helper process behind (~100 MB each)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from tierlift.core.nats_access import ProducerCheck, TrustedProducer, new_seed, public_key\n"
        "if __name__ == '__main__':  # the helper is spawned: it imports this file\n"
        "    check = ProducerCheck([TrustedProducer('router', public_key(new_seed()))])\n"
        "    check.start_helper()\n"
        "    check._helper_started.result(60)\n"
        "    print(*[p.pid for p in check._helper._processes.values()], flush=True)\n"
        "    time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helper = int(parent.stdout.readline())
        assert Path(f"/proc/{helper}").exists()
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(100):
            if not Path(f"/proc/{helper}").exists() or "Z" in Path(f"/proc/{helper}/stat").read_text().split()[2]:
                break
            time.sleep(0.1)
        else:
            os.kill(helper, signal.SIGKILL)
            raise AssertionError("the helper outlived its parent")
    finally:
        parent.kill()
