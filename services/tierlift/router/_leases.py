"""Budget reservations at admission: each request reserves its worst-case cost against every
budget that covers it before any provider is called, and gives back what it did not spend when it
settles. The ledger grants the money (ledger/_leases.py, which states the overspend bound):

- a budget that is not `strict`: from this router's lease, a share of the budget's headroom that
  the ledger grants it over NATS (request/reply on tierlift-rpc.budget.lease), renewed when a
  request needs more than is left and kept alive while requests hold part of it, given back when
  it has idled for `idle_s` and when the router stops, and lapsing if the router dies. Most
  requests reserve without a call to the ledger.
- a `strict` budget: a lease per request, for exactly its worst case, given back (less what it
  cost) when it settles: one call to the ledger per request, and spend never passes the limit.

The worst case of a request is the sum, over every rung of its ladder, of the most that rung can
bill: each rung may be called (a low-confidence answer escalates, and a fault may still be billed),
so a max over rungs would not hold. A rung's most is its input bound at the model's dearest input
price (a cache write costs more than plain input) plus its output bound at the dearest output price
(reasoning included):

- input: the UTF-8 bytes of everything sent (messages, tool calls and definitions, schemas: the
  protobuf's size, which is more), as no tokenizer makes more tokens than bytes, plus
  MESSAGE_TOKENS per message and REQUEST_TOKENS for the template around them, and IMAGE_TOKENS for
  each image instead of its URL's bytes.
- output: max_tokens, or UNSET_MAX_TOKENS when the request sets none: what every adapter then asks
  the provider for (adapters/*: DEFAULT_MAX_TOKENS, llama.cpp less).

An embedding request reserves its inputs alone (Router.Embed), the same way.

When no reservation can be had the budget's action applies, as for an exhausted budget: `reject`
fails the request with RESOURCE_EXHAUSTED naming the budget; `local_only` closes the paid tiers
(the LOCAL tier still serves). When the ledger does not answer, both fail closed, as no money is
spent without a lease: `reject` fails the request with UNAVAILABLE (retry), `local_only` closes
the paid tiers. A request that the router's lease already covers never waits on the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from tierlift.core import money, pricing
from tierlift.core.bus_layout import SUBJECT_LEASE
from tierlift.core.catalog import Catalog
from tierlift.core.logging import get_logger
from tierlift.router._budgets import PERIOD_ADJECTIVES
from tierlift.v1 import events_pb2, ledger_pb2, router_pb2

log = get_logger(__name__)
ZERO = Decimal(0)
UNSET_MAX_TOKENS = 512  # the adapters' DEFAULT_MAX_TOKENS (tests/unit/test_leases.py checks it)
MESSAGE_TOKENS = 16  # a chat template's tokens around each message (role, separators)
REQUEST_TOKENS = 64  # and around the whole prompt (system preamble, the assistant's turn)
IMAGE_TOKENS = 4096  # an image part, whatever its size (the providers bill ~85 to ~1,600)
# a reservation rounds up to the stored quantum, plus one quantum per kind the ledger rounds apart
_SLACK = money.STORAGE_QUANTUM * len(pricing.KINDS)
LEASE_REQUESTS = 16  # a renewal asks for this many more requests' worth (the ledger caps it)
LEASE_TIMEOUT_S = 2.0
DEFAULT_IDLE_S = 60.0

Key = tuple[str, str, str]  # tenant, workload ("" = all), period
LeaseCall = Callable[[ledger_pb2.LeaseRequest], Awaitable[ledger_pb2.LeaseReply]]


def worst_case_input_tokens(request: router_pb2.CompleteRequest) -> int:
    images = [p for m in request.messages for p in m.parts if p.type == "image_url"]
    sent = sum(m.ByteSize() for m in request.messages) + request.params.ByteSize()
    sent -= sum(len(p.image_url.encode()) for p in images)
    return sent + MESSAGE_TOKENS * len(request.messages) + REQUEST_TOKENS + IMAGE_TOKENS * len(images)


def worst_case_cost(
    request: router_pb2.CompleteRequest, ladder: Iterable[router_pb2.Rung], catalog: Catalog, outputs: bool = True
) -> Decimal:
    """The most the request can be billed if every rung of `ladder` is called (see the module);
    `outputs`: False for an embedding, which bills its inputs only."""
    input_tokens = Decimal(worst_case_input_tokens(request))
    output_tokens = Decimal(request.params.max_tokens or UNSET_MAX_TOKENS) if outputs else ZERO
    total = ZERO
    for rung in ladder:
        model = catalog.get(rung.model)
        if model is None:
            continue
        prices = model.price.per_million
        most_in = max(prices[kind] for kind in pricing.INPUT_KINDS)
        most_out = max(prices[kind] for kind in pricing.OUTPUT_KINDS)
        total += (input_tokens * most_in + output_tokens * most_out) / money.MILLION + _SLACK
    return total.quantize(money.STORAGE_QUANTUM, rounding=ROUND_CEILING)


def scope(state: events_pb2.BudgetState) -> str:
    who = f"tenant {state.tenant}" + (f" workload {state.workload}" if state.workload else "")
    return f"{PERIOD_ADJECTIVES.get(state.period, state.period)} budget of {who}"


class NoReservation(Exception):
    """A budget could not reserve the request's worst case: its action applies."""

    def __init__(self, state: events_pb2.BudgetState, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.state, self.unavailable = state, unavailable


@dataclass(eq=False)
class Lease:
    """This router's lease on one budget (or, for a strict budget, one request's)."""

    holder: str
    key: Key
    held: Decimal = ZERO  # granted and not spent; reservations included
    reserved: Decimal = ZERO  # by requests in flight
    expires_at: float = 0.0  # monotonic; past it, nothing more is reserved from it unasked
    ttl_s: float = 0.0  # as the ledger last gave it
    last_used: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    asking: bool = False
    drift: Decimal = ZERO  # spent while a call was out: the reply's held does not know it yet

    def free(self, now: float) -> Decimal:
        return self.held - self.reserved if now < self.expires_at else ZERO

    def spend(self, reserved: Decimal, cost: Decimal) -> None:
        self.held -= cost
        self.reserved -= reserved
        if self.asking:
            self.drift += cost


@dataclass(eq=False)
class Hold:
    """One request's reservations: `amount` on each lease; settled once."""

    amount: Decimal
    leases: list[Lease] = field(default_factory=list)
    strict: list[Lease] = field(default_factory=list)  # of `leases`, given back at settlement
    settled: bool = False
    started: bool = False  # a provider may have been called: an unknown cost is the worst case


def nats_lease_call(nc: object, timeout_s: float = LEASE_TIMEOUT_S) -> LeaseCall:
    """Ask the ledger over NATS; raises whatever the client raises (timeout, no responders)."""

    async def call(request: ledger_pb2.LeaseRequest) -> ledger_pb2.LeaseReply:
        msg = await nc.request(SUBJECT_LEASE, request.SerializeToString(), timeout=timeout_s)  # type: ignore[attr-defined]
        reply = ledger_pb2.LeaseReply()
        reply.ParseFromString(msg.data)
        return reply

    return call


class BudgetLeases:
    def __init__(
        self,
        call: LeaseCall,
        holder: str = "",
        clock: Callable[[], float] = time.monotonic,
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self.call, self.clock, self.idle_s = call, clock, idle_s
        self.holder = holder or f"router-{uuid.uuid4().hex[:12]}"
        self.leases: dict[Key, Lease] = {}
        self.strict_open: set[Lease] = set()
        self._returns: set[asyncio.Task[None]] = set()

    async def reserve(self, states: Sequence[events_pb2.BudgetState], amount: Decimal) -> Hold:
        """Reserve `amount` on every budget in `states`; NoReservation names the first that
        could not, and nothing stays reserved then."""
        hold = Hold(amount)
        try:
            for state in states:
                await self._reserve(state, amount, hold)
        except BaseException:
            self.settle(hold, ZERO)
            raise
        return hold

    async def _reserve(self, state: events_pb2.BudgetState, amount: Decimal, hold: Hold) -> None:
        key = (state.tenant, state.workload, state.period)
        if state.strict:
            lease = Lease(f"{self.holder}/{uuid.uuid4().hex}", key)
            if await self._ask(lease, state, amount, amount, amount):
                hold.leases.append(lease)
                hold.strict.append(lease)
                self.strict_open.add(lease)
            return
        lease = self.leases.setdefault(key, Lease(self.holder, key))
        async with lease.lock:
            now = self.clock()
            if lease.free(now) >= amount:
                lease.reserved += amount
                lease.last_used = now
                hold.leases.append(lease)
                return
            need = lease.reserved + amount
            if await self._ask(lease, state, amount, need, need + amount * LEASE_REQUESTS):
                hold.leases.append(lease)

    async def _ask(self, lease: Lease, state: events_pb2.BudgetState, amount: Decimal, need: Decimal,
                   want: Decimal) -> bool:  # fmt: skip
        """Renew `lease` to hold `need` (wishing for `want`) and reserve `amount` of it; False:
        the budget is gone, nothing to reserve."""
        sent = self.clock()
        reply = await self._call(lease, need, want, state)
        if reply.no_budget:
            return False
        if not reply.granted:
            raise NoReservation(
                state,
                f"{scope(state)} has no headroom for this request: its worst case is {money.to_wire(amount)} USD "
                f"and {reply.committed_usd} of {reply.limit_usd} USD is spent or reserved",
            )
        lease.reserved += amount
        lease.expires_at, lease.ttl_s = sent + reply.ttl_s, reply.ttl_s
        lease.last_used = sent
        return True

    async def _call(
        self, lease: Lease, need: Decimal, want: Decimal, state: events_pb2.BudgetState | None = None
    ) -> ledger_pb2.LeaseReply:
        tenant, workload, period = lease.key
        request = ledger_pb2.LeaseRequest(
            holder=lease.holder, tenant=tenant, workload=workload, period=period,
            held_usd=money.to_wire(lease.held), reserved_usd=money.to_wire(lease.reserved),
            need_usd=money.to_wire(need), want_usd=money.to_wire(want),
        )  # fmt: skip
        lease.asking, lease.drift = True, ZERO
        try:
            reply = await self.call(request)
        except Exception as exc:
            log.warning("budget_lease_unavailable", tenant=tenant, workload=workload, period=period, error=repr(exc))
            raise self._unavailable(state, lease, exc.__class__.__name__) from None
        finally:
            lease.asking = False
        if reply.error:
            raise self._unavailable(state, lease, reply.error)
        if not reply.no_budget:
            lease.held = money.usd(reply.held_usd) - lease.drift
        return reply

    @staticmethod
    def _unavailable(state: events_pb2.BudgetState | None, lease: Lease, why: str) -> NoReservation:
        state = state or events_pb2.BudgetState(tenant=lease.key[0], workload=lease.key[1], period=lease.key[2])
        message = f"{scope(state)}: the ledger did not grant a reservation ({why}); nothing was spent, retry"
        return NoReservation(state, message, unavailable=True)

    def settle(self, hold: Hold, cost: Decimal | None) -> None:
        """The request is over and cost `cost` (None: unknown, counted at its worst case): what it
        did not spend goes back to the leases; a strict lease goes back to the ledger."""
        if hold.settled:
            return
        hold.settled = True
        spent = hold.amount if cost is None else cost
        now = self.clock()
        for lease in hold.leases:
            lease.spend(hold.amount, spent)
            lease.last_used = now
        for lease in hold.strict:
            self.strict_open.discard(lease)
            self._in_background(self._give_back(lease))

    async def _give_back(self, lease: Lease) -> None:
        try:
            await self._call(lease, ZERO, ZERO)
        except NoReservation as exc:  # it lapses at the ledger instead: headroom lost, never money
            log.warning("budget_lease_not_returned", holder=lease.holder, error=str(exc))

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    async def tend(self) -> None:
        """Keep alive the leases requests still hold part of; give back those idle for idle_s."""
        now = self.clock()
        for lease in [*self.leases.values(), *self.strict_open]:
            if lease.lock.locked():
                continue
            async with lease.lock:
                try:
                    if lease.reserved > 0 and lease.expires_at - now < lease.ttl_s / 2:
                        reply = await self._call(lease, ZERO, lease.held)
                        lease.expires_at, lease.ttl_s = now + reply.ttl_s, reply.ttl_s
                    elif lease.reserved <= 0 and lease.held > 0 and now - lease.last_used > self.idle_s:
                        await self._call(lease, ZERO, ZERO)
                        lease.expires_at = 0.0
                except NoReservation:
                    pass  # logged; tried again next time

    async def tend_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.tend()
            except Exception:
                log.exception("budget_lease_tending_failed")

    async def give_back_all(self) -> None:
        """At shutdown: every lease back to the ledger (reservations still out stay counted)."""
        if self._returns:
            await asyncio.gather(*self._returns, return_exceptions=True)
        for lease in self.leases.values():  # each one closed, an empty one too (what it spent stays counted)
            with contextlib.suppress(NoReservation):  # logged; it lapses at the ledger
                await self._call(lease, ZERO, ZERO)


class Holds:
    """A router's requests in flight and their reservations, by request id, each settled once."""

    def __init__(self, leases: BudgetLeases | None) -> None:
        self.leases = leases
        self._holds: dict[str, Hold] = {}

    def add(self, request_id: str, hold: Hold) -> None:
        self._holds[request_id] = hold

    def started(self, request_id: str) -> None:
        """A provider may be called from now on."""
        if (hold := self._holds.get(request_id)) is not None:
            hold.started = True

    def settle(self, request_id: str, total_usd: str | None) -> None:
        """The request's reservations released, less what it cost (None: unknown, its worst case)."""
        hold = self._holds.pop(request_id, None)
        if hold is not None and self.leases is not None:
            self.leases.settle(hold, None if total_usd is None else money.usd(total_usd))

    def unfinished(self, request_id: str, exc: BaseException) -> None:
        """A request that ended by an exception: nothing was called yet (released whole), the caller
        left mid-ladder (the router's `_abandoned` settles once the call in flight is billed), or an
        error after calls whose cost is not known (counted at the worst case)."""
        hold = self._holds.get(request_id)
        if hold is None:
            return
        if not hold.started:
            self.settle(request_id, "0")
        elif not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self.settle(request_id, None)
