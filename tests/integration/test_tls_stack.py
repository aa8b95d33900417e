"""The whole stack over TLS: every gRPC listener and client, the gateway's HTTPS and NATS
(tls://), with certificates from a test CA (trustme). The classifier also wants mutual TLS and
knows the router by the name in its certificate, with no key."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import trustme

from tests.stack_keys import tenant_router
from tests.topology import own_process
from tierlift.core.tls import TlsFiles
from tierlift.devstack import Stack
from tierlift.v1 import (
    classifier_pb2,
    classifier_pb2_grpc,
    common_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

ROUTER_NAME = "router.tierlift.test"


def write_pair(cert: trustme.LeafCert, folder: Path, name: str) -> tuple[Path, Path]:
    cert.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    cert.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
    return folder / f"{name}.pem", folder / f"{name}.key"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_stack(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("tls")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert, key = write_pair(ca.issue_cert("127.0.0.1", "localhost", ROUTER_NAME), folder, "service")
    mutual = {"TIERLIFT_TLS_CLIENT_CERTS": "require", "TIERLIFT_TLS_IDENTITIES": f"{ROUTER_NAME}=router"}
    stack = Stack(
        folder / "state", tls=TlsFiles(cert, key, folder / "ca.pem"), service_extra_env={"classifier": mutual}
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_a_request_is_routed_answered_and_billed_over_tls(tls_stack: Stack) -> None:
    assert tls_stack.nats_url.startswith("tls://")
    with tenant_router(tls_stack) as channel:
        reply = router_pb2_grpc.RouterStub(channel).Complete(
            router_pb2.CompleteRequest(
                tenant="dev", workload="cli", messages=[common_pb2.Message(role="user", content="Say hello.")]
            ),
            timeout=120,
        )
    assert reply.text and reply.tier == common_pb2.TIER_LOCAL  # the classifier, over mutual TLS, answered
    with tls_stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        for _ in range(100):
            if ledger.GetSpend(ledger_pb2.SpendQuery(tenant="dev"), timeout=10).total_attempts >= 1:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the attempt was not billed over tls://")


def test_plain_tcp_is_refused_where_tls_is_on(tls_stack: Stack) -> None:
    with grpc.insecure_channel(tls_stack.addrs["router"]) as channel, pytest.raises(grpc.RpcError) as err:
        router_pb2_grpc.RouterStub(channel).Plan(router_pb2.CompleteRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_the_gateway_serves_https(tls_stack: Stack, tmp_path: Path) -> None:
    assert tls_stack.tls is not None and tls_stack.openai_base_url.startswith("https://")
    models = httpx.get(
        f"{tls_stack.openai_base_url}/models",
        headers={"Authorization": f"Bearer {tls_stack.keys['app']}"},
        verify=ssl.create_default_context(cafile=str(tls_stack.tls.ca)),
        timeout=10,
    )
    assert models.status_code == 200 and any(m["id"] == "tierlift/auto" for m in models.json()["data"])


def test_the_classifier_knows_the_router_by_its_certificate_and_no_one_else(
    tls_stack: Stack, ca: trustme.CA, tmp_path: Path
) -> None:
    assert tls_stack.tls is not None
    own_process(tls_stack, "classifier")
    request = classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content="hi")])
    root = tls_stack.tls.ca.read_bytes()

    def classify(cert: Path | None, key: Path | None) -> grpc.StatusCode:
        pair = {"private_key": key.read_bytes(), "certificate_chain": cert.read_bytes()} if cert and key else {}
        credentials = grpc.ssl_channel_credentials(root_certificates=root, **pair)
        with grpc.secure_channel(tls_stack.addrs["classifier"], credentials) as channel:
            try:
                classifier_pb2_grpc.ClassifierStub(channel).Classify(request, timeout=10)
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[attr-defined,no-any-return]
        return grpc.StatusCode.OK

    assert classify(tls_stack.tls.cert, tls_stack.tls.key) == grpc.StatusCode.OK  # the router's name, no key
    intruder = write_pair(ca.issue_cert("intruder.tierlift.test"), tmp_path, "intruder")
    assert classify(*intruder) == grpc.StatusCode.PERMISSION_DENIED  # signed by the CA, but not a router
    assert classify(None, None) == grpc.StatusCode.UNAVAILABLE  # no certificate: no handshake
