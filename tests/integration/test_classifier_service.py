"""The classifier as it runs: its own process, started by the embedded stack."""

from pathlib import Path

from tests.topology import own_process
from tierlift.devstack import Stack
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2


def test_the_classifier_process_holds_no_torch(stack: Stack) -> None:
    """spaCy's thinc imports torch whenever it is installed; the classifier computes nothing with
    it and keeps it out (~250 MB per replica)."""
    own_process(stack, "classifier")
    request = classifier_pb2.ClassifyRequest(
        messages=[common_pb2.Message(role="user", content="Send the lease to Ines Roth, 3 Mill Lane, Leeds.")]
    )
    with stack.channel("classifier") as channel:
        labels = classifier_pb2_grpc.ClassifierStub(channel).Classify(request, timeout=30)
    assert "personal_record" in labels.data_findings  # the entity recogniser has run in that process

    mapped = Path(f"/proc/{stack.procs['classifier'].pid}/maps").read_text()
    assert "/thinc/" in mapped  # spaCy's machinery is loaded...
    assert "libtorch" not in mapped  # ...and torch is not
