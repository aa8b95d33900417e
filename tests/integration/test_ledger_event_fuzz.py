"""Property: whatever a producer puts in an attempt, settled-request, quality, audit or key-use
event (any field value its wire type can carry, drawn from the proto descriptors), the ledger either refuses it with a
reason (PoisonEvent: dead-lettered) or stores it; the write never fails. A write that fails
fails the whole batch at every redelivery, which is how a NaN, a long tenant and a NUL stalled
the ledger before. A real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_ledger_databases import CATALOG, postgres_url, store  # noqa: F401 (fixtures)
from tests.unit.test_rpc_fuzz import messages
from tierlift.core.bus import PoisonEvent
from tierlift.ledger import LedgerStore
from tierlift.ledger._ingest import price_attempt, settled_row
from tierlift.ledger._keys import KeyStore, audit_row, key_use_row
from tierlift.ledger._quality import QualityStore, alert_row, feedback_row, fitting, score_row
from tierlift.ledger._schema import feedback, quality_alerts, quality_scores
from tierlift.v1 import events_pb2

# most drawn model names are not in the catalog (refused at once): often take a real one
MODELS = st.one_of(st.none(), st.sampled_from([m.id for m in CATALOG.models]))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _stored_or_refused(write: Any, to_row: Any) -> None:
    try:
        row = to_row()
    except PoisonEvent:
        return  # refused with a reason (other errors are dead-lettered too, but are bugs here)
    write(row)  # must not raise


@FUZZ
@given(event=messages(events_pb2.AttemptFinished.DESCRIPTOR, events_pb2.AttemptFinished), model=MODELS)
def test_any_attempt_event_is_stored_or_refused_never_a_failed_write(
    store: LedgerStore,  # noqa: F811
    event: events_pb2.AttemptFinished,
    model: str | None,
) -> None:
    if model is not None:
        event.attempt.model = model
    if not (event.event_id and event.request_id):
        event.event_id, event.request_id = event.event_id or "e", event.request_id or "r"
    _stored_or_refused(lambda row: store.insert_attempts([row]), lambda: price_attempt(event, CATALOG))


@FUZZ
@given(event=messages(events_pb2.RequestSettled.DESCRIPTOR, events_pb2.RequestSettled), model=MODELS)
def test_any_settled_request_is_stored_or_refused_never_a_failed_write(
    store: LedgerStore,  # noqa: F811
    event: events_pb2.RequestSettled,
    model: str | None,
) -> None:
    done = event.completed
    for attempt in event.attempts:  # often the answering attempt of this very request
        if model is not None:
            attempt.attempt.model = model
            attempt.request_id, attempt.tenant, attempt.workload = done.request_id, done.tenant, done.workload
    _stored_or_refused(lambda row: store.insert_settled([row]), lambda: settled_row(event.SerializeToString(), CATALOG))


def _quality(table: Any, to_row: Any) -> tuple[Any, Any]:
    return fitting(table, to_row), lambda engine, rows: QualityStore(engine).insert(table, rows)


# (event type, its ledger row from the wire bytes, the write of such rows)
OTHER_EVENTS = [
    (events_pb2.QualityScored, *_quality(quality_scores, score_row)),
    (events_pb2.FeedbackGiven, *_quality(feedback, feedback_row)),
    (events_pb2.QualityAlert, *_quality(quality_alerts, alert_row)),
    (events_pb2.AuditEvent, audit_row, lambda engine, rows: KeyStore(engine).add_audit_events(rows)),
    (events_pb2.KeysUsed, key_use_row, lambda engine, rows: KeyStore(engine).mark_used(rows)),
]


@FUZZ
@given(data=st.data())
def test_any_quality_audit_or_key_use_event_is_stored_or_refused_never_a_failed_write(
    store: LedgerStore,  # noqa: F811
    data: st.DataObject,
) -> None:
    cls, to_row, write = data.draw(st.sampled_from(OTHER_EVENTS))
    event = data.draw(messages(cls.DESCRIPTOR, cls))
    if cls in (events_pb2.AuditEvent, events_pb2.KeysUsed):  # often past the required fields
        event.event_id = event.event_id or "e"
    if cls is events_pb2.AuditEvent:
        event.action = event.action or "a"
    _stored_or_refused(lambda row: write(store.engine, [row]), lambda: to_row(event.SerializeToString()))
