"""Feedback (``POST sync/feedback/``): disputes from members."""

from __future__ import annotations

import pytest
from django.urls import reverse

from members.models import Feedback
from tests.sync.helpers import (
    _feedback_call,
    _send,
    _state,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_on_an_own_hash_lands_in_the_queue(world):
    _, body = _feedback_call(world)

    response = _send("post", reverse("sync-feedback"), body, token=world.token_a)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    feedback = Feedback.objects.get()
    assert (feedback.member.name, feedback.client.name, feedback.kind) == (
        "alpha",
        "edge-1",
        "false_positive",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "true_positive"},
        {"kind": None},
        {"reason": "too short"},
        {"reason": "x" * 4001},
        {"reason": 5},
        {"algorithm": "nope"},
        {"value": None},
        {"value": "a" * 5000},
    ],
)
def test_bad_feedback_is_invalid_input(world, change):
    _, body = _feedback_call(world)
    before = _state()

    response = _send("post", reverse("sync-feedback"), {**body, **change}, token=world.token_a)

    assert_error(response, 400, "invalid_input", "unknown_algorithm")
    assert _state() == before
