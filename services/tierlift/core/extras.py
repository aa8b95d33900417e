"""What lies outside the `server` extra (pyproject.toml), and the error that names the extra to
install when a feature needs it: `minilm` (MiniLM itself, on torch) and `eval` (scikit-learn)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MissingExtra(ImportError):
    """A feature's packages are not installed; the message says which extra brings them."""


@contextmanager
def needs(extra: str, feature: str) -> Iterator[None]:
    """Imports in this block that find no module fail with a `MissingExtra` naming `extra`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        package = (exc.name or "a package").partition(".")[0]
        raise MissingExtra(
            f"{feature} needs {package}, which the `server` extra leaves out: pip install 'tierlift[{extra}]'"
        ) from exc
