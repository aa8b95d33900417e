"""Identifier formats shared by the API and the ledger."""

import re

# tenants, workloads, regions: lowercase letters, digits and '-', 2 to 63 characters
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def is_slug(value: str) -> bool:
    """A whole-string match: `re.match` with `$` would accept a trailing newline."""
    return SLUG.fullmatch(value) is not None


def shown(value: str, limit: int = 64) -> str:
    """`value` quoted for an error message, cut to `limit` characters: an error must not echo a
    megabyte back (gRPC's metadata limit would turn it into RESOURCE_EXHAUSTED)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"
