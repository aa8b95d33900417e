"""What `tierlift up` deploys: an adapter for every catalog model the embedded stack can reach.

From the catalog and the environment: the in-process llama.cpp tier always; a self-hosted pod
(vLLM) when the catalog gives it an endpoint; an API model when the variable its `api_key_env`
names is set and the provider accepts that key. The regional clouds take the cloud's own
credentials instead of a key: Bedrock models when AWS credentials are in the environment
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity token), only those
in AWS_REGION when it is set; Vertex AI models when GOOGLE_CLOUD_PROJECT and Application Default
Credentials are there, only those in GOOGLE_CLOUD_LOCATION when it is set. A model outside the
stack's region, or whose licence excludes it, is left out. Every model left out carries its
reason, for the banner.

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

TIERLIFT_KEY_PREFIX = "tl_"  # how Tierlift's own API keys start (core/identity.py)


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


# provider -> the adapter family that speaks its API; every other provider speaks OpenAI's
API_FAMILIES = {
    "anthropic": "anthropic",
    "azure": "azure",
    "google": "gemini",
    "vertex": "vertex",
    "bedrock": "bedrock",
}


def backend_family(model: Model) -> str:
    if model.price.self_hosted is not None:
        return next((family for family in SELF_HOSTED if model.adapter.startswith(family)), "vllm")
    return API_FAMILIES.get(model.provider, "openai")


# What the regional clouds' SDKs read from the environment: passed on to their adapters.
CLOUD_ENV_PREFIXES = {"bedrock": "AWS_", "vertex": "GOOGLE_"}


def cloud_env(family: str, env: Mapping[str, str]) -> dict[str, str]:
    prefix = CLOUD_ENV_PREFIXES.get(family)
    return {k: v for k, v in env.items() if prefix and k.startswith(prefix)}


def _cloud_problem(family: str, model: Model, env: Mapping[str, str]) -> str:
    """Why a Bedrock or Vertex AI model cannot be deployed from this environment ("" if it can).
    Read from the environment only: probing for credentials could wait on a metadata server."""
    if family == "bedrock":
        if not (
            (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"))
            or env.get("AWS_PROFILE")
            or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        ):
            return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region and region != model.cloud_region:
            return f"in AWS region {model.cloud_region}; AWS_REGION is {region}"
    if family == "vertex":
        if not env.get("GOOGLE_CLOUD_PROJECT"):
            return "no Google Cloud project: set GOOGLE_CLOUD_PROJECT (and GOOGLE_APPLICATION_CREDENTIALS)"
        if not env.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return "no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS"
        location = env.get("GOOGLE_CLOUD_LOCATION")
        if location and location != model.cloud_region:
            return f"in Vertex AI location {model.cloud_region}; GOOGLE_CLOUD_LOCATION is {location}"
    return ""


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
        if not problem and key.startswith(TIERLIFT_KEY_PREFIX):
            problem = _own_edge(model, endpoint)
        if not problem and family in CLOUD_ENV_PREFIXES:
            problem = _cloud_problem(family, model, env)
        note = ""
        if not problem and model.price.api is not None and family not in CLOUD_ENV_PREFIXES:
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


def _own_edge(model: Model, endpoint: str) -> str:
    """Why a provider whose key is a Tierlift API key is not one: the variables are those the
    banner of `tierlift up` tells apps to export, pasted into the shell that runs Tierlift."""
    via = f"{model.endpoint_env}={endpoint}, " if model.endpoint_env and endpoint else ""
    unset = " and ".join(v for v in (model.endpoint_env, model.api_key_env) if v)
    return (
        f"{via}{model.api_key_env} is a Tierlift API key: that is Tierlift's own OpenAI-compatible edge, "
        f"not a provider (unset {unset} in the shell that runs `tierlift up`; they are for apps)"
    )


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

    if family == "gemini":
        return _probe_gemini(endpoint, key, timeout_s)
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


def _probe_gemini(endpoint: str, key: str, timeout_s: float) -> ProbeResult:
    from google import genai
    from google.genai import errors, types

    options = types.HttpOptions(base_url=endpoint, timeout=int(timeout_s * 1000))
    try:
        client = genai.Client(api_key=key, http_options=options)
        try:
            return ProbeResult(served=tuple(m.name.removeprefix("models/") for m in client.models.list() if m.name))
        finally:
            client.close()
    except errors.APIError as exc:
        # the Gemini API answers a bad key with 400 API_KEY_INVALID
        if exc.code in (401, 403) or "API_KEY_INVALID" in str(exc.details):
            return ProbeResult(problem=f"key rejected by {endpoint} (HTTP {exc.code})")
        return ProbeResult()
    except Exception as exc:  # the transport's own errors: httpx, aiohttp, OS
        return ProbeResult(problem=f"cannot reach {endpoint}: {exc.__class__.__name__}")
