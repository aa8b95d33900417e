from tierlift.v1 import classifier_pb2 as _classifier_pb2
from tierlift.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_ANSWERED: _ClassVar[Outcome]
    OUTCOME_LOW_CONFIDENCE: _ClassVar[Outcome]
    OUTCOME_FAULT: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_ANSWERED: Outcome
OUTCOME_LOW_CONFIDENCE: Outcome
OUTCOME_FAULT: Outcome

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[str]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "tenant", "rating", "regenerated", "comment")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    REGENERATED_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    tenant: str
    rating: int
    regenerated: bool
    comment: str
    def __init__(self, request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., rating: _Optional[int] = ..., regenerated: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class FeedbackAck(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class Constraints(_message.Message):
    __slots__ = ("data_class", "region", "max_latency_ms", "max_cost_usd", "quality_bar", "allowed_tiers", "models")
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    QUALITY_BAR_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TIERS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    data_class: _common_pb2.DataClass
    region: str
    max_latency_ms: int
    max_cost_usd: str
    quality_bar: float
    allowed_tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.Tier]
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., region: _Optional[str] = ..., max_latency_ms: _Optional[int] = ..., max_cost_usd: _Optional[str] = ..., quality_bar: _Optional[float] = ..., allowed_tiers: _Optional[_Iterable[_Union[_common_pb2.Tier, str]]] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("tenant", "workload", "messages", "params", "constraints", "idempotency_key", "cohort_key")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    COHORT_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    params: _common_pb2.GenerationParams
    constraints: Constraints
    idempotency_key: str
    cohort_key: str
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., params: _Optional[_Union[_common_pb2.GenerationParams, _Mapping]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., cohort_key: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("index", "tier", "model", "adapter", "outcome", "confidence", "usage", "cost_usd", "latency_ms", "error", "reason", "signals", "prior", "usage_estimated", "unsettled")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    USAGE_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    UNSETTLED_FIELD_NUMBER: _ClassVar[int]
    index: int
    tier: _common_pb2.Tier
    model: str
    adapter: str
    outcome: Outcome
    confidence: float
    usage: _common_pb2.Usage
    cost_usd: str
    latency_ms: float
    error: str
    reason: str
    signals: _common_pb2.ConfidenceSignals
    prior: float
    usage_estimated: bool
    unsettled: bool
    def __init__(self, index: _Optional[int] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., adapter: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., confidence: _Optional[float] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., cost_usd: _Optional[str] = ..., latency_ms: _Optional[float] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ..., signals: _Optional[_Union[_common_pb2.ConfidenceSignals, _Mapping]] = ..., prior: _Optional[float] = ..., usage_estimated: _Optional[bool] = ..., unsettled: _Optional[bool] = ...) -> None: ...

class Rung(_message.Message):
    __slots__ = ("tier", "model", "adapter", "reason")
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tier: _common_pb2.Tier
    model: str
    adapter: str
    reason: str
    def __init__(self, tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., adapter: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Exclusion(_message.Message):
    __slots__ = ("model", "reason")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    model: str
    reason: str
    def __init__(self, model: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RoutingPlan(_message.Message):
    __slots__ = ("request_id", "classification", "ladder", "excluded", "confidence_threshold", "reasons", "rollout_id", "arm", "execution_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    LADDER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    classification: _classifier_pb2.Classification
    ladder: _containers.RepeatedCompositeFieldContainer[Rung]
    excluded: _containers.RepeatedCompositeFieldContainer[Exclusion]
    confidence_threshold: float
    reasons: _containers.RepeatedScalarFieldContainer[str]
    rollout_id: str
    arm: str
    execution_id: str
    def __init__(self, request_id: _Optional[str] = ..., classification: _Optional[_Union[_classifier_pb2.Classification, _Mapping]] = ..., ladder: _Optional[_Iterable[_Union[Rung, _Mapping]]] = ..., excluded: _Optional[_Iterable[_Union[Exclusion, _Mapping]]] = ..., confidence_threshold: _Optional[float] = ..., reasons: _Optional[_Iterable[str]] = ..., rollout_id: _Optional[str] = ..., arm: _Optional[str] = ..., execution_id: _Optional[str] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("request_id", "text", "tier", "model", "confidence", "usage", "total_cost_usd", "attempts", "plan", "tool_calls", "finish_reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    tier: _common_pb2.Tier
    model: str
    confidence: float
    usage: _common_pb2.Usage
    total_cost_usd: str
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    plan: RoutingPlan
    tool_calls: _containers.RepeatedCompositeFieldContainer[_common_pb2.ToolCall]
    finish_reason: str
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., confidence: _Optional[float] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., total_cost_usd: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., plan: _Optional[_Union[RoutingPlan, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[_common_pb2.ToolCall, _Mapping]]] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("tenant", "workload", "inputs", "constraints", "dimensions")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    constraints: Constraints
    dimensions: int
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., dimensions: _Optional[int] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("request_id", "model", "tier", "vectors", "usage", "total_cost_usd", "attempts", "plan")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: str
    tier: _common_pb2.Tier
    vectors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Vector]
    usage: _common_pb2.Usage
    total_cost_usd: str
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    plan: RoutingPlan
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., vectors: _Optional[_Iterable[_Union[_common_pb2.Vector, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., total_cost_usd: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., plan: _Optional[_Union[RoutingPlan, _Mapping]] = ...) -> None: ...

class CompleteChunk(_message.Message):
    __slots__ = ("text", "final", "request_id", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    final: CompleteResponse
    request_id: str
    model: str
    def __init__(self, text: _Optional[str] = ..., final: _Optional[_Union[CompleteResponse, _Mapping]] = ..., request_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...
