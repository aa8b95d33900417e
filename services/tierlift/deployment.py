"""What `tierlift up` deploys: an adapter for every catalog model the embedded stack can reach.

From the catalog and the environment: the in-process llama.cpp tier always; a self-hosted pod
(vLLM) when the catalog gives it an endpoint; an API model when the variable its `api_key_env`
names is set and the provider accepts that key. A model outside the stack's region, or whose
licence excludes it, is left out. Every model left out carries its reason, for the banner.

A provider's endpoint can be replaced by the variable its `endpoint_env` names
(`OPENAI_BASE_URL`, read as the OpenAI SDK reads it), so a local OpenAI-compatible server
(vLLM, Ollama, LM Studio, llama-server) can stand in for a closed tier. Such a server rarely
serves the catalog's model name: then the adapter sends every request to the first model the
server lists, and the banner says so (attempts are still priced as the catalog's model).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tierlift.adapters.openai_compat import AZURE_API_VERSION
from tierlift.core.catalog import Catalog, Model
from tierlift.core.config import secret


@dataclass(frozen=True)
class Deployed:
    model: Model
    endpoint: str  # "" for the in-process llama.cpp tier
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    model: Model
    reason: str


@dataclass
class Deployment:
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> backend family
    adapter_env: dict[str, dict[str, str]] = field(default_factory=dict)  # extra settings per adapter
    deployed: list[Deployed] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def catalog(self, full: Catalog) -> Catalog:
        """The catalog the router and adapters serve: only what is deployed."""
        return full.model_copy(update={"models": tuple(d.model for d in self.deployed)})


@dataclass(frozen=True)
class ProbeResult:
    """What a provider said when asked for its models with the key: `problem` is set when the
    key was rejected or the endpoint could not be reached; `served` is None when the endpoint
    does not list its models (then nothing is assumed)."""

    problem: str = ""
    served: tuple[str, ...] | None = None


Probe = Callable[[str, str, str], ProbeResult]  # (backend family, endpoint, key) -> result


SELF_HOSTED = ("llamacpp", "sglang", "tgi", "ollama")  # adapter-name prefixes; anything else self-hosted is vLLM


def backend_family(model: Model) -> str:
    if model.price.self_hosted is not None:
        return next((family for family in SELF_HOSTED if model.adapter.startswith(family)), "vllm")
    return {"anthropic": "anthropic", "azure": "azure"}.get(model.provider, "openai")


def _region_problem(model: Model, region: str) -> str:
    if not region:
        return ""
    if region not in model.regions and "any" not in model.regions:
        return f"runs in {', '.join(model.regions)} only; this stack serves region {region}"
    if region in model.licence.excluded_regions:
        return f"licence {model.licence.name} excludes region {region}"
    return ""


def plan_deployment(catalog: Catalog, env: Mapping[str, str], region: str, probe: Probe) -> Deployment:
    deployment = Deployment()
    probed: dict[tuple[str, str, str], ProbeResult] = {}
    for model in catalog.models:
        family = backend_family(model)
        endpoint = model.resolved_endpoint(env)
        key = secret(model.api_key_env, env) if model.api_key_env else ""
        problem = _region_problem(model, region)
        if not problem and family in ("vllm", "sglang", "tgi", "ollama") and not endpoint:
            problem = f"a {family} server with no endpoint in the catalog (give one with --catalog)"
        if not problem and model.api_key_env and not key:
            problem = f"no key: set {model.api_key_env}"
        note = ""
        if not problem and model.price.api is not None:
            if (family, endpoint, key) not in probed:
                probed[(family, endpoint, key)] = probe(family, endpoint, key)
            result = probed[(family, endpoint, key)]
            problem, note = result.problem, ""
            if not problem:
                problem, note = _check_served(deployment, model, endpoint, env, result)
        if problem:
            deployment.skipped.append(Skipped(model, problem))
            continue
        deployment.adapters[model.adapter] = family
        deployment.deployed.append(Deployed(model, endpoint, note))
    return deployment


def _check_served(
    deployment: Deployment, model: Model, endpoint: str, env: Mapping[str, str], result: ProbeResult
) -> tuple[str, str]:
    """(problem, note): is the model served at the endpoint, or does a stand-in serve it?"""
    name = model.upstream_model or model.id
    if result.served is None or name in result.served:
        return "", ""
    stand_in = bool(model.endpoint_env and env.get(model.endpoint_env))
    if not stand_in or not result.served:
        return f"{endpoint} does not serve {name}", ""
    settings = deployment.adapter_env.setdefault(model.adapter, {})
    chosen = settings.setdefault("TIERLIFT_UPSTREAM_MODEL", result.served[0])
    return "", f'served as "{chosen}" by {model.endpoint_env} (priced as {model.id})'


def probe_provider(family: str, endpoint: str, key: str, timeout_s: float = 5.0) -> ProbeResult:
    """Ask the provider for its models with the key, through its official SDK."""
    import anthropic
    import openai

    try:
        if family == "anthropic":
            with anthropic.Anthropic(base_url=endpoint, api_key=key, timeout=timeout_s, max_retries=0) as a:
                return ProbeResult(served=tuple(m.id for m in a.models.list(limit=1000).data))
        if family == "azure":
            version = os.environ.get("AZURE_OPENAI_API_VERSION", AZURE_API_VERSION)
            client: openai.OpenAI = openai.AzureOpenAI(
                azure_endpoint=endpoint, api_key=key, api_version=version, timeout=timeout_s, max_retries=0
            )
        else:
            client = openai.OpenAI(base_url=endpoint, api_key=key, timeout=timeout_s, max_retries=0)
        with client as o:
            # Azure lists the resource's base models, not its deployments: nothing to match on
            return ProbeResult(served=None if family == "azure" else tuple(m.id for m in o.models.list().data))
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        return ProbeResult(problem=f"key rejected by {endpoint} (HTTP {exc.status_code})")
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
        return ProbeResult(problem=f"key rejected by {endpoint} (HTTP {exc.status_code})")
    except (openai.APIConnectionError, anthropic.APIConnectionError) as exc:
        return ProbeResult(problem=f"cannot reach {endpoint}: {exc.__class__.__name__}")
    except (openai.APIStatusError, anthropic.APIStatusError):
        return ProbeResult()  # no model list here (HTTP 404 and the like): assume nothing
