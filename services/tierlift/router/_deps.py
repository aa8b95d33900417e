"""What a router is made of: its stubs, catalog, publisher, policy and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tierlift.core.catalog import Catalog
from tierlift.router import _events as events
from tierlift.router._budgets import BudgetBook
from tierlift.router._idempotency import MemoryKeys, SingleFlight
from tierlift.router._leases import BudgetLeases
from tierlift.router._policy_source import PolicySource
from tierlift.router._rollouts import RolloutBook
from tierlift.router._shadow import Shadows
from tierlift.v1 import adapter_pb2_grpc, classifier_pb2_grpc


@dataclass(frozen=True)
class RouterDeps:
    classifier: classifier_pb2_grpc.ClassifierStub
    adapters: Mapping[str, adapter_pb2_grpc.ModelAdapterStub]
    catalog: Catalog
    publisher: events.Publisher
    policy: PolicySource
    budgets: BudgetBook = field(default_factory=BudgetBook)
    attempt_timeout_s: float = 60.0
    classifier_timeout_s: float = 2.0
    classification_cache_size: int = 4096
    classification_ttl_s: float = 60.0
    circuit_threshold: int = 5
    circuit_cooldown_s: float = 10.0
    # one execution per idempotency key; production routers share a JetStream bucket
    idempotency: SingleFlight = field(default_factory=lambda: SingleFlight(MemoryKeys()))
    # shadow runs for the workloads whose policy asks for them; None = never
    shadows: Shadows | None = None
    # the rollouts the assessor publishes: each workload's split between control and candidate
    rollouts: RolloutBook = field(default_factory=RolloutBook)
    # reservations of each request's worst case against its budgets (router/_leases.py); None:
    # budgets close tiers only once the ledger says they are exhausted
    leases: BudgetLeases | None = None
    # a stream the caller left is read on this long for the provider's usage, which then replaces
    # the estimate it was billed at (router/_stream_usage.py); 0: never
    late_usage_s: float = 5.0
