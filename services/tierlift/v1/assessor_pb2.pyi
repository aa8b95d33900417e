from tierlift.v1 import events_pb2 as _events_pb2
from tierlift.v1 import ledger_pb2 as _ledger_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutSpec(_message.Message):
    __slots__ = ("workload", "from_model", "to_model", "stages", "guardrails", "judge", "max_shadow_usd_per_day", "candidate_policy")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_SHADOW_USD_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    workload: str
    from_model: str
    to_model: str
    stages: _containers.RepeatedScalarFieldContainer[int]
    guardrails: _events_pb2.Guardrails
    judge: _events_pb2.JudgeSpec
    max_shadow_usd_per_day: str
    candidate_policy: str
    def __init__(self, workload: _Optional[str] = ..., from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., stages: _Optional[_Iterable[int]] = ..., guardrails: _Optional[_Union[_events_pb2.Guardrails, _Mapping]] = ..., judge: _Optional[_Union[_events_pb2.JudgeSpec, _Mapping]] = ..., max_shadow_usd_per_day: _Optional[str] = ..., candidate_policy: _Optional[str] = ...) -> None: ...

class RolloutChange(_message.Message):
    __slots__ = ("rollout_id", "action", "reason")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    action: str
    reason: str
    def __init__(self, rollout_id: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RolloutQuery(_message.Message):
    __slots__ = ("rollout_id", "workload")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    workload: str
    def __init__(self, rollout_id: _Optional[str] = ..., workload: _Optional[str] = ...) -> None: ...

class RolloutListQuery(_message.Message):
    __slots__ = ("workload", "status", "limit")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workload: str
    status: str
    limit: int
    def __init__(self, workload: _Optional[str] = ..., status: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RolloutList(_message.Message):
    __slots__ = ("rollouts",)
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[_events_pb2.RolloutState]
    def __init__(self, rollouts: _Optional[_Iterable[_Union[_events_pb2.RolloutState, _Mapping]]] = ...) -> None: ...

class GuardrailCheck(_message.Message):
    __slots__ = ("name", "verdict", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    verdict: str
    detail: str
    def __init__(self, name: _Optional[str] = ..., verdict: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class RolloutReport(_message.Message):
    __slots__ = ("state", "evidence", "checks", "history")
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    state: _events_pb2.RolloutState
    evidence: _ledger_pb2.RolloutEvidence
    checks: _containers.RepeatedCompositeFieldContainer[GuardrailCheck]
    history: _containers.RepeatedCompositeFieldContainer[_events_pb2.RolloutState]
    def __init__(self, state: _Optional[_Union[_events_pb2.RolloutState, _Mapping]] = ..., evidence: _Optional[_Union[_ledger_pb2.RolloutEvidence, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[GuardrailCheck, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[_events_pb2.RolloutState, _Mapping]]] = ...) -> None: ...

class SuiteRequest(_message.Message):
    __slots__ = ("workload", "models")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    workload: str
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workload: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class SuitePathResult(_message.Message):
    __slots__ = ("model", "items", "passed", "score", "baseline", "regressed", "failures")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    REGRESSED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    model: str
    items: int
    passed: int
    score: float
    baseline: float
    regressed: bool
    failures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., items: _Optional[int] = ..., passed: _Optional[int] = ..., score: _Optional[float] = ..., baseline: _Optional[float] = ..., regressed: _Optional[bool] = ..., failures: _Optional[_Iterable[str]] = ...) -> None: ...

class SuiteReport(_message.Message):
    __slots__ = ("workload", "paths")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    workload: str
    paths: _containers.RepeatedCompositeFieldContainer[SuitePathResult]
    def __init__(self, workload: _Optional[str] = ..., paths: _Optional[_Iterable[_Union[SuitePathResult, _Mapping]]] = ...) -> None: ...
