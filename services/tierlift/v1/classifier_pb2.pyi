from tierlift.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("messages", "declared_data_class", "tenant", "parts")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DECLARED_DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    declared_data_class: _common_pb2.DataClass
    tenant: str
    parts: _containers.RepeatedCompositeFieldContainer[Part]
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., declared_data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., tenant: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[Part, _Mapping]]] = ...) -> None: ...

class Part(_message.Message):
    __slots__ = ("field", "text")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    field: str
    text: str
    def __init__(self, field: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("task_type", "complexity", "data_class", "detected_data_class", "data_findings", "language", "token_estimate", "classifier_version", "small_model_ok", "prompt_form", "data_finding_fields")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    DETECTED_DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    DATA_FINDINGS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SMALL_MODEL_OK_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FORM_FIELD_NUMBER: _ClassVar[int]
    DATA_FINDING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    task_type: _common_pb2.TaskType
    complexity: float
    data_class: _common_pb2.DataClass
    detected_data_class: _common_pb2.DataClass
    data_findings: _containers.RepeatedScalarFieldContainer[str]
    language: str
    token_estimate: int
    classifier_version: str
    small_model_ok: float
    prompt_form: _containers.RepeatedScalarFieldContainer[float]
    data_finding_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_type: _Optional[_Union[_common_pb2.TaskType, str]] = ..., complexity: _Optional[float] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., detected_data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., data_findings: _Optional[_Iterable[str]] = ..., language: _Optional[str] = ..., token_estimate: _Optional[int] = ..., classifier_version: _Optional[str] = ..., small_model_ok: _Optional[float] = ..., prompt_form: _Optional[_Iterable[float]] = ..., data_finding_fields: _Optional[_Iterable[str]] = ...) -> None: ...
