"""Budget leases: how routers admit requests against a budget without asking the ledger each time,
and without a burst spending past the limit before any router hears it is spent.

A router reserves each request's worst case (router/_leases.py) from a lease: a share of the
budget's headroom that this ledger granted it, renewed as it is spent, given back when the router
stops or idles, and lapsing (`ttl_s`) when it is not renewed. A `strict` budget's router takes a
lease per request, for exactly that request's worst case, and gives back what was not spent when
the request settles: one call to the ledger per request.

The arithmetic, per budget and period (`LeaseBook`), all in exact Decimal USD:

- each holder h has been granted G_h and has given back R_h in all; G_h - R_h is what it may have
  spent or still holds (`committed`); its report of what it still holds unspent (its reservations
  included) is `held_h`; a holder that gave everything back is closed, its G_h - R_h (what it
  spent) kept in `closed`.
- the budget's committed total is max(baseline + closed + sum(G_h - R_h), spent + sum(held_h)),
  where `baseline` is what the store had spent when the book was opened and `spent` what it has
  spent now. The first term counts every dollar a lease could have spent, whether or not its
  event has reached the store yet; the second counts spend that went through no lease.
- a grant never takes the committed total over the limit: headroom = limit - committed, and a
  holder is given at most max(what it needs now, `share` of the headroom), never more than the
  headroom. Headroom below zero (a lowered limit) takes back the unreserved part of a lease.

So spend stays within the limit as long as every paid call goes through a lease and costs at
most what it reserved. The books live in the ledger's key-value bucket (`BucketBooks`), shared by
every ledger replica and kept across restarts. The overspend bound, stated for the README: spend
over a budget's limit is at most the sum of (1) what calls cost beyond their reserved worst case
(a provider that counts more input tokens than router/_leases.py's bound: the prompt's UTF-8
bytes, a per-message allowance and 4,096 tokens an image), (2) when a limit is lowered below
what is already spent and leased, the leases routers hold then, until each next renews (a
strict budget: the reservations in flight then), and (3) paid spend that takes no lease (shadow
runs, capped apart by the policy's shadow budget). With none of these, a budget, strict or not, is not passed; a
strict one also never holds headroom idle in a router's lease.

A lapsed lease's unspent part is not credited back (what it spent since its last report is not
known): it stays committed until no lease of the budget has been live for `settle_s`, when the book
starts again from the store. It costs headroom, never money.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from nats.aio.msg import Msg
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from tierlift.core import money
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import SUBJECT_LEASE
from tierlift.core.logging import get_logger
from tierlift.ledger._budgets import period_start
from tierlift.ledger._store import LedgerStore
from tierlift.v1 import ledger_pb2

log = get_logger(__name__)
D = Decimal
ZERO = Decimal(0)
DEFAULT_TTL_S = 30.0
# A book whose leases have all lapsed or closed this long starts again from the store: longer than
# a request may run, and than the ingest takes to store what the last leases spent.
DEFAULT_SETTLE_S = 600.0
DEFAULT_SHARE = Decimal("0.25")  # of the headroom, the most one grant gives beyond what is needed now


@dataclass
class Holding:
    granted: Decimal = ZERO  # G: all it was ever granted
    returned: Decimal = ZERO  # R: all it gave back unspent
    held: Decimal = ZERO  # unspent, reservations included, as it last said
    reserved: Decimal = ZERO
    expires_at: float = 0.0

    @property
    def committed(self) -> Decimal:
        """What this lease may have spent or still holds."""
        return self.granted - self.returned


@dataclass(frozen=True)
class Grant:
    held: Decimal  # what the holder holds now
    granted: bool  # it holds what it needed
    committed: Decimal  # the budget's committed total after this


@dataclass
class LeaseBook:
    """One budget's leases in one period (see the module's docstring for the arithmetic)."""

    baseline: Decimal  # what the store had spent when the book opened
    touched: float  # when a lease last changed (monotonic seconds)
    closed: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)

    def committed(self, spent: Decimal) -> Decimal:
        leased = self.baseline + self.closed + sum((h.committed for h in self.holdings.values()), ZERO)
        seen = spent + sum((h.held for h in self.holdings.values()), ZERO)
        return max(leased, seen)

    def stale(self, now: float, settle_s: float) -> bool:
        """No lease has been live for `settle_s`: what they spent has reached the store."""
        latest = max((h.expires_at for h in self.holdings.values()), default=self.touched)
        return now > max(latest, self.touched) + settle_s

    def lease(
        self,
        holder: str,
        held: Decimal,
        reserved: Decimal,
        need: Decimal,
        want: Decimal,
        *,
        limit: Decimal,
        spent: Decimal,
        now: float,
        ttl_s: float,
        share: Decimal = DEFAULT_SHARE,
    ) -> Grant:
        """Grant, renew or take back `holder`'s lease. `held`: what it says it holds unspent
        (negative: it spent beyond its lease); `reserved`: of that, in flight; `need`: the least it
        must hold now; `want`: what it would like to hold (below `held`: it gives the rest back;
        0 with nothing reserved closes the lease)."""
        holding = self.holdings.get(holder)
        if holding is None:  # new, or held before this ledger (re)started: its claim stands
            holding = self.holdings[holder] = Holding(granted=max(held, ZERO))
        held = min(held, holding.committed)  # never more than it was granted
        if held < 0:  # its requests cost more than they reserved: count what they spent
            holding.granted -= held
            held = ZERO
        reserved = min(max(reserved, ZERO), held)
        holding.held, holding.reserved = held, reserved
        headroom = limit - self.committed(spent)
        target = self._target(held, reserved, max(need, ZERO), max(want, ZERO), headroom, share)
        if target > held:
            holding.granted += target - held
        else:
            holding.returned += held - target
        holding.held, holding.expires_at, self.touched = target, now + ttl_s, now
        if target == 0:  # given back, or refused with nothing held: what it spent stays counted
            self.closed += holding.committed
            del self.holdings[holder]
        return Grant(held=target, granted=target >= need, committed=self.committed(spent))

    @staticmethod
    def _target(
        held: Decimal, reserved: Decimal, need: Decimal, want: Decimal, headroom: Decimal, share: Decimal
    ) -> Decimal:
        """What the holder holds after this call."""
        if headroom < 0:  # over the limit (a lowered limit): take back what is not reserved, up to the excess
            return max(reserved, min(held + headroom, max(want, need, reserved)))
        if want <= held:  # a renewal that gives back what it no longer wants
            return max(want, reserved)
        extra_need = max(need - held, ZERO)
        if extra_need > headroom:
            return held  # not enough for the request at hand: keep what it holds
        portion = (headroom * share).quantize(money.STORAGE_QUANTUM, rounding=ROUND_DOWN)  # exact on the wire
        extra = min(want - held, max(extra_need, portion), headroom)
        return held + extra


def _usd(value: str, name: str) -> Decimal:
    try:
        amount = money.usd(value or "0")
    except (ValueError, ArithmeticError):
        raise ValueError(f"{name}: {value[:40]!r} is not a decimal USD amount") from None
    if abs(amount) > money.MAX_AMOUNT or amount != money.quantize(amount):
        raise ValueError(f"{name}: {value[:40]!r} is not an amount of at most 12 decimal places")
    return amount


def encode(book: LeaseBook) -> bytes:
    holdings = {
        holder: [str(h.granted), str(h.returned), str(h.held), str(h.reserved), h.expires_at]
        for holder, h in book.holdings.items()
    }
    return json.dumps({"baseline": str(book.baseline), "closed": str(book.closed), "touched": book.touched,
                       "holdings": holdings}).encode()  # fmt: skip


def decode(data: bytes) -> LeaseBook:
    raw = json.loads(data)
    holdings = {
        holder: Holding(D(g), D(r), D(held), D(reserved), float(expires))
        for holder, (g, r, held, reserved, expires) in raw["holdings"].items()
    }
    return LeaseBook(D(raw["baseline"]), float(raw["touched"]), D(raw["closed"]), holdings)


Change = Callable[[LeaseBook | None], tuple[LeaseBook, Grant]]


class MemoryBooks:
    """Books in this process's memory: one ledger, lost when it restarts (tests)."""

    def __init__(self) -> None:
        self.books: dict[str, LeaseBook] = {}

    async def change(self, key: str, change: Change) -> Grant:
        self.books[key], grant = change(self.books.get(key))
        return grant


class BucketBooks:
    """Books in the ledger's key-value bucket (TIERLIFT_BUDGET_LEASES, signed values): every ledger
    replica reads and changes the same book, each change conditional on the revision it read
    (another replica's change in between: read again and redo), and a restart loses nothing."""

    def __init__(self, kv: Any, tries: int = 20) -> None:
        self.kv, self.tries = kv, tries

    async def change(self, key: str, change: Change) -> Grant:
        for _ in range(self.tries):
            try:
                entry = await self.kv.get(key)
                book, revision = decode(entry.value), int(entry.revision)
            except (KeyNotFoundError, KeyDeletedError):
                book, revision = None, 0
            changed, grant = change(book)
            try:
                if revision:
                    await self.kv.update(key, encode(changed), last=revision)
                else:
                    await self.kv.create(key, encode(changed))
            except KeyWrongLastSequenceError:
                continue  # another replica changed the book since it was read
            return grant
        raise RuntimeError(f"lease book {key} changed under every one of {self.tries} tries")


class LeaseDesk:
    """Answers routers' lease requests on SUBJECT_LEASE (a queue group: one ledger replica answers
    each), one budget at a time in this replica (a lock each), from the budget's row, what the
    store has spent and the budget's book (`BucketBooks`: shared by the replicas)."""

    def __init__(
        self,
        store: LedgerStore,
        books: MemoryBooks | BucketBooks | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        settle_s: float = DEFAULT_SETTLE_S,
        share: Decimal = DEFAULT_SHARE,
        clock: Callable[[], float] = time.time,  # wall time: replicas compare each other's expiries
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.books = store, books if books is not None else MemoryBooks()
        self.ttl_s, self.settle_s, self.share = ttl_s, settle_s, share
        self.clock, self.wall = clock, wall
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._subscription: Any = None
        self._replying: set[asyncio.Task[None]] = set()

    async def start(self, bus: EventBus) -> None:
        self._subscription = await bus.nc.subscribe(SUBJECT_LEASE, queue="ledger", cb=self._on_request)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        if self._replying:  # answers already being made go out
            await asyncio.gather(*self._replying, return_exceptions=True)

    async def _on_request(self, msg: Msg) -> None:
        """Each request in a task of its own: NATS hands a subscription's messages over one at a
        time, and one budget's store reads must not hold up another's (each budget's lock keeps
        its own requests in order)."""
        task = asyncio.create_task(self._reply(msg))
        self._replying.add(task)
        task.add_done_callback(self._replying.discard)

    async def _reply(self, msg: Msg) -> None:
        request = ledger_pb2.LeaseRequest()
        try:
            request.ParseFromString(msg.data)
            reply = await self.answer(request)
        except Exception as exc:  # a reply that says so beats a router waiting out its timeout
            log.warning("lease_request_failed", error=repr(exc))
            reply = ledger_pb2.LeaseReply(error=str(exc)[:200] or exc.__class__.__name__)
        try:
            await msg.respond(reply.SerializeToString())
        except Exception as exc:  # the router times out and fails closed; a grant it never heard of lapses
            log.warning("lease_reply_lost", error=repr(exc))

    async def answer(self, request: ledger_pb2.LeaseRequest) -> ledger_pb2.LeaseReply:
        held, reserved = _usd(request.held_usd, "held_usd"), _usd(request.reserved_usd, "reserved_usd")
        need, want = _usd(request.need_usd, "need_usd"), _usd(request.want_usd, "want_usd")
        if not request.holder or len(request.holder) > 128:
            raise ValueError("holder: 1 to 128 characters")
        key = (request.tenant, request.workload, request.period)
        async with self._locks.setdefault(key, asyncio.Lock()):
            budget = await asyncio.to_thread(self._budget, *key)
            if budget is None:
                return ledger_pb2.LeaseReply(no_budget=True, held_usd=money.to_wire(ZERO), granted=True)
            start = period_start(budget["period"], self.wall())
            spent = await asyncio.to_thread(self.store.spent_since, budget["tenant"], budget["workload"], start)
            limit: Decimal = budget["limit_usd"]
            now = self.clock()

            def change(book: LeaseBook | None) -> tuple[LeaseBook, Grant]:
                if book is None or book.stale(now, self.settle_s):  # a new period, or all leases long gone
                    book = LeaseBook(baseline=spent, touched=now)
                grant = book.lease(request.holder, held, reserved, need, want, limit=limit, spent=spent, now=now,
                                   ttl_s=self.ttl_s, share=self.share)  # fmt: skip
                return book, grant

            book_key = f"{budget['tenant']}.{budget['workload'] or '_all'}.{budget['period']}.{start.isoformat()}"
            grant = await self.books.change(book_key, change)
        if not grant.granted:
            log.info("lease_refused", tenant=request.tenant, workload=request.workload, period=request.period,
                     need_usd=money.to_wire(need), committed_usd=money.to_wire(grant.committed),
                     limit_usd=money.to_wire(limit))  # fmt: skip
        return ledger_pb2.LeaseReply(
            held_usd=money.to_wire(grant.held),
            granted=grant.granted,
            ttl_s=self.ttl_s,
            limit_usd=money.to_wire(limit),
            committed_usd=money.to_wire(grant.committed),
            strict=bool(budget.get("strict", False)),
            period_start=start.isoformat(),
        )

    def _budget(self, tenant: str, workload: str, period: str) -> dict[str, Any] | None:
        rows = self.store.budgets(tenant) if tenant else []
        return next((r for r in rows if r["workload"] == workload and r["period"] == period), None)
