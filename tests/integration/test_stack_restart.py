"""A restart loses no money: requests answered while the ledger was down are billed once it is
back, after the whole dev stack restarted, because the keys that signed them (the NATS users in
the state folder) survive the restart; and `tierlift up`'s supervisor starts a killed service
again on its address."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

WORKLOAD = "backlog"


def ask(stack: Stack, text: str) -> str:
    request = router_pb2.CompleteRequest(
        tenant="dev", workload=WORKLOAD, messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=4),
    )  # fmt: skip
    with stack.channel("router") as channel:  # tenant dev's app key, which the ledger made at start
        reply = router_pb2_grpc.RouterStub(channel).Complete(request, timeout=120)
    return str(reply.request_id)


def attempts_of(stack: Stack, request_id: str) -> int:
    with stack.channel("ledger") as channel:
        listed = ledger_pb2_grpc.LedgerStub(channel).ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id))
    return len(listed.attempts)


def test_a_backlog_signed_before_a_restart_is_billed_once_after_it(tmp_path: Path) -> None:
    first = Stack(tmp_path / "state")
    first.start()
    try:
        first.stop_service("ledger")
        answered = [ask(first, f"Say the number {i}.") for i in range(4)]  # the ledger is down
    finally:
        first.stop()

    again = Stack(tmp_path / "state")  # the same state folder: new processes, the same NATS users
    again.start()
    try:
        deadline = time.monotonic() + 60
        while [attempts_of(again, r) for r in answered] != [1] * len(answered):
            assert time.monotonic() < deadline, [attempts_of(again, r) for r in answered]
            time.sleep(0.5)
        with again.channel("ledger") as channel:
            spend = ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(workload=WORKLOAD))
        assert spend.total_attempts == len(answered)  # each once: nothing dead-lettered, nothing twice
        dead = [line for line in again.log_path("ledger").read_text().splitlines() if "not a trusted producer" in line]
        assert dead == []
    finally:
        again.stop()


def test_the_supervisor_restarts_a_killed_service_on_its_address(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state")
    stack.start()
    said: list[str] = []
    try:
        address = stack.addrs["ledger"]
        stack.procs["ledger"].send_signal(signal.SIGKILL)
        due: dict[str, float] = {}
        deadline = time.monotonic() + 90
        while not any("ledger restarted" in line for line in said):
            assert time.monotonic() < deadline, said
            stack.supervise(due, said.append)
            time.sleep(0.2)
        assert "ledger exited with code -9; restarting in 1s" in said[0]
        assert stack.addrs["ledger"] == address and stack.procs["ledger"].poll() is None
        answered = ask(stack, "Say hello.")  # and it bills again
        deadline = time.monotonic() + 30
        while attempts_of(stack, answered) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        stack.stop()
