"""The integration tests run on either topology (TIERLIFT_TOPOLOGY picks the stacks' default). A
test about one component's own process (its address, its certificate, killing it) has nothing to
address where the request path is one process: it is skipped there, saying so; what such a test
checks of the combined process is in tests/integration/test_topologies.py."""

from __future__ import annotations

import pytest

from tierlift.devstack import Stack


def own_process(stack: Stack, name: str) -> None:
    """Skip unless `name` runs as its own process in `stack`."""
    if name not in stack.procs:
        pytest.skip(f"{name} runs inside the request path's process in the {stack.topology} topology")


def process_of(stack: Stack, name: str) -> str:
    """The process that hosts component `name`: its own, or the combined request path's ("router")."""
    return name if name in stack.procs else "router"
