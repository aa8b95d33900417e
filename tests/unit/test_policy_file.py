"""The policy YAML: validated with errors that name the field, and hot-reloaded so that a good
new version takes effect and a bad one never does."""

from pathlib import Path

import pytest
import yaml

from tierlift.router._policy_source import DEFAULT_POLICY, PolicyError, PolicySource, load_policy, parse_policy
from tierlift.v1 import common_pb2 as T


def test_packaged_policy_keeps_regulated_data_on_local() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.tiers_for_data_class[T.DATA_CLASS_REGULATED] == frozenset({T.TIER_LOCAL})
    assert policy.threshold_for("anything") == policy.confidence_threshold


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"data_classes": {"PUBLIC": ["LOCAL"]}}, "missing ['CONFIDENTIAL', 'INTERNAL', 'REGULATED']"),
        ({"data_classes": {"PUBLIC": ["MOON"]}}, "data_classes.PUBLIC.0"),
        ({"workloads": {"faq": {"threshold": 0.4}}}, "workloads.faq"),
        ({"confidence_model": {"weights": [1.0], "bias": 0.0, "models": ["m"]}}, "confidence_model.weights"),
        ({"confidence_model": {"weights": [1.0] * 5, "bias": 0.0}}, "confidence_model.models"),
        ({"surprise": 1}, "surprise"),
        (  # a schema the judge could not use: every judged answer would be undecided
            {
                "workloads": {
                    "faq": {
                        "shadow": {
                            "sample": 0.1,
                            "max_usd_per_day": "1",
                            "models": ["m"],
                            "judge": {"method": "json_schema", "json_schema": {"type": 5}},
                        }
                    }
                }
            },
            "workloads.faq.shadow.judge.*json_schema is not a JSON Schema: 5 is not valid",
        ),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(change: dict[str, object], named: str) -> None:
    document = yaml.safe_load(DEFAULT_POLICY.read_text()) | change
    with pytest.raises(PolicyError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(yaml.safe_dump(document), "policy.yaml")


def test_a_changed_file_is_reloaded_and_a_broken_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    document = yaml.safe_load(DEFAULT_POLICY.read_text())
    path.write_text(yaml.safe_dump(document))
    source = PolicySource.from_file(path)
    assert not source.reload()  # unchanged

    document["version"] = "v2"
    document["workloads"] = {"faq": {"confidence_threshold": 0.7}}
    path.write_text(yaml.safe_dump(document))
    assert source.reload()
    assert source.current.version == "v2"
    assert source.current.threshold_for("faq") == 0.7

    path.write_text("version: v3\nconfidence_threshold: [")
    assert not source.reload()
    assert source.current.version == "v2"
    assert source.rejected == 1
    # refused, not raised: an exception here ended the router's watch and its reloads for good
    for broken in (b"version: v4\xff\xfe", b"[" * 100_000):
        path.write_bytes(broken)
        assert not source.reload()
    assert source.current.version == "v2" and source.rejected == 3


@pytest.mark.parametrize("text", ["[" * 100_000, "{a: " * 5_000, "version: " + "9" * 5_000])
def test_yaml_the_loader_cannot_read_is_a_policy_error(text: str) -> None:
    # each raised RecursionError or ValueError out of the loader: a candidate policy sent to
    # StartRollout answered UNKNOWN, and a policy file stopped the router's reloads
    with pytest.raises(PolicyError, match=r"policy\.yaml: YAML this loader cannot read"):
        parse_policy(text, "policy.yaml")
