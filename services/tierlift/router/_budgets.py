"""What the router knows of budgets: the latest BudgetState per budget, from JetStream. The
router never asks the database per request."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.msg import Msg

from tierlift.core.bus import parse_state
from tierlift.v1 import events_pb2


@dataclass
class BudgetBook:
    states: dict[tuple[str, str, str], events_pb2.BudgetState] = field(default_factory=dict)

    def apply(self, state: events_pb2.BudgetState) -> None:
        """Keep the newest state of each budget: one seen again (a watch that restarted) changes nothing."""
        key = (state.tenant, state.workload, state.period)
        held = self.states.get(key)
        if held is None or state.version >= held.version:
            self.states[key] = state  # a deleted budget's last state ("deleted") closes nothing

    async def on_message(self, msg: Msg) -> None:
        if (state := parse_state(msg, events_pb2.BudgetState)) is not None:
            self.apply(state)

    def covering(self, tenant: str, workload: str) -> list[events_pb2.BudgetState]:
        """Every budget that covers this tenant and workload (a deleted one's last state is none)."""
        return [
            s
            for (t, w, _period), s in sorted(self.states.items())
            if t == tenant and w in ("", workload) and s.state != "deleted"
        ]

    def exhausted(self, tenant: str, workload: str) -> list[events_pb2.BudgetState]:
        """Budgets at their hard limit that cover this tenant and workload."""
        return [
            s
            for (t, w, _period), s in self.states.items()
            if t == tenant and w in ("", workload) and s.state == "hard_exceeded"
        ]


PERIOD_ADJECTIVES = {"day": "daily", "month": "monthly"}  # not "{period}ly": "day" is irregular


def describe(state: events_pb2.BudgetState) -> str:
    scope = f"tenant {state.tenant}" + (f" workload {state.workload}" if state.workload else "")
    period = PERIOD_ADJECTIVES.get(state.period, f"per-{state.period}")
    return f"{period} budget of {scope} is exhausted ({state.spent_usd} of {state.limit_usd} USD)"
