"""The `tierlift` command's rough edges as a new user meets them: a second `up` on one state
folder, flags that take nonsense, unknown ids, and the environment variables it reads."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from tierlift import cli
from tierlift.cli import _connect, quality, stack
from tierlift.devstack import LOCK_FILE, STATE_FILE, lock_state_dir
from tierlift.v1 import ledger_pb2, router_pb2


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setattr(_connect, "STATE_DIR", state)
    return state


def test_a_second_up_on_one_state_folder_names_the_running_stack_and_touches_nothing(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def second_stack(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a second stack was planned in a folder another stack holds")

    monkeypatch.setattr(stack, "stack_from_environment", second_stack)
    first = lock_state_dir(state_dir)  # the first `tierlift up`
    addrs = {"nats": "nats://127.0.0.1:4222", "router": "127.0.0.1:50051", "ledger": "127.0.0.1:50052"}
    (state_dir / STATE_FILE).write_text(json.dumps(addrs))
    try:
        assert cli.main(["up"]) == 1
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and "router 127.0.0.1:50051" in err and "ledger 127.0.0.1:50052" in err
        assert json.loads((state_dir / STATE_FILE).read_text()) == addrs
        assert (state_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert not (state_dir / "nats.conf").exists() and not (state_dir / "catalog.yaml").exists()
    finally:
        first.close()
    lock_state_dir(state_dir).close()  # the first stack gone, the folder is free again


def _helps(parser: argparse.ArgumentParser) -> list[str]:
    """The --help text of a parser and of every subcommand under it."""
    children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser.format_help(), *(h for a in children for child in a.choices.values() for h in _helps(child))]


def test_no_help_text_names_the_old_address_variables() -> None:
    """`calibrate --ledger` still told people to set TIERLIFT_LEDGER_ADDR, a name the CLI warns about."""
    helps = _helps(cli._parser())
    assert len(helps) > 20
    assert [h.splitlines()[0] for h in helps if re.search(r"TIERLIFT_(ROUTER|LEDGER|ASSESSOR)_ADDR\b", h)] == []
    assert any("TIERLIFT_LEDGER_ADDRESS" in h for h in helps if h.startswith("usage: tierlift calibrate"))


class EmptyLedger:
    """A ledger with no traffic in it."""

    def GetReport(self, query: ledger_pb2.SpendQuery, timeout: float) -> ledger_pb2.Report:
        return ledger_pb2.Report()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--tokens-per-day", "-5"), ("--tokens-per-day", "0"), ("--input-share", "1.5"), ("--peak-factor", "x"),
     ("--ops-rate", "-1"), ("--min-replicas", "-2"), ("--tokens-per-request", "0")],
)  # fmt: skip
def test_advise_refuses_nonsense_numbers_naming_the_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["advise", flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: " in capsys.readouterr().err


def test_advise_on_a_workload_without_traffic_is_an_error_not_a_recommendation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_ledger", lambda _args: EmptyLedger())
    assert cli.main(["advise", "--workload", "nosuch"]) == 2
    captured = capsys.readouterr()
    assert "recommendation" not in captured.out
    assert captured.err.startswith("tierlift: --workload nosuch: no traffic in the ledger")
    # a what-if needs no traffic: it is advice at the flags' volume and mix
    assert cli.main(["advise", "--workload", "nosuch", "--tokens-per-day", "5000000"]) == 0
    out = capsys.readouterr().out
    assert "what if: 5,000,000 tokens/day" in out and "recommendation: " in out and "-0.00" not in out


@pytest.mark.parametrize("service", ["router", "ledger", "assessor"])
def test_the_cli_reads_the_clients_address_variables_and_warns_on_the_old_names(
    service: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new = {"router": "TIERLIFT_ADDRESS", "ledger": "TIERLIFT_LEDGER_ADDRESS", "assessor": "TIERLIFT_ASSESSOR_ADDRESS"}
    old = f"TIERLIFT_{service.upper()}_ADDR"
    monkeypatch.delenv(new[service], raising=False)
    monkeypatch.setenv(old, "127.0.0.1:7001")
    assert _connect.address(None, service) == "127.0.0.1:7001"
    assert capsys.readouterr().err == f"tierlift: warning: {old} is deprecated: set {new[service]} instead\n"
    monkeypatch.setenv(new[service], "127.0.0.1:7002")
    assert _connect.address(None, service) == "127.0.0.1:7002" and capsys.readouterr().err == ""
    assert _connect.address("127.0.0.1:7003", service) == "127.0.0.1:7003"  # the flag wins


class AttemptLedger:
    """A ledger holding the attempts of the requests it was given."""

    def __init__(self, *known: str) -> None:
        self.known = known

    def ListAttempts(self, query: ledger_pb2.AttemptQuery, timeout: float) -> ledger_pb2.AttemptList:
        if query.request_id not in self.known:
            return ledger_pb2.AttemptList()
        return ledger_pb2.AttemptList(attempts=[ledger_pb2.LedgerAttempt(request_id=query.request_id)])


class FeedbackRouter:
    def __init__(self) -> None:
        self.seen: list[router_pb2.FeedbackRequest] = []

    def Feedback(self, request: router_pb2.FeedbackRequest, timeout: float) -> router_pb2.FeedbackAck:
        self.seen.append(request)
        return router_pb2.FeedbackAck(event_id="feedback.1")


KNOWN = "6f1c7a52-3d1e-4d4b-9d0e-2a51b4f0c111"


def test_feedback_on_a_request_the_ledger_does_not_hold_is_not_found_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(quality, "LEDGER_LAG_S", 0.0)
    router = FeedbackRouter()
    args = cli._parser().parse_args(["feedback", "00000000-0000-0000-0000-000000000000", "good"])
    assert quality.cmd_feedback(args, lambda _a: router, lambda _a: AttemptLedger(KNOWN)) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("tierlift: NOT_FOUND: request_id: the ledger has no request 00000000-")
    assert "recorded" not in captured.out and not router.seen
    args = cli._parser().parse_args(["feedback", KNOWN, "good"])
    assert quality.cmd_feedback(args, lambda _a: router, lambda _a: AttemptLedger(KNOWN)) == 0
    assert capsys.readouterr().out == "recorded feedback.1\n" and router.seen[0].request_id == KNOWN


@pytest.mark.parametrize("request_id", ["notauuid", "6f1c7a52", f"{{{KNOWN}}}", KNOWN.replace("-", "")])
def test_feedback_on_something_that_is_no_request_id_is_refused_naming_it_before_any_call(
    request_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tierlift feedback notauuid good` went to the router (and, before the router checked, was
    "recorded"); it needs no stack to know that is no request id."""
    monkeypatch.setattr(cli, "_router", lambda _args: pytest.fail("the router was called"))
    monkeypatch.setattr(cli, "_ledger", lambda _args: pytest.fail("the ledger was called"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["feedback", request_id, "good"])
    assert exit_.value.code == 2
    assert f"argument request_id: {request_id!r} is not a request id" in capsys.readouterr().err


def test_feedback_goes_to_the_router_when_the_ledger_may_not_be_asked(capsys: pytest.CaptureFixture[str]) -> None:
    class Refusing:
        def ListAttempts(self, query: ledger_pb2.AttemptQuery, timeout: float) -> None:
            raise Denied()

    class Denied(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.PERMISSION_DENIED  # an app key reads no ledger

    router = FeedbackRouter()
    args = cli._parser().parse_args(["feedback", KNOWN, "bad"])
    assert quality.cmd_feedback(args, lambda _a: router, lambda _a: Refusing()) == 0
    assert router.seen and capsys.readouterr().out == "recorded feedback.1\n"


class AdminLedger:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def DeleteBudget(self, budget: ledger_pb2.Budget, timeout: float) -> ledger_pb2.Budget:
        self.calls.append(budget)
        return ledger_pb2.Budget(tenant=budget.tenant, period=budget.period, limit_usd="5", spent_usd="1",
                                 action="reject")  # fmt: skip

    def RotateKey(self, rotation: ledger_pb2.KeyRotation, timeout: float) -> ledger_pb2.CreatedKey:
        self.calls.append(rotation)
        return ledger_pb2.CreatedKey(key=ledger_pb2.ApiKey(key_id="newid"), secret="tl_newid_s3cret")


def test_budget_delete_and_keys_rotate_call_the_ledger(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = AdminLedger()
    monkeypatch.setattr(cli, "_ledger", lambda _args: admin)
    assert cli.main(["budget", "delete", "--tenant", "acme", "--period", "day"]) == 0
    assert admin.calls[-1] == ledger_pb2.Budget(tenant="acme", period="day")
    assert capsys.readouterr().out.startswith("deleted the day budget of acme (all workloads): 1 of 5 USD")
    assert cli.main(["keys", "rotate", "oldid", "--grace", "2h"]) == 0
    assert admin.calls[-1] == ledger_pb2.KeyRotation(key_id="oldid", grace_s=7200)
    assert capsys.readouterr().out.startswith("tl_newid_s3cret\n(shown once: store it now) key id newid replaces oldid")
    for argv, problem in ((["keys", "rotate"], "keys rotate: name the key id"),
                          (["keys", "rotate", "oldid", "--grace", "0s"], "--grace: at least 1s"),
                          (["budget", "delete"], "--tenant: budget delete needs the tenant")):  # fmt: skip
        assert cli.main(argv) == 2
        assert capsys.readouterr().err.startswith(f"tierlift: {problem}")
    assert len(admin.calls) == 2


def test_a_command_whose_extra_is_not_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`make run` installs the `server` extra alone: `tierlift calibrate` needs scikit-learn (`eval`)."""
    for name in ["sklearn", *(m for m in sys.modules if m.startswith("sklearn."))]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tierlift.evaluation.calibration", raising=False)
    argv = ["calibrate", "--eval", str(tmp_path / "eval.json"), "--policy", str(tmp_path / "policy.yaml"),
            "--workload", "chat", "--max-escalation", "0.2"]  # fmt: skip
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        "tierlift: tierlift calibrate needs sklearn, which the `server` extra leaves out: "
        "pip install 'tierlift[eval]'\n"
    )
