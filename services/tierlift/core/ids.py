"""Identifier formats shared by the API and the ledger."""

import hashlib
import re

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

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


def content_key(message: Message) -> bytes:
    """A message's content as a 16-byte key (BLAKE2b of its deterministic serialisation): the
    caches of classifications hold thousands of requests, and one can be a context window long."""
    return hashlib.blake2b(message.SerializeToString(deterministic=True), digest_size=16).digest()


def nul_field(message: Message, prefix: str = "") -> str:
    """The first string in `message` (nested, repeated and map fields included) that holds NUL,
    as "<field>: contains a NUL character"; "" when none does. PostgreSQL's text cannot hold NUL:
    the ledger refuses such a request before a query sees it (psycopg's DataError was UNKNOWN)."""
    for field, value in message.ListFields():
        name = prefix + field.name
        entry = field.message_type
        if field.type == FieldDescriptor.TYPE_MESSAGE and entry is not None and entry.GetOptions().map_entry:
            if any(isinstance(key, str) and "\x00" in key for key in value):
                return f"{name}: a key contains a NUL character"
            items = [(f"{name}[{shown(str(key))}]", item) for key, item in value.items()]
        elif field.is_repeated:
            items = [(f"{name}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(name, value)]
        for where, item in items:
            if isinstance(item, str) and "\x00" in item:
                return f"{where}: contains a NUL character"
            if isinstance(item, Message) and (problem := nul_field(item, f"{where}.")):
                return problem
    return ""
