"""The client library for internal apps: `from tierlift.client import Tierlift`.

with Tierlift("router:50051", api_key=KEY, workload="faq") as tl:
    answer = tl.complete("What is the capital of France?")
    print(answer.text, answer.tier, answer.cost_usd)
"""

from tierlift.client._client import AsyncTierlift, Completion, Tierlift
from tierlift.client._errors import (
    DeadlineExceeded,
    InvalidRequest,
    NotServable,
    PermissionDenied,
    RateLimited,
    TierliftError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AsyncTierlift",
    "Completion",
    "DeadlineExceeded",
    "InvalidRequest",
    "NotServable",
    "PermissionDenied",
    "RateLimited",
    "Tierlift",
    "TierliftError",
    "Unauthenticated",
    "Unavailable",
]
