"""`tierlift serve --components router,classifier,gateway,adapter:<name>[=<backend>],...` (or
`all`): several components of the request path in one process, the `combined` topology
(docs/operations/topologies.md). Between them a call is a direct call on the callee's servicer
(core/local_channel.py), through the callee's own admission; the router still serves gRPC on
TIERLIFT_LISTEN (internal apps, the assessor's judge calls) and the gateway HTTP on
TIERLIFT_HTTP_LISTEN. The environment is the one each component reads in `microservices`; the
classifier and the hosted adapters listen nowhere.

`all`: gateway, router, classifier, and every adapter in TIERLIFT_ADAPTERS except llama.cpp's
(whose native model would share this process's CPU); name `adapter:llamacpp-local` to host it too.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tierlift.core import local_channel
from tierlift.core.catalog import Catalog, load_catalog
from tierlift.core.config import ServiceSettings, load_settings
from tierlift.core.entry import StartupError
from tierlift.core.identity import Authenticate, routers_only

COMPONENTS = ("router", "classifier", "gateway")
_ADAPTERS = "TIERLIFT_ADAPTERS"


@dataclass
class Components:
    router: bool = False
    classifier: bool = False
    gateway: bool = False
    adapters: dict[str, str] = field(default_factory=dict)  # name -> backend family ("" = from the catalog)


def parse_components(spec: str) -> Components:
    chosen = Components()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        if item == "all":
            chosen.router = chosen.classifier = chosen.gateway = True
            for name in _listed_adapters():
                if not name.startswith("llamacpp"):
                    chosen.adapters.setdefault(name, "")
        elif item.startswith("adapter:"):
            name, _, backend = item.removeprefix("adapter:").partition("=")
            if not name:
                raise StartupError(f"--components: {item!r} names no adapter (adapter:<name>[=<backend>])")
            chosen.adapters[name] = backend
        elif item in COMPONENTS:
            setattr(chosen, item, True)
        else:
            raise StartupError(f"--components: {item!r} is not one of all, {', '.join(COMPONENTS)}, adapter:<name>")
    if (chosen.classifier or chosen.adapters) and not chosen.router:
        raise StartupError("--components: the classifier and adapters are hosted only beside their router")
    if not (chosen.router or chosen.gateway):
        raise StartupError("--components: name the router or the gateway (or all)")
    return chosen


def _listed_adapters() -> dict[str, str]:
    pairs = (e.strip().split("=", 1) for e in os.environ.get(_ADAPTERS, "").split(",") if "=" in e)
    return {name: addr for name, addr in pairs}


def _backend_of(name: str, given: str, catalog: Catalog) -> str:
    if given:
        return given
    from tierlift.deployment import backend_family

    model = next((m for m in catalog.models if m.adapter == name), None)
    if model is None:
        raise StartupError(f"--components: no model in the catalog uses adapter {name!r}")
    family = backend_family(model)
    return "llamacpp" if name.startswith("llamacpp") else family


def _routers(settings: ServiceSettings) -> Authenticate:
    """The classifier's and the adapters' own admission: only routers, by their service keys."""
    return routers_only(settings.trusted_router_hashes(), settings.tls_identities)


def _host_classifier(settings: ServiceSettings) -> None:
    from tierlift.classifier._servicer import ClassifierServicer
    from tierlift.v1 import classifier_pb2_grpc

    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]  # as the classifier's main
    address = os.environ.setdefault("TIERLIFT_CLASSIFIER_ADDR", "in-process-classifier:0")
    endpoint = local_channel.LocalEndpoint(
        "classifier", routers_only(settings.trusted_router_hashes(), settings.tls_identities)
    )
    classifier_pb2_grpc.add_ClassifierServicer_to_server(ClassifierServicer(), endpoint)
    local_channel.host(address, endpoint)


def _host_adapters(chosen: Components, settings: ServiceSettings) -> list[Callable[[], Awaitable[None]]]:
    """Each hosted adapter's servicer at its address in TIERLIFT_ADAPTERS (added there when not
    listed); the backends' close functions."""
    from tierlift.adapters._servicer import AdapterServicer
    from tierlift.adapters.main import AdapterSettings, adapter_settings, build_backend
    from tierlift.v1 import adapter_pb2_grpc

    listed = _listed_adapters()
    closes: list[Callable[[], Awaitable[None]]] = []
    for name, given in chosen.adapters.items():
        catalog = load_catalog(load_settings(AdapterSettings).catalog)
        adapter = adapter_settings(name, _backend_of(name, given, catalog))  # its own settings over the process's
        backend = build_backend(adapter, catalog)
        closes.append(backend.close)
        endpoint = local_channel.LocalEndpoint(
            f"adapter-{name}", routers_only(settings.trusted_router_hashes(), settings.tls_identities)
        )
        adapter_pb2_grpc.add_ModelAdapterServicer_to_server(AdapterServicer(backend), endpoint)
        listed.setdefault(name, f"in-process-{name}:0")
        local_channel.host(listed[name], endpoint)
    os.environ[_ADAPTERS] = ",".join(f"{name}={addr}" for name, addr in listed.items())
    return closes


async def _until_hosted(address: str, router: asyncio.Task[None]) -> None:
    while local_channel.hosted(address) is None:
        if router.done():
            router.result()  # its start-up error
            raise StartupError("the router stopped before it served")
        await asyncio.sleep(0.02)


async def run(spec: str) -> None:
    from tierlift.core.logging import configure_logging

    chosen = parse_components(spec)
    local_channel.enable()
    settings = load_settings(ServiceSettings)
    configure_logging("tierlift", settings.log_level)
    closes: list[Callable[[], Awaitable[None]]] = []
    if chosen.classifier:
        _host_classifier(settings)
    if chosen.adapters:
        closes = _host_adapters(chosen, settings)
    tasks: list[asyncio.Task[None]] = []
    try:
        if chosen.router:
            from tierlift.router import main as router_main

            tasks.append(asyncio.create_task(router_main.run(), name="router"))
            await _until_hosted(settings.listen, tasks[-1])
        if chosen.gateway:
            from tierlift.gateway import main as gateway_main

            if chosen.router:  # the router above, called directly; it serves this process's metrics
                os.environ["TIERLIFT_ROUTER_ADDR"] = settings.listen
                os.environ.pop("TIERLIFT_METRICS_LISTEN", None)
            tasks.append(asyncio.create_task(gateway_main.run(), name="gateway"))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for close in closes:
            await close()
