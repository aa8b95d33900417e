from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_LOCAL: _ClassVar[Tier]
    TIER_HOSTED_OPEN: _ClassVar[Tier]
    TIER_CLOSED: _ClassVar[Tier]
    TIER_FRONTIER: _ClassVar[Tier]

class DataClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_CLASS_UNSPECIFIED: _ClassVar[DataClass]
    DATA_CLASS_PUBLIC: _ClassVar[DataClass]
    DATA_CLASS_INTERNAL: _ClassVar[DataClass]
    DATA_CLASS_CONFIDENTIAL: _ClassVar[DataClass]
    DATA_CLASS_REGULATED: _ClassVar[DataClass]

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_CHAT: _ClassVar[TaskType]
    TASK_TYPE_EXTRACTION: _ClassVar[TaskType]
    TASK_TYPE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_SUMMARISATION: _ClassVar[TaskType]
    TASK_TYPE_TRANSLATION: _ClassVar[TaskType]
    TASK_TYPE_CODE: _ClassVar[TaskType]
    TASK_TYPE_MATH: _ClassVar[TaskType]
    TASK_TYPE_REASONING: _ClassVar[TaskType]
    TASK_TYPE_CREATIVE: _ClassVar[TaskType]
TIER_UNSPECIFIED: Tier
TIER_LOCAL: Tier
TIER_HOSTED_OPEN: Tier
TIER_CLOSED: Tier
TIER_FRONTIER: Tier
DATA_CLASS_UNSPECIFIED: DataClass
DATA_CLASS_PUBLIC: DataClass
DATA_CLASS_INTERNAL: DataClass
DATA_CLASS_CONFIDENTIAL: DataClass
DATA_CLASS_REGULATED: DataClass
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_CHAT: TaskType
TASK_TYPE_EXTRACTION: TaskType
TASK_TYPE_CLASSIFICATION: TaskType
TASK_TYPE_SUMMARISATION: TaskType
TASK_TYPE_TRANSLATION: TaskType
TASK_TYPE_CODE: TaskType
TASK_TYPE_MATH: TaskType
TASK_TYPE_REASONING: TaskType
TASK_TYPE_CREATIVE: TaskType

class Message(_message.Message):
    __slots__ = ("role", "content", "parts", "name", "tool_calls", "tool_call_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    parts: _containers.RepeatedCompositeFieldContainer[ContentPart]
    name: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[ContentPart, _Mapping]]] = ..., name: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ...) -> None: ...

class ContentPart(_message.Message):
    __slots__ = ("type", "text", "image_url", "detail")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    type: str
    text: str
    image_url: str
    detail: str
    def __init__(self, type: _Optional[str] = ..., text: _Optional[str] = ..., image_url: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters", "strict")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: str
    strict: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[str] = ..., strict: _Optional[bool] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class GenerationParams(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "stop", "seed", "response_format", "json_schema", "tools", "tool_choice", "parallel_tool_calls")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    response_format: str
    json_schema: str
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    tool_choice: str
    parallel_tool_calls: bool
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., response_format: _Optional[str] = ..., json_schema: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., tool_choice: _Optional[str] = ..., parallel_tool_calls: _Optional[bool] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens", "image_input_tokens", "audio_input_tokens", "reasoning_output_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_1H_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    cache_write_1h_input_tokens: int
    image_input_tokens: int
    audio_input_tokens: int
    reasoning_output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_read_input_tokens: _Optional[int] = ..., cache_write_input_tokens: _Optional[int] = ..., cache_write_1h_input_tokens: _Optional[int] = ..., image_input_tokens: _Optional[int] = ..., audio_input_tokens: _Optional[int] = ..., reasoning_output_tokens: _Optional[int] = ...) -> None: ...

class ConfidenceSignals(_message.Message):
    __slots__ = ("has_logprobs", "mean_logprob", "min_logprob", "low_prob_token_share", "token_count")
    HAS_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    MEAN_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    MIN_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    LOW_PROB_TOKEN_SHARE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    has_logprobs: bool
    mean_logprob: float
    min_logprob: float
    low_prob_token_share: float
    token_count: int
    def __init__(self, has_logprobs: _Optional[bool] = ..., mean_logprob: _Optional[float] = ..., min_logprob: _Optional[float] = ..., low_prob_token_share: _Optional[float] = ..., token_count: _Optional[int] = ...) -> None: ...
