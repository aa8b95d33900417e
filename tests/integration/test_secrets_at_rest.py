"""Nothing secret or personal at rest, after a run in which the provider echoed both the prompt
(a 400 quoting it) and the key it was sent (a 401 quoting it): no log of any process, no row of
the ledger and no byte of the JetStream store holds the provider key, an API key or the prompt
text; and no process but the adapter that calls the provider has the provider key at all."""

from __future__ import annotations

import secrets
from collections import deque
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import tenant_router
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc

# words no detector flags (so the request may reach the provider), distinctive enough to find
PROMPT = "Describe the quarterly migration of the Quarrington sandpiper flock over Lake Vollenhove"
NUMBER = "4417 8823 9901"  # a number in the prompt the provider echoes (not a card: fails Luhn)


def ask(channel: grpc.Channel, text: str) -> grpc.StatusCode:
    request = router_pb2.CompleteRequest(
        tenant="dev", workload="echo", messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=8),
        constraints=router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_CLOSED]),
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as failed:
        router_pb2_grpc.RouterStub(channel).Complete(request, timeout=60)
    return failed.value.code()  # type: ignore[no-any-return]


def test_provider_echoes_of_the_prompt_and_the_key_are_stored_nowhere(tmp_path: Path) -> None:
    provider_key = f"sk-wire-{secrets.token_hex(16)}"
    wire = WireServer(script=deque(["echo"] * 4), served_models=["wire-closed"])
    wire.start()
    (tmp_path / "state").mkdir()
    stack = start_provider_stack(tmp_path / "state", [wire_model("wire-closed", "CLOSED", wire.endpoint, "3.00")],
                                 WIRE_API_KEY=provider_key, TIERLIFT_UPSTREAM_MAX_RETRIES="0")  # fmt: skip
    try:
        with tenant_router(stack) as channel:
            ask(channel, f"{PROMPT}, counting {NUMBER} birds.")  # a 400 that quotes the prompt
            wire.script.clear()
            wire.key = "sk-the-right-one"  # now every call is refused with a 401 that quotes the key sent
            ask(channel, f"{PROMPT}, again.")
        assert any(r.authorization.endswith(provider_key) for r in wire.log)  # the key was sent, and echoed

        environments = {name: Path(f"/proc/{proc.pid}/environ").read_bytes() for name, proc in stack.procs.items()}
    finally:
        stack.stop()
        wire.stop()

    # only the adapter that calls the provider holds its key (combined: the process that hosts it)
    holder = "router" if stack.topology == "combined" else "adapter-"
    for name, environ in environments.items():
        assert (provider_key.encode() in environ) == name.startswith(holder), name

    needles = {"provider key": provider_key, "app key": stack.keys["app"], "admin key": stack.keys["admin"],
               "prompt": "Quarrington sandpiper", "prompt number": NUMBER}  # fmt: skip
    designated = {"keys.json", "nats-users.json"}  # the dev stack's own credential files (0600)
    scanned = 0
    for path in (tmp_path / "state").rglob("*"):
        if not path.is_file() or path.name in designated:
            continue
        data = path.read_bytes()
        scanned += 1
        for what, needle in needles.items():
            assert needle.encode() not in data, f"{what} found in {path.relative_to(tmp_path)}"
    assert scanned > 10  # logs of every process, ledger.db and its journal, the JetStream store
