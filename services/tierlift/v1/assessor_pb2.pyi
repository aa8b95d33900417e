from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
