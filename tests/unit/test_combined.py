"""`tierlift serve --components`: which components one process hosts (tierlift/combined.py)."""

from __future__ import annotations

import pytest

from tierlift.combined import Components, parse_components
from tierlift.core.entry import StartupError


def test_all_is_the_request_path_with_every_listed_adapter_but_llamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERLIFT_ADAPTERS", "llamacpp-local=10.0.0.1:50060,openai=10.0.0.2:50060")
    assert parse_components("all") == Components(router=True, classifier=True, gateway=True, adapters={"openai": ""})


def test_named_components_and_adapters_with_their_backend() -> None:
    chosen = parse_components("router,classifier,adapter:llamacpp-local=llamacpp,adapter:openai")
    assert chosen == Components(router=True, classifier=True, adapters={"llamacpp-local": "llamacpp", "openai": ""})


@pytest.mark.parametrize("spec", ["bogus", "classifier", "adapter:openai", "adapter:", ""])
def test_a_spec_that_cannot_run_fails_at_start_naming_the_flag(spec: str) -> None:
    with pytest.raises(StartupError, match="--components"):
        parse_components(spec)
