"""`tierlift serve --components`: which components one process hosts (tierlift/combined.py)."""

from __future__ import annotations

import pytest

from tierlift.adapters.main import adapter_settings
from tierlift.combined import Components, parse_components
from tierlift.core.config import ConfigError
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


def test_each_hosted_adapter_reads_its_own_settings_over_the_process_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process, one environment: an adapter's TIERLIFT_ADAPTER_<NAME>__<SETTING> is its own."""
    monkeypatch.setenv("TIERLIFT_UPSTREAM_TIMEOUT_S", "30")
    monkeypatch.setenv("TIERLIFT_ADAPTER_OPENAI_WIRE__UPSTREAM_TIMEOUT_S", "5")
    monkeypatch.setenv("TIERLIFT_ADAPTER_ANTHROPIC__UPSTREAM_MAX_RETRIES", "0")
    wire, anthropic = adapter_settings("openai-wire", "openai"), adapter_settings("anthropic", "anthropic")
    assert (wire.adapter_name, wire.adapter_backend) == ("openai-wire", "openai")
    assert (wire.upstream_timeout_s, wire.upstream_max_retries) == (5.0, 2)
    assert (anthropic.upstream_timeout_s, anthropic.upstream_max_retries) == (30.0, 0)


def test_an_adapter_process_of_its_own_reads_its_own_variables_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERLIFT_ADAPTER_NAME", "vllm-pool")
    monkeypatch.setenv("TIERLIFT_ADAPTER_BACKEND", "vllm")
    monkeypatch.setenv("TIERLIFT_ADAPTER_VLLM_POOL__VLLM_MAX_WAITING", "3")
    settings = adapter_settings()
    assert (settings.adapter_name, settings.adapter_backend, settings.vllm_max_waiting) == ("vllm-pool", "vllm", 3)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TIERLIFT_ADAPTER_OPENAI__UPSTREAM_TIMEOUT_S", "-1", "TIERLIFT_ADAPTER_OPENAI__UPSTREAM_TIMEOUT_S: Input"),
        ("TIERLIFT_ADAPTER_OPENAI__LOG_LEVEL", "debug", "TIERLIFT_ADAPTER_OPENAI__LOG_LEVEL: not a setting one"),
    ],
)
def test_an_own_setting_that_cannot_be_is_refused_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        adapter_settings("openai", "openai")
