import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tierlift.v1 import common_pb2 as _common_pb2
from tierlift.v1 import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttemptFinished(_message.Message):
    __slots__ = ("event_id", "occurred_at", "request_id", "tenant", "workload", "attempt", "kind")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    tenant: str
    workload: str
    attempt: _router_pb2.Attempt
    kind: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., attempt: _Optional[_Union[_router_pb2.Attempt, _Mapping]] = ..., kind: _Optional[str] = ...) -> None: ...

class AttemptStarted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "attempt", "settle_after", "reserved_cost_usd", "plan")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    attempt: AttemptFinished
    settle_after: _timestamp_pb2.Timestamp
    reserved_cost_usd: str
    plan: _router_pb2.RoutingPlan
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[_Union[AttemptFinished, _Mapping]] = ..., settle_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reserved_cost_usd: _Optional[str] = ..., plan: _Optional[_Union[_router_pb2.RoutingPlan, _Mapping]] = ...) -> None: ...

class AttemptUsage(_message.Message):
    __slots__ = ("event_id", "occurred_at", "attempt")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    attempt: AttemptFinished
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[_Union[AttemptFinished, _Mapping]] = ...) -> None: ...

class RequestCompleted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "request_id", "tenant", "workload", "answered", "final_tier", "final_model", "attempt_count", "escalated", "total_cost_usd", "error", "prompt_sha256", "rollout_id", "arm", "prompt_form", "data_class", "reasons", "excluded", "ladder", "trace_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    FINAL_TIER_FIELD_NUMBER: _ClassVar[int]
    FINAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROMPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FORM_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    LADDER_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    tenant: str
    workload: str
    answered: bool
    final_tier: _common_pb2.Tier
    final_model: str
    attempt_count: int
    escalated: bool
    total_cost_usd: str
    error: str
    prompt_sha256: str
    rollout_id: str
    arm: str
    prompt_form: _containers.RepeatedScalarFieldContainer[float]
    data_class: _common_pb2.DataClass
    reasons: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[_router_pb2.Exclusion]
    ladder: _containers.RepeatedCompositeFieldContainer[_router_pb2.Rung]
    trace_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., answered: _Optional[bool] = ..., final_tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., final_model: _Optional[str] = ..., attempt_count: _Optional[int] = ..., escalated: _Optional[bool] = ..., total_cost_usd: _Optional[str] = ..., error: _Optional[str] = ..., prompt_sha256: _Optional[str] = ..., rollout_id: _Optional[str] = ..., arm: _Optional[str] = ..., prompt_form: _Optional[_Iterable[float]] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[_router_pb2.Exclusion, _Mapping]]] = ..., ladder: _Optional[_Iterable[_Union[_router_pb2.Rung, _Mapping]]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class RequestSettled(_message.Message):
    __slots__ = ("completed", "attempts")
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    completed: RequestCompleted
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptFinished]
    def __init__(self, completed: _Optional[_Union[RequestCompleted, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[AttemptFinished, _Mapping]]] = ...) -> None: ...

class JudgeSpec(_message.Message):
    __slots__ = ("method", "json_schema", "agree_at", "model", "rubric")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    AGREE_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_FIELD_NUMBER: _ClassVar[int]
    method: str
    json_schema: str
    agree_at: float
    model: str
    rubric: str
    def __init__(self, method: _Optional[str] = ..., json_schema: _Optional[str] = ..., agree_at: _Optional[float] = ..., model: _Optional[str] = ..., rubric: _Optional[str] = ...) -> None: ...

class Answers(_message.Message):
    __slots__ = ("messages", "live_text", "shadow_text", "live_sha256", "shadow_sha256", "live_normalised_sha256", "shadow_normalised_sha256", "text_kept")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    LIVE_TEXT_FIELD_NUMBER: _ClassVar[int]
    SHADOW_TEXT_FIELD_NUMBER: _ClassVar[int]
    LIVE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SHADOW_SHA256_FIELD_NUMBER: _ClassVar[int]
    LIVE_NORMALISED_SHA256_FIELD_NUMBER: _ClassVar[int]
    SHADOW_NORMALISED_SHA256_FIELD_NUMBER: _ClassVar[int]
    TEXT_KEPT_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    live_text: str
    shadow_text: str
    live_sha256: str
    shadow_sha256: str
    live_normalised_sha256: str
    shadow_normalised_sha256: str
    text_kept: bool
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., live_text: _Optional[str] = ..., shadow_text: _Optional[str] = ..., live_sha256: _Optional[str] = ..., shadow_sha256: _Optional[str] = ..., live_normalised_sha256: _Optional[str] = ..., shadow_normalised_sha256: _Optional[str] = ..., text_kept: _Optional[bool] = ...) -> None: ...

class ShadowFinished(_message.Message):
    __slots__ = ("event_id", "occurred_at", "request_id", "attempt", "tenant", "workload", "live_model", "live_tier", "data_class", "judge", "answers", "rollout_id", "candidate_is_live", "sealed_answers")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    LIVE_MODEL_FIELD_NUMBER: _ClassVar[int]
    LIVE_TIER_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_IS_LIVE_FIELD_NUMBER: _ClassVar[int]
    SEALED_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    attempt: _router_pb2.Attempt
    tenant: str
    workload: str
    live_model: str
    live_tier: _common_pb2.Tier
    data_class: _common_pb2.DataClass
    judge: JudgeSpec
    answers: Answers
    rollout_id: str
    candidate_is_live: bool
    sealed_answers: bytes
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., attempt: _Optional[_Union[_router_pb2.Attempt, _Mapping]] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., live_model: _Optional[str] = ..., live_tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., judge: _Optional[_Union[JudgeSpec, _Mapping]] = ..., answers: _Optional[_Union[Answers, _Mapping]] = ..., rollout_id: _Optional[str] = ..., candidate_is_live: _Optional[bool] = ..., sealed_answers: _Optional[bytes] = ...) -> None: ...

class QualityScored(_message.Message):
    __slots__ = ("event_id", "occurred_at", "request_id", "tenant", "workload", "model", "reference_model", "method", "score", "source", "rollout_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    tenant: str
    workload: str
    model: str
    reference_model: str
    method: str
    score: float
    source: str
    rollout_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., model: _Optional[str] = ..., reference_model: _Optional[str] = ..., method: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ..., rollout_id: _Optional[str] = ...) -> None: ...

class QualityAlert(_message.Message):
    __slots__ = ("event_id", "occurred_at", "workload", "model", "reason", "observed", "baseline", "window")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    workload: str
    model: str
    reason: str
    observed: float
    baseline: float
    window: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workload: _Optional[str] = ..., model: _Optional[str] = ..., reason: _Optional[str] = ..., observed: _Optional[float] = ..., baseline: _Optional[float] = ..., window: _Optional[int] = ...) -> None: ...

class FeedbackGiven(_message.Message):
    __slots__ = ("event_id", "occurred_at", "request_id", "tenant", "rating", "regenerated", "comment")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    REGENERATED_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    tenant: str
    rating: int
    regenerated: bool
    comment: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., rating: _Optional[int] = ..., regenerated: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class BudgetState(_message.Message):
    __slots__ = ("event_id", "occurred_at", "tenant", "workload", "period", "spent_usd", "limit_usd", "state", "action", "version", "strict")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SPENT_USD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    tenant: str
    workload: str
    period: str
    spent_usd: str
    limit_usd: str
    state: str
    action: str
    version: int
    strict: bool
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., period: _Optional[str] = ..., spent_usd: _Optional[str] = ..., limit_usd: _Optional[str] = ..., state: _Optional[str] = ..., action: _Optional[str] = ..., version: _Optional[int] = ..., strict: _Optional[bool] = ...) -> None: ...

class KeyState(_message.Message):
    __slots__ = ("event_id", "occurred_at", "key_id", "secret_sha256", "tenant", "role", "workloads", "expires_at", "revoked")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    key_id: str
    secret_sha256: str
    tenant: str
    role: str
    workloads: _containers.RepeatedScalarFieldContainer[str]
    expires_at: _timestamp_pb2.Timestamp
    revoked: bool
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., secret_sha256: _Optional[str] = ..., tenant: _Optional[str] = ..., role: _Optional[str] = ..., workloads: _Optional[_Iterable[str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked: _Optional[bool] = ...) -> None: ...

class KeysUsed(_message.Message):
    __slots__ = ("event_id", "occurred_at", "last_used")
    class LastUsedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _timestamp_pb2.Timestamp
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    last_used: _containers.MessageMap[str, _timestamp_pb2.Timestamp]
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used: _Optional[_Mapping[str, _timestamp_pb2.Timestamp]] = ...) -> None: ...

class Guardrails(_message.Message):
    __slots__ = ("min_samples", "min_duration_s", "max_quality_drop", "max_p95_ms", "max_error_rate", "max_cost_per_quality_usd", "shadow_sample")
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MAX_QUALITY_DROP_FIELD_NUMBER: _ClassVar[int]
    MAX_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_QUALITY_USD_FIELD_NUMBER: _ClassVar[int]
    SHADOW_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    min_samples: int
    min_duration_s: float
    max_quality_drop: float
    max_p95_ms: float
    max_error_rate: float
    max_cost_per_quality_usd: str
    shadow_sample: float
    def __init__(self, min_samples: _Optional[int] = ..., min_duration_s: _Optional[float] = ..., max_quality_drop: _Optional[float] = ..., max_p95_ms: _Optional[float] = ..., max_error_rate: _Optional[float] = ..., max_cost_per_quality_usd: _Optional[str] = ..., shadow_sample: _Optional[float] = ...) -> None: ...

class RolloutState(_message.Message):
    __slots__ = ("event_id", "occurred_at", "rollout_id", "workload", "from_model", "to_model", "stages", "stage_index", "status", "guardrails", "started_at", "stage_started_at", "reason", "actor", "revision", "judge", "max_shadow_usd_per_day", "candidate_policy", "candidate_policy_version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    STAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STAGE_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_SHADOW_USD_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    rollout_id: str
    workload: str
    from_model: str
    to_model: str
    stages: _containers.RepeatedScalarFieldContainer[int]
    stage_index: int
    status: str
    guardrails: Guardrails
    started_at: _timestamp_pb2.Timestamp
    stage_started_at: _timestamp_pb2.Timestamp
    reason: str
    actor: str
    revision: int
    judge: JudgeSpec
    max_shadow_usd_per_day: str
    candidate_policy: str
    candidate_policy_version: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rollout_id: _Optional[str] = ..., workload: _Optional[str] = ..., from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., stages: _Optional[_Iterable[int]] = ..., stage_index: _Optional[int] = ..., status: _Optional[str] = ..., guardrails: _Optional[_Union[Guardrails, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., revision: _Optional[int] = ..., judge: _Optional[_Union[JudgeSpec, _Mapping]] = ..., max_shadow_usd_per_day: _Optional[str] = ..., candidate_policy: _Optional[str] = ..., candidate_policy_version: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "occurred_at", "actor", "action", "target", "detail")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    target: str
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
