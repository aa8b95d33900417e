import pytest

from tierlift.core.config import BusSettings, ConfigError, load_settings


def test_malformed_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERLIFT_SHUTDOWN_GRACE_S", "soon")
    with pytest.raises(ConfigError, match="TIERLIFT_SHUTDOWN_GRACE_S"):
        load_settings(BusSettings)


def test_bad_nats_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERLIFT_NATS_URL", "http://localhost:4222")
    with pytest.raises(ConfigError, match="TIERLIFT_NATS_URL"):
        load_settings(BusSettings)


def test_router_adapter_list_must_be_name_equals_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from tierlift.router.main import RouterSettings

    monkeypatch.setenv("TIERLIFT_ADAPTERS", "llamacpp-local=127.0.0.1:5001,broken")
    with pytest.raises(ConfigError, match=r"TIERLIFT_ADAPTERS: .*'broken'"):
        load_settings(RouterSettings)
    monkeypatch.setenv("TIERLIFT_ADAPTERS", "llamacpp-local=127.0.0.1:5001, openai=10.0.0.2:50051")
    assert load_settings(RouterSettings).adapter_addresses() == {
        "llamacpp-local": "127.0.0.1:5001",
        "openai": "10.0.0.2:50051",
    }


@pytest.mark.parametrize("value", ["0", "-5", "100000"])
def test_ledger_ingest_batch_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from tierlift.ledger.main import LedgerSettings

    monkeypatch.setenv("TIERLIFT_INGEST_BATCH", value)
    with pytest.raises(ConfigError, match="TIERLIFT_INGEST_BATCH"):
        load_settings(LedgerSettings)
