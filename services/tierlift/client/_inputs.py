"""What the client checks before it calls: arguments protobuf would refuse with a bare
ValueError (or take silently) are `InvalidRequest` naming the field, as the router names it; and
the TIERLIFT_* address variables, one set of names for the client and the CLI."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from tierlift.client._errors import InvalidRequest

# the address variables, and the names the CLI read before (still taken, with a warning)
ADDRESS_VARIABLES = {
    "router": "TIERLIFT_ADDRESS",
    "ledger": "TIERLIFT_LEDGER_ADDRESS",
    "assessor": "TIERLIFT_ASSESSOR_ADDRESS",
}
DEPRECATED_NAMES = {
    "TIERLIFT_ADDRESS": "TIERLIFT_ROUTER_ADDR",
    "TIERLIFT_LEDGER_ADDRESS": "TIERLIFT_LEDGER_ADDR",
    "TIERLIFT_ASSESSOR_ADDRESS": "TIERLIFT_ASSESSOR_ADDR",
}


def env_address(name: str, env: Mapping[str, str] | None = None) -> str:
    """The address in variable `name` ("" if unset); its old name is still read, with a
    DeprecationWarning that names the new one."""
    env = os.environ if env is None else env
    if value := env.get(name):
        return value
    old = DEPRECATED_NAMES[name]
    if value := env.get(old):
        warnings.warn(f"{old} is deprecated: set {name} instead", DeprecationWarning, stacklevel=3)
    return value or ""


def invalid(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


@contextlib.contextmanager
def field(name: str) -> Iterator[None]:
    """Whatever protobuf refuses while `name` is set becomes InvalidRequest naming it."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise invalid(name, str(exc)) from None


def whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"{value!r} is not a whole number")
    if not low <= value <= high:
        raise invalid(name, f"{value} is outside [{low}, {high}]")
    return value


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(name, f"{value!r} is not a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid(name, f"{value} is not a finite number")
    return float(value)


def choice(name: str, value: Any, enum: Any, prefix: str) -> int:
    """`value` ("public", "LOCAL") as the enum's number; the error lists the choices."""
    names = [v.name.removeprefix(prefix).lower() for v in enum.DESCRIPTOR.values if not v.name.endswith("UNSPECIFIED")]
    if not isinstance(value, str) or value.lower() not in names:
        raise invalid(name, f"{value!r} is not one of {', '.join(names)}")
    return int(enum.Value(prefix + value.upper()))
