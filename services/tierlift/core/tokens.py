"""Token estimates before a model has counted them (the adapter reports the real count)."""

import math


def estimate_tokens(text: str) -> int:
    # ~4 characters a token for English with BPE tokenisers.
    return max(1, math.ceil(len(text) / 4))
