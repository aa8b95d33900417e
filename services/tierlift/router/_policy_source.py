"""The routing policy as a YAML file: parsed and validated into a `Policy`, and reloaded when
the file changes, so an operator (or a ConfigMap update) changes routing without a restart.
A file that fails validation never replaces the policy in force."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierlift.core.json_schemas import schema_validator
from tierlift.core.logging import get_logger
from tierlift.router import _metrics as metrics
from tierlift.router._confidence import ConfidenceModel
from tierlift.router._fair_share import TenantLimits
from tierlift.router._policy import ExplorationPolicy, Policy, RoutingHead, ShadowPolicy
from tierlift.v1 import common_pb2, events_pb2

log = get_logger(__name__)

DEFAULT_POLICY = Path(__file__).parent.parent / "policy" / "dev.yaml"
TierName = Literal["LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"]
DataClassName = Literal["PUBLIC", "INTERNAL", "CONFIDENTIAL", "REGULATED"]


class PolicyError(Exception):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgeFile(_Strict):
    method: Literal["exact", "normalised", "json_schema", "embedding", "llm"] = "normalised"
    json_schema: dict[str, object] | None = None  # for json_schema
    agree_at: float = Field(default=0.85, ge=0, le=1)  # for embedding: cosine counted as agreement
    model: str = ""  # for llm: the judging catalog model
    rubric: str = Field(default="Which answer is more correct and more useful to the user?", max_length=2000)

    @model_validator(mode="after")
    def _needs(self) -> JudgeFile:
        if self.method == "json_schema" and not self.json_schema:
            raise ValueError("method json_schema needs json_schema")
        if self.json_schema and isinstance(problem := schema_validator(json.dumps(self.json_schema)), str):
            raise ValueError(problem)
        if self.method == "llm" and not self.model:
            raise ValueError("method llm needs model (a catalog model to judge with)")
        return self


class ShadowFile(_Strict):
    sample: float = Field(gt=0, le=1)
    models: list[str] = Field(min_length=1, max_length=4)
    max_usd_per_day: str = Field(pattern=r"^\d{1,9}(\.\d{1,6})?$")
    judge: JudgeFile = JudgeFile()
    # prompts and answers of REGULATED requests are kept for judging only if this says so;
    # otherwise only their digests travel (exact and normalised judging still work)
    keep_regulated_text: bool = False


class ExplorationFile(_Strict):
    """Off unless given: a share of the requests the learned router starts above the cheapest
    allowed rung also runs on that rung, judged against the live answer (router/_shadow.py)."""

    share: float = Field(gt=0, le=1)
    max_usd_per_day: str = Field(pattern=r"^\d{1,9}(\.\d{1,6})?$")
    judge: JudgeFile = JudgeFile()


class RoutingHeadFile(_Strict):
    weights: list[float] = Field(min_length=1, max_length=64)
    bias: float
    min_prior: float = Field(default=0.0, ge=0, le=1)
    fitted_on: str = ""


class WorkloadFile(_Strict):
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    calibrated: str = ""  # how the threshold was chosen, written by `tierlift calibrate`
    shadow: ShadowFile | None = None
    # the workload's own learned router, written by `tierlift calibrate --from-ledger`
    routing_head: RoutingHeadFile | None = None
    exploration: ExplorationFile | None = None


class ConfidenceModelFile(_Strict):
    weights: list[float]
    bias: float
    models: list[str] = Field(min_length=1)
    fitted_on: str = ""


class LimitsFile(_Strict):
    concurrent: int = Field(default=0, ge=0)
    requests_per_s: float = Field(default=0.0, ge=0)
    prompt_tokens_per_minute: int = Field(default=0, ge=0)


class TenantLimitsFile(_Strict):
    default: LimitsFile = LimitsFile()
    tenants: dict[str, LimitsFile] = {}
    keys: dict[str, LimitsFile] = {}  # by API key id (`tierlift keys list`), on top of its tenant's


class PolicyFile(_Strict):
    version: str = Field(min_length=1)
    data_classes: dict[DataClassName, list[TierName]]
    tier_quality: dict[TierName, float]
    open_tiers_min_prior: float = Field(default=0.0, ge=0, le=1)
    confidence_threshold: float = Field(ge=0, le=1)
    workloads: dict[str, WorkloadFile] = {}
    confidence_model: ConfidenceModelFile | None = None
    limits: TenantLimitsFile = TenantLimitsFile()
    # how long the texts of shadowed requests are kept for judging (JetStream per-message TTL)
    text_retention_days: int = Field(default=7, ge=1, le=90)


def _tier(name: str) -> int:
    return int(common_pb2.Tier.Value(f"TIER_{name}"))


def _judge(judge: JudgeFile) -> events_pb2.JudgeSpec:
    schema = json.dumps(judge.json_schema) if judge.json_schema else ""
    return events_pb2.JudgeSpec(
        method=judge.method, json_schema=schema, agree_at=judge.agree_at, model=judge.model, rubric=judge.rubric
    )


def _shadow(raw: ShadowFile) -> ShadowPolicy:
    return ShadowPolicy(
        sample=raw.sample,
        models=tuple(raw.models),
        max_usd_per_day=Decimal(raw.max_usd_per_day),
        judge=_judge(raw.judge),
        keep_regulated_text=raw.keep_regulated_text,
    )


def parse_policy(text: str, source: str) -> Policy:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not YAML: {exc}") from None
    except (RecursionError, ValueError) as exc:  # nesting past Python's limit, a 4,300+ digit number
        raise PolicyError(f"{source}: YAML this loader cannot read: {str(exc)[:200]}") from None
    try:
        raw = PolicyFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PolicyError(f"{source}: {where}: {first['msg']}") from None
    missing = {"PUBLIC", "INTERNAL", "CONFIDENTIAL", "REGULATED"} - raw.data_classes.keys()
    if missing:
        raise PolicyError(f"{source}: data_classes: missing {sorted(missing)}")
    if set(raw.tier_quality) != {"LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"}:
        raise PolicyError(f"{source}: tier_quality: needs exactly LOCAL, HOSTED_OPEN, CLOSED, FRONTIER")
    try:
        cm = raw.confidence_model
        model = ConfidenceModel(tuple(cm.weights), cm.bias, tuple(cm.models), cm.fitted_on) if cm else None
    except ValueError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    return Policy(
        version=raw.version,
        tiers_for_data_class={
            int(common_pb2.DataClass.Value(f"DATA_CLASS_{name}")): frozenset(_tier(t) for t in tiers)
            for name, tiers in raw.data_classes.items()
        },
        tier_quality={_tier(t): q for t, q in raw.tier_quality.items()},
        confidence_threshold=raw.confidence_threshold,
        workload_thresholds={
            name: w.confidence_threshold for name, w in raw.workloads.items() if w.confidence_threshold is not None
        },
        shadows={name: _shadow(w.shadow) for name, w in raw.workloads.items() if w.shadow is not None},
        routing_heads={
            name: RoutingHead(tuple(h.weights), h.bias, h.min_prior, h.fitted_on)
            for name, w in raw.workloads.items()
            if (h := w.routing_head) is not None
        },
        explorations={
            name: ExplorationPolicy(e.share, Decimal(e.max_usd_per_day), _judge(e.judge))
            for name, w in raw.workloads.items()
            if (e := w.exploration) is not None
        },
        text_retention_s=raw.text_retention_days * 86_400,
        open_tiers_min_prior=raw.open_tiers_min_prior,
        confidence_model=model,
        default_limits=TenantLimits(**raw.limits.default.model_dump()),
        tenant_limits={name: TenantLimits(**lim.model_dump()) for name, lim in raw.limits.tenants.items()},
        key_limits={key_id: TenantLimits(**lim.model_dump()) for key_id, lim in raw.limits.keys.items()},
    )


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror}") from None
    return parse_policy(text, str(path))


class PolicySource:
    """The policy in force. `watch()` polls the file and swaps in each valid new version."""

    def __init__(self, policy: Policy, path: Path | None = None, digest: str = "") -> None:
        self.current = policy
        self.path = path
        self.rejected = 0
        self._digest = digest  # of the bytes `current` was parsed from

    @classmethod
    def from_file(cls, path: Path) -> PolicySource:
        # One read: parsing and the digest come from the same bytes, so a change made in between
        # is still seen as a change by the next reload.
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror}") from None
        return cls(parse_policy(data.decode(), str(path)), path, hashlib.sha256(data).hexdigest())

    def reload(self) -> bool:
        """Load the file again if it changed; True when a new policy took effect."""
        if self.path is None:
            return False
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            log.error("policy_unreadable", path=str(self.path), error=exc.strerror)
            return False
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest
        try:  # anything this raised ended the watch, and the router took no policy change again
            policy = parse_policy(data.decode(), str(self.path))
        except (PolicyError, UnicodeDecodeError) as exc:
            self.rejected += 1
            metrics.policy_reloads.add(1, {"tierlift.result": "rejected"})
            log.error("policy_rejected", error=str(exc), keeping=self.current.version)
            return False
        metrics.policy_reloads.add(1, {"tierlift.result": "applied"})
        log.info("policy_reloaded", previous=self.current.version, version=policy.version)
        self.current = policy
        return True

    async def watch(
        self, interval_s: float = 2.0, on_change: Callable[[str, str], Awaitable[None]] | None = None
    ) -> None:
        """Reload every `interval_s`; `on_change(previous version, new version)` after each change
        taken (the router audits it), and after each refused one with new version ''."""
        while True:
            await asyncio.sleep(interval_s)
            previous, rejected = self.current.version, self.rejected
            applied = self.reload()
            if on_change is None or not (applied or self.rejected != rejected):
                continue
            try:
                await on_change(previous, self.current.version if applied else "")
            except Exception:
                log.exception("policy_change_not_audited")
