"""JSON log lines (hashsync.logs): one object per line naming the request id and, once
authentication has run, the actor and sync client; never a token or a hash value."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from hashsync.logs import JsonFormatter
from sync import services as sync_services
from tests.conftest import synthetic
from tests.sync.conftest import world  # noqa: F401 - the sync tests' two members, as a fixture
from tests.sync.helpers import World, _send


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything any logger emits, at every level, through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_line_outside_a_request_has_the_basic_fields(json_log: io.StringIO) -> None:
    logging.getLogger("hashsync.test").warning("plain %s", "words")
    [line] = [x for x in _lines(json_log) if x["logger"] == "hashsync.test"]
    assert line["level"] == "WARNING"
    assert line["message"] == "plain words"
    assert line["request_id"] is None
    assert line["time"].endswith("+00:00")
    assert "actor" not in line


def test_an_exception_is_kept_in_its_line(json_log: io.StringIO) -> None:
    try:
        raise ValueError("synthetic failure")
    except ValueError:
        logging.getLogger("hashsync.test").exception("it failed")
    [line] = [x for x in _lines(json_log) if x["logger"] == "hashsync.test"]
    assert "ValueError: synthetic failure" in line["exception"]


def test_a_member_request_names_its_client_and_never_its_token_or_hashes(
    world: World,  # noqa: F811 - the fixture imported above
    json_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_answer = sync_services.lookup_answer

    def answer_and_log(**kwargs: Any) -> Any:
        # Stands in for any line the code logs while serving the request.
        logging.getLogger("sync.test").info("lookup of %d hashes", len(kwargs["pairs"]))
        return real_answer(**kwargs)

    monkeypatch.setattr(sync_services, "lookup_answer", answer_and_log)
    algorithm, listed = world.a_hashes[0]
    unlisted = synthetic("md5")
    body = {
        "hashes": [
            {"algorithm": algorithm, "value": listed},
            {"algorithm": "md5", "value": unlisted},
        ]
    }

    response = _send(
        "post",
        reverse("sync-lookup"),
        body,
        token=world.token_a,
        HTTP_X_REQUEST_ID="req-logs-12345",
    )
    assert response.status_code == 200
    # A bad token and a malformed hash, which end in errors, are not logged with them either.
    _send("post", reverse("sync-lookup"), body, token=world.token_a[:-4] + "AAAA")
    _send(
        "post",
        reverse("sync-lookup"),
        {"hashes": [{"algorithm": "md5", "value": unlisted[:-1]}]},
        token=world.token_a,
    )

    output = json_log.getvalue()
    assert output
    for secret in (world.token_a, world.token_a[:-4] + "AAAA", listed, unlisted, unlisted[:-1]):
        assert secret not in output
        assert secret.upper() not in output
    [line] = [x for x in _lines(json_log) if x["logger"] == "sync.test"]
    assert line["request_id"] == "req-logs-12345"
    assert line["actor"] == "member:alpha/edge-1"
    assert isinstance(line["client_id"], int)


def test_a_staff_request_names_the_user(
    json_log: io.StringIO, analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.test import APIClient

    from hashlist import selectors

    real = selectors.entry_list

    def listed_and_logged(*args: Any, **kwargs: Any) -> Any:
        logging.getLogger("hashlist.test").info("entries listed")
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "entry_list", listed_and_logged)
    client = APIClient()
    client.force_authenticate(analyst)
    assert client.get(reverse("entry-list")).status_code == 200
    [line] = [x for x in _lines(json_log) if x["logger"] == "hashlist.test"]
    assert line["actor"] == analyst.username
    assert line["actor_id"] == analyst.pk
    assert "client_id" not in line
