"""The router service: the front door. Classifies, plans the ladder, calls adapters,
escalates on low confidence, falls back on faults, and publishes every attempt."""

from tierlift.router._deps import RouterDeps
from tierlift.router._policy import Policy, build_plan
from tierlift.router._servicer import RouterServicer, request_id_for
from tierlift.router._validation import InvalidRequest, validate

__all__ = [
    "InvalidRequest",
    "Policy",
    "RouterDeps",
    "RouterServicer",
    "build_plan",
    "request_id_for",
    "validate",
]
