"""NATS permissions have one source (core/nats_access.py): the embedded stack renders them, the
chart ships them as files/nats-permissions.json, and the config the chart renders is one the
real nats-server accepts. Production values without TLS or NATS users are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import helm_python as helm
import trustme

from tests.unit.test_helm_chart import CHART, of_kind, overlay, render
from tierlift.core.nats_access import PERMISSIONS, new_seed, public_key
from tierlift.devstack import nats_server_binary


def test_the_chart_ships_the_permissions_the_services_are_built_for() -> None:
    assert json.loads((CHART / "files" / "nats-permissions.json").read_text()) == PERMISSIONS


def test_the_nats_config_the_chart_renders_is_accepted_by_nats_server(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    leaf = ca.issue_cert("sy-tierlift-nats")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    keys = {role: public_key(new_seed()) for role in ("router", "ledger", "observer")}
    auth = {"enabled": True, "existingSecret": "users", **{f"{r}Nkey": k for r, k in keys.items()}}
    values = {"tls": {"enabled": True, "existingSecret": "tls"}, "nats": {"install": True, "auth": auth}}
    config = of_kind(render(values), "ConfigMap")["sy-tierlift-nats"]["data"]["nats.conf"]
    assert all(key in config for key in keys.values())
    local = config.replace("/etc/nats-tls", str(tmp_path)).replace('"/data"', json.dumps(str(tmp_path / "js")))
    (tmp_path / "nats.conf").write_text(local)
    checked = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(tmp_path / "nats.conf")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_prod_values_need_tls_and_nats_users() -> None:
    prod = overlay("values-prod.yaml")
    assert helm.lint(str(CHART), prod, strict=True)["errors"] == []
    without_tls = {**prod, "tls": {"enabled": False}}
    assert any("tls" in e for e in helm.lint(str(CHART), without_tls, strict=True)["errors"])
    without_users = {**prod, "nats": {**prod["nats"], "auth": {"enabled": False}}}
    assert any("auth" in e for e in helm.lint(str(CHART), without_users, strict=True)["errors"])


def test_with_tls_services_are_probed_on_the_plain_health_port() -> None:
    docs = render(overlay("values-prod.yaml"))
    ours = {name: d for name, d in of_kind(docs, "Deployment").items() if "-vllm-" not in name}
    assert ours
    for name, deployment in ours.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        probe = container["readinessProbe"]
        if "httpGet" in probe:
            assert probe["httpGet"]["scheme"] == "HTTPS", name
        else:
            assert probe["grpc"]["port"] == 50052, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TIERLIFT_TLS_CA_FILE"].endswith("/tls/ca.crt"), name
        assert env["TIERLIFT_NATS_URL"].startswith("tls://"), name
