"""What the router knows of budgets: the latest BudgetState per budget, from JetStream. The
router never asks the database per request."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.msg import Msg

from tierlift.core.bus import parse_state
from tierlift.v1 import events_pb2


@dataclass
class BudgetBook:
    """Budgets by tenant, so a request reads its own tenant's few budgets, not every tenant's."""

    by_tenant: dict[str, dict[tuple[str, str], events_pb2.BudgetState]] = field(default_factory=dict)

    @property
    def states(self) -> dict[tuple[str, str, str], events_pb2.BudgetState]:
        """Every budget's newest state, by (tenant, workload, period)."""
        return {(t, w, p): s for t, held in self.by_tenant.items() for (w, p), s in held.items()}

    def apply(self, state: events_pb2.BudgetState) -> None:
        """Keep the newest state of each budget: one seen again (a watch that restarted) changes nothing."""
        held = self.by_tenant.setdefault(state.tenant, {})
        known = held.get((state.workload, state.period))
        if known is None or state.version >= known.version:
            held[state.workload, state.period] = state  # a deleted budget's last state ("deleted") closes nothing

    async def on_message(self, msg: Msg) -> None:
        if (state := parse_state(msg, events_pb2.BudgetState)) is not None:
            self.apply(state)

    def covering(self, tenant: str, workload: str) -> list[events_pb2.BudgetState]:
        """Every budget that covers this tenant and workload (a deleted one's last state is none),
        in (workload, period) order."""
        held = self.by_tenant.get(tenant)
        if not held:
            return []
        return [s for (w, _period), s in sorted(held.items()) if w in ("", workload) and s.state != "deleted"]

    def exhausted(self, tenant: str, workload: str) -> list[events_pb2.BudgetState]:
        """Budgets at their hard limit that cover this tenant and workload."""
        held = self.by_tenant.get(tenant)
        if not held:
            return []
        return [s for (w, _period), s in held.items() if w in ("", workload) and s.state == "hard_exceeded"]


PERIOD_ADJECTIVES = {"day": "daily", "month": "monthly"}  # not "{period}ly": "day" is irregular


def describe(state: events_pb2.BudgetState) -> str:
    scope = f"tenant {state.tenant}" + (f" workload {state.workload}" if state.workload else "")
    period = PERIOD_ADJECTIVES.get(state.period, f"per-{state.period}")
    return f"{period} budget of {scope} is exhausted ({state.spent_usd} of {state.limit_usd} USD)"
