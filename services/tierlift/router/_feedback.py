"""Router.Feedback: an app's verdict on an answer (a rating, "the user asked again", a comment),
checked and turned into a `tierlift.feedback.given` event. The ledger stores it against the
model path that answered the request, for `tierlift quality`."""

from __future__ import annotations

import hashlib
import uuid

from tierlift.core.ids import is_slug, shown
from tierlift.router._validation import InvalidRequest
from tierlift.v1 import events_pb2, router_pb2

MAX_COMMENT = 1_000


def _is_request_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def feedback_event(request: router_pb2.FeedbackRequest) -> events_pb2.FeedbackGiven:
    """The event for a request whose tenant is already the caller's; InvalidRequest names the
    field at fault."""
    if not _is_request_id(request.request_id):  # feedback on a made-up id was "recorded"
        raise InvalidRequest(
            "request_id", f"{shown(request.request_id)} is not a request id (a UUID, as every answer carries one)"
        )
    if not is_slug(request.tenant):
        raise InvalidRequest("tenant", f"{shown(request.tenant)} is not a lowercase slug")
    if request.rating not in (-1, 0, 1):
        raise InvalidRequest("rating", f"{request.rating} is not -1, 0 or 1")
    if len(request.comment) > MAX_COMMENT:
        raise InvalidRequest("comment", f"{len(request.comment):,} characters, more than {MAX_COMMENT:,}")
    if "\x00" in request.comment:  # the ledger (PostgreSQL) cannot store it: the feedback would be dead-lettered
        raise InvalidRequest("comment", "contains a NUL character")
    if request.rating == 0 and not request.regenerated and not request.comment:
        raise InvalidRequest("rating", "give a rating, regenerated or a comment")
    # the same verdict sent again (a client's retry) is the same event, stored once
    verdict = "\x1f".join((request.tenant, request.request_id, str(request.rating), str(request.regenerated),
                           request.comment))  # fmt: skip
    event = events_pb2.FeedbackGiven(
        event_id=f"feedback.{hashlib.sha256(verdict.encode()).hexdigest()[:32]}", request_id=request.request_id,
        tenant=request.tenant,
        rating=request.rating, regenerated=request.regenerated, comment=request.comment,
    )  # fmt: skip
    event.occurred_at.GetCurrentTime()
    return event
