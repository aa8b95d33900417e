from switchyard.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpendQuery(_message.Message):
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

class SpendLine(_message.Message):
    __slots__ = ("tenant", "workload", "tier", "model", "attempts", "input_tokens", "output_tokens", "cost_usd")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    tier: _common_pb2.Tier
    model: str
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: str
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., attempts: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ...) -> None: ...

class SpendReport(_message.Message):
    __slots__ = ("lines", "total_cost_usd", "total_attempts")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[SpendLine]
    total_cost_usd: str
    total_attempts: int
    def __init__(self, lines: _Optional[_Iterable[_Union[SpendLine, _Mapping]]] = ..., total_cost_usd: _Optional[str] = ..., total_attempts: _Optional[int] = ...) -> None: ...

class AttemptQuery(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class LedgerAttempt(_message.Message):
    __slots__ = ("event_id", "request_id", "attempt_index", "tenant", "workload", "tier", "model", "outcome", "input_tokens", "output_tokens", "cost_usd", "price_version")
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
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., attempt_index: _Optional[int] = ..., tenant: _Optional[str] = ..., workload: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., model: _Optional[str] = ..., outcome: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[str] = ..., price_version: _Optional[str] = ...) -> None: ...

class AttemptList(_message.Message):
    __slots__ = ("attempts",)
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[LedgerAttempt]
    def __init__(self, attempts: _Optional[_Iterable[_Union[LedgerAttempt, _Mapping]]] = ...) -> None: ...
