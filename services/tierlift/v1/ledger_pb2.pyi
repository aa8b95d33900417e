from tierlift.v1 import common_pb2 as _common_pb2
from tierlift.v1 import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyRequest(_message.Message):
    __slots__ = ("tenant", "role", "workloads", "expires_at", "description")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    role: str
    workloads: _containers.RepeatedScalarFieldContainer[str]
    expires_at: str
    description: str
    def __init__(self, tenant: _Optional[str] = ..., role: _Optional[str] = ..., workloads: _Optional[_Iterable[str]] = ..., expires_at: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "tenant", "role", "workloads", "created_at", "expires_at", "revoked_at", "description", "last_used_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    tenant: str
    role: str
    workloads: _containers.RepeatedScalarFieldContainer[str]
    created_at: str
    expires_at: str
    revoked_at: str
    description: str
    last_used_at: str
    def __init__(self, key_id: _Optional[str] = ..., tenant: _Optional[str] = ..., role: _Optional[str] = ..., workloads: _Optional[_Iterable[str]] = ..., created_at: _Optional[str] = ..., expires_at: _Optional[str] = ..., revoked_at: _Optional[str] = ..., description: _Optional[str] = ..., last_used_at: _Optional[str] = ...) -> None: ...

class CreatedKey(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class KeyQuery(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class KeyList(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class KeyId(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class KeyRotation(_message.Message):
    __slots__ = ("key_id", "grace_s")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    grace_s: int
    def __init__(self, key_id: _Optional[str] = ..., grace_s: _Optional[int] = ...) -> None: ...

class AuditQuery(_message.Message):
    __slots__ = ("since", "limit")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since: str
    limit: int
    def __init__(self, since: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("event_id", "occurred_at", "actor", "action", "target", "detail")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: str
    actor: str
    action: str
    target: str
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[str] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class AuditList(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...

class SpendQuery(_message.Message):
    __slots__ = ("tenant", "workload", "since", "until", "by_model", "with_days", "omit_line_kinds")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    WITH_DAYS_FIELD_NUMBER: _ClassVar[int]
    OMIT_LINE_KINDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    since: str
    until: str
    by_model: bool
    with_days: bool
    omit_line_kinds: bool
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., by_model: _Optional[bool] = ..., with_days: _Optional[bool] = ..., omit_line_kinds: _Optional[bool] = ...) -> None: ...

class SpendLine(_message.Message):
    __slots__ = ("tenant", "workload", "tier", "model", "attempts", "input_tokens", "output_tokens", "cost_usd", "kinds", "estimated_attempts", "unsettled_attempts")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    UNSETTLED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    tier: _common_pb2.Tier
    model: str
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: str
    kinds: _containers.RepeatedCompositeFieldContainer[KindSpend]
    estimated_attempts: int
    unsettled_attempts: int
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., attempts: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[KindSpend, _Mapping]]] = ..., estimated_attempts: _Optional[int] = ..., unsettled_attempts: _Optional[int] = ...) -> None: ...

class KindSpend(_message.Message):
    __slots__ = ("kind", "tokens", "cost_usd")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    kind: str
    tokens: int
    cost_usd: str
    def __init__(self, kind: _Optional[str] = ..., tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ...) -> None: ...

class SpendReport(_message.Message):
    __slots__ = ("lines", "total_cost_usd", "total_attempts", "kinds", "days")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[SpendLine]
    total_cost_usd: str
    total_attempts: int
    kinds: _containers.RepeatedCompositeFieldContainer[KindSpend]
    days: _containers.RepeatedCompositeFieldContainer[DailySpend]
    def __init__(self, lines: _Optional[_Iterable[_Union[SpendLine, _Mapping]]] = ..., total_cost_usd: _Optional[str] = ..., total_attempts: _Optional[int] = ..., kinds: _Optional[_Iterable[_Union[KindSpend, _Mapping]]] = ..., days: _Optional[_Iterable[_Union[DailySpend, _Mapping]]] = ...) -> None: ...

class AttemptQuery(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class LedgerAttempt(_message.Message):
    __slots__ = ("event_id", "request_id", "attempt_index", "tenant", "workload", "tier", "model", "outcome", "input_tokens", "output_tokens", "cost_usd", "price_version", "usage", "kinds", "latency_ms", "confidence", "estimated", "unsettled", "reason", "error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_INDEX_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    PRICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    UNSETTLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    request_id: str
    attempt_index: int
    tenant: str
    workload: str
    tier: _common_pb2.Tier
    model: str
    outcome: str
    input_tokens: int
    output_tokens: int
    cost_usd: str
    price_version: str
    usage: _common_pb2.Usage
    kinds: _containers.RepeatedCompositeFieldContainer[KindSpend]
    latency_ms: float
    confidence: float
    estimated: bool
    unsettled: bool
    reason: str
    error: str
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., attempt_index: _Optional[int] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., outcome: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ..., price_version: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., kinds: _Optional[_Iterable[_Union[KindSpend, _Mapping]]] = ..., latency_ms: _Optional[float] = ..., confidence: _Optional[float] = ..., estimated: _Optional[bool] = ..., unsettled: _Optional[bool] = ..., reason: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class RequestQuery(_message.Message):
    __slots__ = ("tenant", "workload", "model", "outcome", "since", "until", "limit", "request_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    model: str
    outcome: str
    since: str
    until: str
    limit: int
    request_id: str
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., model: _Optional[str] = ..., outcome: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., limit: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class RequestSummary(_message.Message):
    __slots__ = ("request_id", "occurred_at", "tenant", "workload", "final_tier", "final_model", "attempts", "answered", "escalated", "total_cost_usd", "error", "rollout_id", "arm", "data_class", "reasons", "excluded", "ladder", "reasons_cut", "trace_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    FINAL_TIER_FIELD_NUMBER: _ClassVar[int]
    FINAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    LADDER_FIELD_NUMBER: _ClassVar[int]
    REASONS_CUT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    occurred_at: str
    tenant: str
    workload: str
    final_tier: _common_pb2.Tier
    final_model: str
    attempts: int
    answered: bool
    escalated: bool
    total_cost_usd: str
    error: str
    rollout_id: str
    arm: str
    data_class: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[_router_pb2.Exclusion]
    ladder: _containers.RepeatedCompositeFieldContainer[_router_pb2.Rung]
    reasons_cut: int
    trace_id: str
    def __init__(self, request_id: _Optional[str] = ..., occurred_at: _Optional[str] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., final_tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., final_model: _Optional[str] = ..., attempts: _Optional[int] = ..., answered: _Optional[bool] = ..., escalated: _Optional[bool] = ..., total_cost_usd: _Optional[str] = ..., error: _Optional[str] = ..., rollout_id: _Optional[str] = ..., arm: _Optional[str] = ..., data_class: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[_router_pb2.Exclusion, _Mapping]]] = ..., ladder: _Optional[_Iterable[_Union[_router_pb2.Rung, _Mapping]]] = ..., reasons_cut: _Optional[int] = ..., trace_id: _Optional[str] = ...) -> None: ...

class RequestList(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RequestSummary]
    def __init__(self, requests: _Optional[_Iterable[_Union[RequestSummary, _Mapping]]] = ...) -> None: ...

class AttemptList(_message.Message):
    __slots__ = ("attempts",)
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[LedgerAttempt]
    def __init__(self, attempts: _Optional[_Iterable[_Union[LedgerAttempt, _Mapping]]] = ...) -> None: ...

class DailySpend(_message.Message):
    __slots__ = ("day", "tier", "attempts", "input_tokens", "output_tokens", "cost_usd", "kinds")
    DAY_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    day: str
    tier: _common_pb2.Tier
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: str
    kinds: _containers.RepeatedCompositeFieldContainer[KindSpend]
    def __init__(self, day: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., attempts: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[KindSpend, _Mapping]]] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("days", "requests", "answered", "escalated", "escalation_rate", "answered_by_tier", "total_cost_usd", "cost_per_1k_requests_usd", "fell_back", "fallback_rate", "requests_by_data_class", "routes")
    class AnsweredByTierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class RequestsByDataClassEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DAYS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_RATE_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_TIER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_PER_1K_REQUESTS_USD_FIELD_NUMBER: _ClassVar[int]
    FELL_BACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_BY_DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedCompositeFieldContainer[DailySpend]
    requests: int
    answered: int
    escalated: int
    escalation_rate: float
    answered_by_tier: _containers.ScalarMap[str, float]
    total_cost_usd: str
    cost_per_1k_requests_usd: str
    fell_back: int
    fallback_rate: float
    requests_by_data_class: _containers.ScalarMap[str, int]
    routes: _containers.RepeatedCompositeFieldContainer[RouteLine]
    def __init__(self, days: _Optional[_Iterable[_Union[DailySpend, _Mapping]]] = ..., requests: _Optional[int] = ..., answered: _Optional[int] = ..., escalated: _Optional[int] = ..., escalation_rate: _Optional[float] = ..., answered_by_tier: _Optional[_Mapping[str, float]] = ..., total_cost_usd: _Optional[str] = ..., cost_per_1k_requests_usd: _Optional[str] = ..., fell_back: _Optional[int] = ..., fallback_rate: _Optional[float] = ..., requests_by_data_class: _Optional[_Mapping[str, int]] = ..., routes: _Optional[_Iterable[_Union[RouteLine, _Mapping]]] = ...) -> None: ...

class RouteLine(_message.Message):
    __slots__ = ("tier", "model", "answered", "fell_back", "fallback_rate", "requests_by_data_class")
    class RequestsByDataClassEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    FELL_BACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_BY_DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    tier: _common_pb2.Tier
    model: str
    answered: int
    fell_back: int
    fallback_rate: float
    requests_by_data_class: _containers.ScalarMap[str, int]
    def __init__(self, tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., answered: _Optional[int] = ..., fell_back: _Optional[int] = ..., fallback_rate: _Optional[float] = ..., requests_by_data_class: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("tenant", "workload", "period", "limit_usd", "soft_ratio", "action", "spent_usd", "state", "strict")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    SOFT_RATIO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SPENT_USD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    period: str
    limit_usd: str
    soft_ratio: float
    action: str
    spent_usd: str
    state: str
    strict: bool
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., period: _Optional[str] = ..., limit_usd: _Optional[str] = ..., soft_ratio: _Optional[float] = ..., action: _Optional[str] = ..., spent_usd: _Optional[str] = ..., state: _Optional[str] = ..., strict: _Optional[bool] = ...) -> None: ...

class BudgetQuery(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class BudgetList(_message.Message):
    __slots__ = ("budgets",)
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    def __init__(self, budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ...) -> None: ...

class QualityQuery(_message.Message):
    __slots__ = ("tenant", "workload", "since", "until")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    since: str
    until: str
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ...) -> None: ...

class QualityLine(_message.Message):
    __slots__ = ("workload", "model", "tier", "requests", "share", "scored", "agreement", "feedback", "feedback_score", "regeneration_rate", "escalation_rate", "p50_latency_ms", "p95_latency_ms", "cost_usd", "cost_per_quality_point", "suite_score")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_SCORE_FIELD_NUMBER: _ClassVar[int]
    REGENERATION_RATE_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_RATE_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_PER_QUALITY_POINT_FIELD_NUMBER: _ClassVar[int]
    SUITE_SCORE_FIELD_NUMBER: _ClassVar[int]
    workload: str
    model: str
    tier: str
    requests: int
    share: float
    scored: int
    agreement: float
    feedback: int
    feedback_score: float
    regeneration_rate: float
    escalation_rate: float
    p50_latency_ms: float
    p95_latency_ms: float
    cost_usd: str
    cost_per_quality_point: str
    suite_score: float
    def __init__(self, workload: _Optional[str] = ..., model: _Optional[str] = ..., tier: _Optional[str] = ..., requests: _Optional[int] = ..., share: _Optional[float] = ..., scored: _Optional[int] = ..., agreement: _Optional[float] = ..., feedback: _Optional[int] = ..., feedback_score: _Optional[float] = ..., regeneration_rate: _Optional[float] = ..., escalation_rate: _Optional[float] = ..., p50_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ..., cost_usd: _Optional[str] = ..., cost_per_quality_point: _Optional[str] = ..., suite_score: _Optional[float] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("lines", "shadow_cost_usd", "alerts", "judge_cost_usd")
    LINES_FIELD_NUMBER: _ClassVar[int]
    SHADOW_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_COST_USD_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[QualityLine]
    shadow_cost_usd: str
    alerts: _containers.RepeatedCompositeFieldContainer[QualityAlertEntry]
    judge_cost_usd: str
    def __init__(self, lines: _Optional[_Iterable[_Union[QualityLine, _Mapping]]] = ..., shadow_cost_usd: _Optional[str] = ..., alerts: _Optional[_Iterable[_Union[QualityAlertEntry, _Mapping]]] = ..., judge_cost_usd: _Optional[str] = ...) -> None: ...

class QualityAlertEntry(_message.Message):
    __slots__ = ("occurred_at", "workload", "model", "reason", "observed", "baseline", "window")
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    occurred_at: str
    workload: str
    model: str
    reason: str
    observed: float
    baseline: float
    window: int
    def __init__(self, occurred_at: _Optional[str] = ..., workload: _Optional[str] = ..., model: _Optional[str] = ..., reason: _Optional[str] = ..., observed: _Optional[float] = ..., baseline: _Optional[float] = ..., window: _Optional[int] = ...) -> None: ...

class EvidenceQuery(_message.Message):
    __slots__ = ("rollout_id", "since", "control_model", "candidate_model")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_MODEL_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_MODEL_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    since: str
    control_model: str
    candidate_model: str
    def __init__(self, rollout_id: _Optional[str] = ..., since: _Optional[str] = ..., control_model: _Optional[str] = ..., candidate_model: _Optional[str] = ...) -> None: ...

class ArmEvidence(_message.Message):
    __slots__ = ("arm", "requests", "faults", "fallbacks", "latency_ms", "cost_usd", "judged", "judged_score", "feedback_good", "feedback_bad")
    ARM_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    JUDGED_SCORE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_GOOD_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_BAD_FIELD_NUMBER: _ClassVar[int]
    arm: str
    requests: int
    faults: int
    fallbacks: int
    latency_ms: _containers.RepeatedScalarFieldContainer[float]
    cost_usd: str
    judged: int
    judged_score: float
    feedback_good: int
    feedback_bad: int
    def __init__(self, arm: _Optional[str] = ..., requests: _Optional[int] = ..., faults: _Optional[int] = ..., fallbacks: _Optional[int] = ..., latency_ms: _Optional[_Iterable[float]] = ..., cost_usd: _Optional[str] = ..., judged: _Optional[int] = ..., judged_score: _Optional[float] = ..., feedback_good: _Optional[int] = ..., feedback_bad: _Optional[int] = ...) -> None: ...

class RolloutEvidence(_message.Message):
    __slots__ = ("arms",)
    ARMS_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[ArmEvidence]
    def __init__(self, arms: _Optional[_Iterable[_Union[ArmEvidence, _Mapping]]] = ...) -> None: ...

class OutcomeQuery(_message.Message):
    __slots__ = ("workload", "model", "since", "limit")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workload: str
    model: str
    since: str
    limit: int
    def __init__(self, workload: _Optional[str] = ..., model: _Optional[str] = ..., since: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class JudgedAnswer(_message.Message):
    __slots__ = ("request_id", "occurred_at", "signals", "prior", "confidence", "outcome", "score", "reference_model", "prompt_form", "tier")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FORM_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    occurred_at: str
    signals: _common_pb2.ConfidenceSignals
    prior: float
    confidence: float
    outcome: str
    score: float
    reference_model: str
    prompt_form: _containers.RepeatedScalarFieldContainer[float]
    tier: str
    def __init__(self, request_id: _Optional[str] = ..., occurred_at: _Optional[str] = ..., signals: _Optional[_Union[_common_pb2.ConfidenceSignals, _Mapping]] = ..., prior: _Optional[float] = ..., confidence: _Optional[float] = ..., outcome: _Optional[str] = ..., score: _Optional[float] = ..., reference_model: _Optional[str] = ..., prompt_form: _Optional[_Iterable[float]] = ..., tier: _Optional[str] = ...) -> None: ...

class OutcomeList(_message.Message):
    __slots__ = ("model", "answers")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    model: str
    answers: _containers.RepeatedCompositeFieldContainer[JudgedAnswer]
    def __init__(self, model: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[JudgedAnswer, _Mapping]]] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("holder", "tenant", "workload", "period", "held_usd", "reserved_usd", "need_usd", "want_usd")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    HELD_USD_FIELD_NUMBER: _ClassVar[int]
    RESERVED_USD_FIELD_NUMBER: _ClassVar[int]
    NEED_USD_FIELD_NUMBER: _ClassVar[int]
    WANT_USD_FIELD_NUMBER: _ClassVar[int]
    holder: str
    tenant: str
    workload: str
    period: str
    held_usd: str
    reserved_usd: str
    need_usd: str
    want_usd: str
    def __init__(self, holder: _Optional[str] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., period: _Optional[str] = ..., held_usd: _Optional[str] = ..., reserved_usd: _Optional[str] = ..., need_usd: _Optional[str] = ..., want_usd: _Optional[str] = ...) -> None: ...

class LeaseReply(_message.Message):
    __slots__ = ("held_usd", "granted", "ttl_s", "limit_usd", "committed_usd", "strict", "period_start", "no_budget", "error")
    HELD_USD_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_USD_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    NO_BUDGET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    held_usd: str
    granted: bool
    ttl_s: float
    limit_usd: str
    committed_usd: str
    strict: bool
    period_start: str
    no_budget: bool
    error: str
    def __init__(self, held_usd: _Optional[str] = ..., granted: _Optional[bool] = ..., ttl_s: _Optional[float] = ..., limit_usd: _Optional[str] = ..., committed_usd: _Optional[str] = ..., strict: _Optional[bool] = ..., period_start: _Optional[str] = ..., no_budget: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
