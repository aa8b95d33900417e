"""Budget leases: the ledger's arithmetic (grant, renew, return, expiry, take-back; exact Decimal,
headroom never over-granted), routers' reservations against it (two routers, one ledger, a burst),
and the router's admission when a reservation cannot be had."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import grpc
import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from tests.unit.router_harness import RecordingPublisher, ScriptedBackend, serve_router
from tierlift.adapters import anthropic_messages, bedrock, gemini, openai_compat
from tierlift.ledger._leases import BucketBooks, Grant, LeaseBook, LeaseDesk, decode, encode
from tierlift.router import Policy
from tierlift.router._budgets import BudgetBook
from tierlift.router._leases import (
    IMAGE_TOKENS,
    UNSET_MAX_TOKENS,
    BudgetLeases,
    Holds,
    NoReservation,
    worst_case_cost,
    worst_case_input_tokens,
)
from tierlift.router._policy_source import PolicySource
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2, router_pb2

D = Decimal


def lease(book: LeaseBook, holder: str, held: str, reserved: str, need: str, want: str, *, limit: str = "1",
          spent: str = "0", now: float = 0.0, share: str = "0.25") -> tuple[Decimal, bool]:  # fmt: skip
    grant = book.lease(holder, D(held), D(reserved), D(need), D(want), limit=D(limit), spent=D(spent), now=now,
                       ttl_s=30.0, share=D(share))  # fmt: skip
    return grant.held, grant.granted


# --- the ledger's arithmetic -------------------------------------------------------------------


def test_a_grant_is_what_is_needed_or_a_share_of_the_headroom_whichever_is_more() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)
    assert lease(book, "a", "0", "0", "0.1", "0.5") == (D("0.25"), True)  # a quarter of 1 USD
    assert lease(book, "b", "0", "0", "0.6", "0.9") == (D("0.6"), True)  # more than a share: what it needs
    assert book.committed(D(0)) == D("0.85")
    assert lease(book, "c", "0", "0", "0.2", "0.2") == (D(0), False)  # 0.15 left: not enough
    assert lease(book, "c", "0", "0", "0.15", "0.2") == (D("0.15"), True)  # all of it
    assert book.committed(D(0)) == D(1)


def test_a_renewal_counts_what_was_spent_once_and_the_store_catching_up_changes_nothing() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)
    lease(book, "a", "0", "0", "0.2", "0.2", share="0")
    # it spent 0.15 of its 0.2 (its events not stored yet): committed stays 0.2, not 0.05
    assert lease(book, "a", "0.05", "0", "0", "0.05") == (D("0.05"), True)
    assert book.committed(D(0)) == D("0.2")
    assert book.committed(D("0.15")) == D("0.2")  # the store has it now: still counted once


def test_giving_back_closes_the_lease_and_keeps_what_it_spent() -> None:
    book = LeaseBook(baseline=D("0.1"), touched=0.0)
    lease(book, "a", "0", "0", "0.3", "0.3", share="0")
    assert lease(book, "a", "0.2", "0", "0", "0") == (D(0), True)  # spent 0.1, 0.2 back
    assert "a" not in book.holdings
    assert book.committed(D("0.1")) == D("0.2")  # baseline 0.1 + the 0.1 it spent


def test_a_lowered_limit_takes_back_what_is_not_reserved_and_grants_nothing() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)
    lease(book, "a", "0", "0", "0.5", "0.5", share="0")
    # limit now 0.2: 0.3 over; it holds 0.5, 0.4 of it reserved by requests in flight
    assert lease(book, "a", "0.5", "0.4", "0", "0.5", limit="0.2") == (D("0.4"), True)
    assert lease(book, "a", "0.4", "0.4", "0.5", "0.6", limit="0.2") == (D("0.4"), False)
    assert lease(book, "b", "0", "0", "0.01", "0.01", limit="0.2") == (D(0), False)


def test_a_holder_that_spent_beyond_its_lease_is_counted_for_all_of_it() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)
    lease(book, "a", "0", "0", "0.1", "0.1", share="0")
    lease(book, "a", "-0.02", "0", "0", "0")  # its call cost 0.12
    assert book.committed(D(0)) == D("0.12")


def test_a_holder_this_ledger_never_saw_keeps_its_claim_and_cannot_claim_more_than_granted() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)  # the ledger restarted; the router held 0.3
    assert lease(book, "a", "0.3", "0.1", "0", "0.3") == (D("0.3"), True)
    assert book.committed(D(0)) == D("0.3")
    assert lease(book, "a", "5", "0", "0", "5", share="0") == (D("0.3"), True)  # 5: never granted


def test_amounts_are_exact_to_the_picodollar_and_a_share_rounds_down() -> None:
    book = LeaseBook(baseline=D("0.000000000001"), touched=0.0)
    held, _ = lease(book, "a", "0", "0", "0.000000000001", "1", limit="0.000000000010", share="0.3333")
    assert held == D("0.000000000002")  # a third of 9 picodollars, rounded down
    for holder in "bcdefghijk":
        lease(book, holder, "0", "0", "0.000000000001", "0.000000000001", limit="0.000000000010")
    assert book.committed(D(0)) == D("0.000000000010")  # 1 + 2 + 7, and the rest refused


def test_expired_leases_stay_committed_until_none_has_been_live_for_the_settle_time() -> None:
    book = LeaseBook(baseline=D(0), touched=0.0)
    lease(book, "a", "0", "0", "0.4", "0.4", now=0.0)  # lapses at 30 s
    assert not book.stale(now=100.0, settle_s=600.0)
    assert book.committed(D(0)) == D("0.4")
    assert book.stale(now=631.0, settle_s=600.0)


@pytest.mark.parametrize("seed", range(20))
def test_under_any_interleaving_spend_and_holdings_never_pass_the_limit(seed: int) -> None:
    """Three holders reserve, spend (at most what they reserved), renew, give back and restart
    (a holder that lost its lease state), while the store learns of spend late; what was really
    spent plus what is really held never passes the limit, and the book never counts less."""
    rng = random.Random(seed)
    book, limit = LeaseBook(baseline=D(0), touched=0.0), D("0.05")
    held = {h: D(0) for h in "abc"}
    spent_true, stored, pending = D(0), D(0), list[Decimal]()
    for step in range(400):
        holder = rng.choice("abc")
        action = rng.random()
        if action < 0.5:  # a request: renew if needed, then spend part of its worst case
            amount = D(rng.randint(1, 4000)) / D(10**6)
            if held[holder] < amount:
                got = book.lease(holder, held[holder], D(0), amount, amount * 4, limit=limit, spent=stored,
                                 now=float(step), ttl_s=30.0)  # fmt: skip
                held[holder] = got.held
                if not got.granted:
                    continue
            cost = amount * D(rng.randint(0, 100)) / D(100)
            held[holder] -= cost
            spent_true += cost
            pending.append(cost)
        elif action < 0.7 and pending:  # the ledger stores some spend
            stored += pending.pop(0)
        elif action < 0.85:  # give back
            book.lease(holder, held[holder], D(0), D(0), D(0), limit=limit, spent=stored, now=float(step), ttl_s=30.0)
            held[holder] = D(0)
        else:  # a renewal that wants nothing more
            got = book.lease(holder, held[holder], D(0), D(0), held[holder], limit=limit, spent=stored,
                             now=float(step), ttl_s=30.0)  # fmt: skip
            held[holder] = got.held
        assert spent_true + sum(held.values()) <= limit
        assert book.committed(stored) >= spent_true + sum(held.values())
        assert all(v >= 0 for v in held.values())


class RacingBucket:
    """A key-value bucket where another ledger replica changes the book between the first read and
    write: the write conditional on the revision read fails, as NATS makes it."""

    def __init__(self) -> None:
        self.value, self.revision, self.raced = b"", 0, False

    async def get(self, key: str) -> Any:
        if not self.revision:
            raise KeyNotFoundError
        return type("Entry", (), {"value": self.value, "revision": self.revision})()

    async def create(self, key: str, value: bytes) -> int:
        return await self.update(key, value, last=0)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        if not self.raced:  # the other replica's grant lands first
            self.raced = True
            other = LeaseBook(baseline=D(0), touched=0.0)
            other.lease("other-router", D(0), D(0), D("0.6"), D("0.6"), limit=D(1), spent=D(0), now=0.0, ttl_s=30.0)
            self.value, self.revision = encode(other), self.revision + 1
        if last != self.revision:
            raise KeyWrongLastSequenceError
        self.value, self.revision = value, self.revision + 1
        return self.revision


async def test_a_book_changed_by_another_ledger_replica_is_read_again_before_a_grant() -> None:
    bucket = RacingBucket()

    def grant_half(book: LeaseBook | None) -> tuple[LeaseBook, Grant]:
        book = book or LeaseBook(baseline=D(0), touched=0.0)
        return book, book.lease("router-1", D(0), D(0), D("0.5"), D("0.5"), limit=D(1), spent=D(0), now=1.0,
                                ttl_s=30.0)  # fmt: skip

    grant = await BucketBooks(bucket).change("acme._all.day.2026-12-07", grant_half)
    assert not grant.granted  # 0.6 went to the other replica's router first: 0.4 left
    stored = decode(bucket.value)
    assert set(stored.holdings) == {"other-router"} and stored.committed(D(0)) == D("0.6")  # refused: none kept
    assert encode(decode(encode(stored))) == encode(stored)


# --- routers against one ledger ------------------------------------------------------------------


@dataclass
class FakeStore:
    """What LeaseDesk reads: the budget rows and the stored spend (stored late, as ingest does)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stored: Decimal = field(default_factory=Decimal)

    def budgets(self, tenant: str = "") -> list[dict[str, Any]]:
        return [r for r in self.rows if not tenant or r["tenant"] == tenant]

    def spent_since(self, tenant: str, workload: str, day: date) -> Decimal:
        return self.stored


def budget(strict: bool = False, limit: str = "0.01", action: str = "reject") -> dict[str, Any]:
    return {"tenant": "acme", "workload": "", "period": "day", "limit_usd": D(limit), "soft_ratio": 0.8,
            "action": action, "updated_at": datetime.now(UTC), "strict": strict}  # fmt: skip


def state(strict: bool = False, action: str = "reject") -> events_pb2.BudgetState:
    return events_pb2.BudgetState(tenant="acme", period="day", state="ok", action=action, limit_usd="0.01",
                                  strict=strict, version=1)  # fmt: skip


def desk_call(desk: LeaseDesk, calls: list[ledger_pb2.LeaseRequest]) -> Any:
    async def call(request: ledger_pb2.LeaseRequest) -> ledger_pb2.LeaseReply:
        calls.append(request)
        await asyncio.sleep(0.001)  # a round trip: other requests run meanwhile
        return await desk.answer(request)

    return call


@pytest.mark.parametrize("strict", [False, True])
async def test_a_burst_over_two_routers_spends_no_more_than_the_limit(strict: bool) -> None:
    store = FakeStore([budget(strict)])
    desk, calls = LeaseDesk(store), list[ledger_pb2.LeaseRequest]()  # type: ignore[arg-type]
    routers = [BudgetLeases(desk_call(desk, calls), holder=f"router-{i}") for i in range(2)]
    worst, billed, admitted = D("0.002"), list[Decimal](), list[int]()

    async def one(i: int) -> None:
        leases = routers[i % 2]
        try:
            hold = await leases.reserve([state(strict)], worst)
        except NoReservation as exc:
            assert "daily budget of tenant acme has no headroom" in str(exc)
            return
        await asyncio.sleep(random.random() / 100)
        cost = worst * D(random.randint(50, 100)) / D(100)
        billed.append(cost)
        admitted.append(i)
        leases.settle(hold, cost)
        store.stored += cost  # the ledger stores it (after the settle: the late store is the hard case)

    await asyncio.gather(*(one(i) for i in range(50)))
    assert sum(billed) <= D("0.01")
    # Liveness: the limit holds 5 worst cases, but a cost the store has before the ledger hears the
    # lease's return is counted twice meanwhile (spent, and still held: conservative, never money).
    # At the k-th grant at most k-1 costs of >= 0.001 each are so doubled, so 0.003 (k-1) <= 0.008
    # still grants: at least 3 get in whatever the interleaving, 5 when nothing was stored early.
    assert 3 <= len(admitted) < 50
    if strict:
        assert len(calls) >= 2 * len(admitted)  # a reservation and a return per request
    for leases in routers:
        await leases.give_back_all()
    await asyncio.sleep(0.05)
    [book] = desk.books.books.values()  # type: ignore[union-attr]
    assert book.holdings == {} and book.committed(store.stored) == sum(billed)


async def test_most_requests_reserve_from_the_routers_lease_without_asking_the_ledger() -> None:
    store = FakeStore([budget(limit="100")])
    desk, calls = LeaseDesk(store), list[ledger_pb2.LeaseRequest]()  # type: ignore[arg-type]
    leases = BudgetLeases(desk_call(desk, calls), holder="router-1")
    for _ in range(100):
        leases.settle(await leases.reserve([state()], D("0.001")), D("0.0005"))
    assert len(calls) <= 100 / 16 + 1
    assert leases.leases["acme", "", "day"].reserved == 0


async def test_an_unanswered_ledger_is_a_reservation_refused_as_unavailable() -> None:
    async def silent(request: ledger_pb2.LeaseRequest) -> ledger_pb2.LeaseReply:
        raise TimeoutError

    with pytest.raises(NoReservation) as refused:
        await BudgetLeases(silent).reserve([state()], D("0.001"))
    assert refused.value.unavailable and "the ledger did not grant" in str(refused.value)


async def test_a_deleted_budget_reserves_nothing() -> None:
    desk = LeaseDesk(FakeStore([]))  # type: ignore[arg-type]
    hold = await BudgetLeases(desk_call(desk, [])).reserve([state()], D("0.001"))
    assert hold.leases == []


# --- the worst case ----------------------------------------------------------------------------------


def test_unset_max_tokens_is_what_the_adapters_ask_the_providers_for() -> None:
    defaults = {m.DEFAULT_MAX_TOKENS for m in (openai_compat, anthropic_messages, bedrock, gemini)}
    assert defaults == {UNSET_MAX_TOKENS}


def test_the_input_bound_is_at_least_the_prompt_bytes_and_an_image_allowance() -> None:
    text = "Zürich — 東京? " * 50
    image = common_pb2.ContentPart(type="image_url", image_url="data:image/png;base64," + "A" * 100_000)
    request = router_pb2.CompleteRequest(
        messages=[common_pb2.Message(role="user", content=text),
                  common_pb2.Message(role="user", parts=[image])],
    )  # fmt: skip
    bound = worst_case_input_tokens(request)
    assert len(text.encode()) + IMAGE_TOKENS <= bound < len(text.encode()) + IMAGE_TOKENS + 400


def test_the_worst_case_is_the_sum_over_every_rung_at_the_dearest_prices() -> None:
    from tierlift.core.catalog import load_catalog
    from tierlift.core.config import DEFAULT_CATALOG

    catalog = load_catalog(DEFAULT_CATALOG)
    paid = [m for m in catalog.models if m.price.api is not None][:2]
    ladder = [router_pb2.Rung(model=m.id) for m in paid]
    request = router_pb2.CompleteRequest(
        messages=[common_pb2.Message(role="user", content="hi")], params=common_pb2.GenerationParams(max_tokens=100)
    )
    each = [worst_case_cost(request, [rung], catalog) for rung in ladder]
    assert worst_case_cost(request, ladder, catalog) == sum(each)
    tokens = worst_case_input_tokens(request)
    assert each[0] >= paid[0].cost(tokens, 100)


# --- the router's admission --------------------------------------------------------------------------


@dataclass
class Routed:
    router: Any
    book: BudgetBook
    store: FakeStore
    desk: LeaseDesk
    leases: BudgetLeases
    closed: ScriptedBackend


@pytest.fixture
async def routed() -> Any:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    book, store = BudgetBook(), FakeStore()
    desk = LeaseDesk(store)  # type: ignore[arg-type]
    leases = BudgetLeases(desk_call(desk, []))
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router([local, closed], publisher=RecordingPublisher(), policy=policy, budgets=book,
                            leases=leases, attempt_timeout_s=5) as router:  # fmt: skip
        yield Routed(router, book, store, desk, leases, closed)


def paid_request() -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme", workload="faq", messages=[common_pb2.Message(role="user", content="Write a sonnet.")],
        params=common_pb2.GenerationParams(max_tokens=64),
        constraints=router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_CLOSED]),
    )  # fmt: skip


async def test_a_reject_budget_without_headroom_refuses_by_name_before_any_call(routed: Routed) -> None:
    routed.store.rows.append(budget(limit="0.000001"))
    routed.book.apply(state())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await routed.router.Complete(paid_request())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (err.value.details() or "").startswith("daily budget of tenant acme has no headroom for this request")
    assert routed.closed.calls == []


async def test_a_reject_budget_whose_ledger_is_silent_fails_closed(routed: Routed) -> None:
    async def silent(request: ledger_pb2.LeaseRequest) -> ledger_pb2.LeaseReply:
        raise TimeoutError

    routed.leases.call = silent
    routed.book.apply(state())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await routed.router.Complete(paid_request())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert routed.closed.calls == []


async def test_a_local_only_budget_without_headroom_closes_the_paid_tiers(routed: Routed) -> None:
    routed.store.rows.append(budget(limit="0.000001", action="local_only"))
    routed.book.apply(state(action="local_only"))
    ask = router_pb2.CompleteRequest(tenant="acme", workload="faq",
                                     messages=[common_pb2.Message(role="user", content="What is 2 + 2?")])  # fmt: skip
    reply = await routed.router.Complete(ask)
    assert reply.tier == common_pb2.TIER_LOCAL and routed.closed.calls == []
    assert any("no headroom" in e.reason and "paid tiers are closed" in e.reason for e in reply.plan.excluded)


@pytest.mark.parametrize("strict", [False, True])
async def test_a_request_gives_back_what_it_did_not_spend(routed: Routed, strict: bool) -> None:
    routed.store.rows.append(budget(limit="10", strict=strict))
    routed.book.apply(state(strict=strict))
    costs = [D((await routed.router.Complete(paid_request())).total_cost_usd) for _ in range(3)]
    streamed = [c async for c in routed.router.CompleteStream(paid_request())]
    costs.append(D(streamed[-1].final.total_cost_usd))
    assert all(c > 0 for c in costs)
    await routed.leases.give_back_all()
    await asyncio.sleep(0.05)
    [book] = routed.desk.books.books.values()  # type: ignore[union-attr]
    assert book.holdings == {} and book.closed == sum(costs)  # exactly what was billed, counted once


async def test_an_idle_lease_goes_back_and_one_in_use_is_kept_alive() -> None:
    store, now = FakeStore([budget(limit="1")]), [0.0]
    desk = LeaseDesk(store, clock=lambda: now[0])  # type: ignore[arg-type]
    leases = BudgetLeases(desk_call(desk, []), holder="router-1", clock=lambda: now[0], idle_s=60.0)
    hold = await leases.reserve([state()], D("0.01"))
    [book] = desk.books.books.values()  # type: ignore[union-attr]
    now[0] = 20.0  # 10 s of the 30 s lease left, a request still holds part of it: renewed
    await leases.tend()
    assert book.holdings["router-1"].expires_at == 50.0
    leases.settle(hold, D("0.004"))
    now[0] = 100.0  # idle for 60 s and more: given back, what it spent stays counted
    await leases.tend()
    assert book.holdings == {} and book.committed(D(0)) == D("0.004")


async def test_an_embedding_reserves_too_and_a_reject_budget_without_headroom_refuses_it(routed: Routed) -> None:
    routed.store.rows.append(budget(limit="0.000000000001"))
    routed.book.apply(state())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await routed.router.Embed(router_pb2.EmbedRequest(tenant="acme", workload="faq", inputs=["hello"]))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "has no headroom" in (err.value.details() or "")


async def test_a_request_that_ends_by_an_exception_settles_at_nothing_or_at_its_worst_case() -> None:
    desk = LeaseDesk(FakeStore([budget(limit="1")]))  # type: ignore[arg-type]
    leases = BudgetLeases(desk_call(desk, []), holder="router-1")
    holds, lease_ = Holds(leases), None
    for request_id, started, exc, spent in [
        ("never-called", False, RuntimeError(), D(0)),  # refused before any call: all of it back
        ("left", True, asyncio.CancelledError(), None),  # the abandoned call settles it later
        ("failed", True, RuntimeError(), D("0.01")),  # calls made, cost unknown: the worst case
    ]:
        holds.add(request_id, await leases.reserve([state()], D("0.01")))
        lease_ = leases.leases["acme", "", "day"]
        held_before = lease_.held
        if started:
            holds.started(request_id)
        holds.unfinished(request_id, exc)
        if spent is None:
            assert lease_.reserved == D("0.01")
            holds.settle(request_id, "0.002")  # the abandoned call, billed
            spent = D("0.002")
        assert lease_.reserved == 0 and lease_.held == held_before - spent
