"""`tierlift up` with providers from the environment, as a new user runs it: a local
OpenAI-compatible server (the wire server, reached through the openai SDK) stands in for the
closed tier via OPENAI_API_KEY and OPENAI_BASE_URL, a wrong Anthropic key is refused by its
server, and `tierlift ask` shows a low-confidence local answer escalating, both attempts priced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.wire.server import WireServer
from tierlift.cli import main
from tierlift.core.catalog import tier_name
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.deployment import Deployment, probe_provider
from tierlift.devstack import Stack, free_port, stack_from_environment
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

POLICY = DEFAULT_CATALOG.parent.parent / "policy" / "dev.yaml"
# Gemma 3 270M answers this with confidence ~0.24 (greedy decoding, so the same every run)
HARD_QUESTION = "Who wrote the novel Middlemarch?"


@pytest.fixture(scope="module")
def openai_server() -> Iterator[WireServer]:
    server = WireServer(served_models=["qwen2.5-0.5b-instruct"], key="sk-local")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[WireServer]:
    server = WireServer(protocol="anthropic", served_models=["claude-haiku-4-5"], key="sk-ant-right")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def up(
    openai_server: WireServer, anthropic_server: WireServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Deployment]]:
    state = Path(tmp_path_factory.mktemp("up"))
    # the dev policy with a stricter bar, so the local answer's ~0.24 is well below it
    policy = yaml.safe_load(POLICY.read_text()) | {"version": "test-up", "confidence_threshold": 0.5}
    (state / "policy.yaml").write_text(yaml.safe_dump(policy))
    env = {
        "OPENAI_API_KEY": "sk-local",
        "OPENAI_BASE_URL": openai_server.endpoint,
        "ANTHROPIC_API_KEY": "sk-ant-wrong",
        "ANTHROPIC_BASE_URL": anthropic_server.endpoint,
    }
    stack, deployment = stack_from_environment(
        state / "stack", DEFAULT_CATALOG, env, probe_provider, policy_path=state / "policy.yaml"
    )
    stack.start()
    yield stack, deployment
    stack.stop()


def ask(stack: Stack, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert (
        main(["ask", *args, "--router", stack.addrs["router"], "--key", stack.keys["app"], "--max-tokens", "16"]) == 0
    )
    return capsys.readouterr().out


def test_banner_lists_what_was_deployed_and_why_the_rest_was_not(up: tuple[Stack, Deployment]) -> None:
    _, deployment = up
    deployed = {d.model.id: d.note for d in deployment.deployed}
    skipped = {s.model.id: s.reason for s in deployment.skipped}
    # the embedding models too: MiniLM's static vectors in the llama.cpp adapter, OpenAI's through the stand-in
    chat, embedding = {"gemma-3-270m-cpu", "gpt-5-mini", "gpt-5"}, {"minilm-l6-static-cpu", "text-embedding-3-small"}
    assert set(deployed) == chat | embedding
    assert deployed["gpt-5-mini"] == 'served as "qwen2.5-0.5b-instruct" by OPENAI_BASE_URL (priced as gpt-5-mini)'
    assert skipped["claude-haiku-4-5"].startswith("key rejected by") and "HTTP 401" in skipped["claude-haiku-4-5"]
    assert skipped["llama-3.3-70b-instruct-together"] == "no key: set TOGETHER_API_KEY"
    assert "no endpoint" in skipped["llama-3.1-8b-instruct-vllm"]


def test_low_confidence_local_answer_escalates_to_the_closed_tier_and_both_are_priced(
    up: tuple[Stack, Deployment], openai_server: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _ = up
    calls = len(openai_server.log)
    out = ask(stack, capsys, HARD_QUESTION)
    lines = [line.strip() for line in out.splitlines()]
    local = next(line for line in lines if line.startswith("attempt 0: LOCAL/gemma-3-270m-cpu LOW_CONFIDENCE"))
    closed = next(line for line in lines if line.startswith("attempt 1: CLOSED/gpt-5-mini ANSWERED"))
    for line in (local, closed):
        assert "confidence 0." in line and " ms " in line and "cost 0.0" in line
    assert "< threshold 0.500: escalating" in out
    # the stand-in server got the request under the model it serves
    assert [r.body["model"] for r in openai_server.log[calls:]] == ["qwen2.5-0.5b-instruct"]
    request_id = next(line for line in lines if line.startswith("--")).split("request ")[1]

    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while len(rows := ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id)).attempts) < 2:
            assert time.monotonic() < deadline, "the ledger did not record both attempts"
            time.sleep(0.1)
    assert [(tier_name(r.tier), r.model) for r in rows] == [("LOCAL", "gemma-3-270m-cpu"), ("CLOSED", "gpt-5-mini")]
    printed = [line.split("cost ")[1].split(" USD")[0] for line in (local, closed)]
    assert [Decimal(r.cost_usd) for r in rows] == [Decimal(c) for c in printed]
    assert all(Decimal(c) > 0 for c in printed)


def test_regulated_prompt_stays_local(
    up: tuple[Stack, Deployment], openai_server: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _ = up
    calls = len(openai_server.log)
    out = ask(stack, capsys, "Patient Jane Roe, DOB 03/04/1961, has HIV. Who wrote Middlemarch?")
    assert "CLOSED" not in out and "attempt 0: LOCAL/gemma-3-270m-cpu" in out
    assert len(openai_server.log) == calls


def test_allowed_tiers_restrict_the_ladder(
    up: tuple[Stack, Deployment], openai_server: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _ = up
    out = ask(stack, capsys, "What is the capital of France?", "--tiers", "closed")
    attempts = [line.strip() for line in out.splitlines() if line.strip().startswith("attempt")]
    assert len(attempts) == 1 and attempts[0].startswith("attempt 0: CLOSED/gpt-5-mini ANSWERED")
    calls = len(openai_server.log)
    out = ask(stack, capsys, HARD_QUESTION, "--tiers", "local")
    assert "CLOSED" not in out and len(openai_server.log) == calls


def test_ask_streams_the_answer_then_the_story(
    up: tuple[Stack, Deployment], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, _ = up
    out = ask(stack, capsys, "What is the capital of France?", "--stream", "--tiers", "closed")
    assert out.startswith("The answer is 42.\n")
    assert "attempt 0: CLOSED/gpt-5-mini ANSWERED" in out


def test_probe_tells_a_rejected_key_from_an_unreachable_server(openai_server: WireServer) -> None:
    assert probe_provider("openai", openai_server.endpoint, "sk-local").served == ("qwen2.5-0.5b-instruct",)
    rejected = probe_provider("openai", openai_server.endpoint, "sk-wrong")
    assert rejected.problem == f"key rejected by {openai_server.endpoint} (HTTP 401)"
    unreachable = probe_provider("openai", f"http://127.0.0.1:{free_port()}/v1", "sk-local", timeout_s=2)
    assert unreachable.problem.startswith("cannot reach")


def test_the_gemini_probe_lists_models_and_tells_a_rejected_key_through_google_genai() -> None:
    server = WireServer(protocol="gemini", served_models=["gemini-2.5-flash"], key="gm-right")
    server.start()
    try:
        assert probe_provider("gemini", server.endpoint, "gm-right").served == ("gemini-2.5-flash",)
        # the Gemini API refuses a bad key with 400 API_KEY_INVALID, not 401
        assert probe_provider("gemini", server.endpoint, "gm-wrong").problem == (
            f"key rejected by {server.endpoint} (HTTP 400)"
        )
    finally:
        server.stop()
    unreachable = probe_provider("gemini", f"http://127.0.0.1:{free_port()}", "gm-right", timeout_s=2)
    assert unreachable.problem.startswith("cannot reach")
