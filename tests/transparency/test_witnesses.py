"""The server collects witness cosignatures (a real witness answering HTTP on 127.0.0.1) and
serves them with the checkpoint; a client that requires k witnesses accepts a cosigned
checkpoint and refuses one without; a witness refuses to cosign a forked log."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.conf import settings as _settings

from audit.models import AuditEvent
from distribution import keys
from distribution.models import Feed
from hashsync_client.signing import generate_key
from hashsync_client.tlog import (
    SIG_COSIGNATURE_V1,
    parse_note,
    parse_verifier_key,
    verifier_key,
    verify_cosignature,
)
from hashsync_client.witness import Witness, WitnessState, serve
from tests.transparency.test_client_verifies import _client, _release, _rewrite_log, feed
from transparency import selectors
from transparency.models import Witness as WitnessRow
from transparency.witnesses import cosign_latest

# The client talks to the application in-process (httpx's WSGI transport). On PostgreSQL the
# tests are transactional: each request commits or rolls back on its own, as under gunicorn, so
# an error a request catches aborts that request's transaction, never the test's. SQLite (whose
# append-only audit trigger refuses a transactional test's flush) keeps the test transaction.
ON_POSTGRES = "postgresql" in _settings.DATABASES["default"]["ENGINE"]
pytestmark = [pytest.mark.django_db(transaction=ON_POSTGRES)]
__all__ = ["feed"]  # the fixture, shared


class RunningWitness:
    def __init__(self, tmp_path: Path, name: str) -> None:
        self.key = generate_key()
        self.name = name
        log_key = keys.online_signing_key()
        log = parse_verifier_key(verifier_key(settings.HASHSYNC_TLOG_ORIGIN, log_key.public_key))
        self.witness = Witness(
            name=name, key=self.key, logs=[log], state=WitnessState(tmp_path / f"{name}.json")
        )
        self.server = serve(self.witness, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/add-checkpoint"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.key.public_key, SIG_COSIGNATURE_V1)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def witness(feed, tmp_path, settings) -> Iterator[RunningWitness]:
    running = RunningWitness(tmp_path, "w1.test")
    settings.HASHSYNC_TLOG_WITNESSES = [f"{running.url} {running.vkey}"]
    yield running
    running.stop()


def test_the_server_collects_and_serves_a_cosignature(witness, analyst, reviewer):
    _release(analyst, reviewer)
    assert cosign_latest() == 1
    checkpoint = selectors.checkpoint_latest()
    served = parse_note(selectors.checkpoint_served(checkpoint))
    assert verify_cosignature(served, parse_verifier_key(witness.vkey)) is not None
    row = WitnessRow.objects.get(name="w1.test")
    assert row.size == checkpoint.size and row.last_cosigned_at is not None
    assert AuditEvent.objects.filter(action="tlog.cosigned").exists()
    # Again: nothing to do. After another release the witness gets a consistency proof.
    assert cosign_latest() == 1
    _release(analyst, reviewer)
    assert cosign_latest() == 1
    assert WitnessRow.objects.get(name="w1.test").size == selectors.checkpoint_latest().size
    assert AuditEvent.objects.filter(
        action="tlog.cosigned", object_id=str(selectors.checkpoint_latest().size)
    ).exists()


def test_the_collector_learns_the_witness_size_from_a_409(witness, analyst, reviewer):
    _release(analyst, reviewer)
    assert cosign_latest() == 1
    WitnessRow.objects.update(size=0)  # the server forgot (a restore): the witness says 409
    _release(analyst, reviewer)
    assert cosign_latest() == 1


def test_a_client_requiring_a_witness_accepts_cosigned_and_refuses_uncosigned(
    witness, analyst, reviewer, member_admin, tmp_path
):
    with _client(member_admin, tmp_path, "alpha", feed_row()) as alpha:
        alpha.config = dataclasses.replace(
            alpha.config, witnesses=(witness.vkey,), witness_threshold=1
        )
        configured = settings.HASHSYNC_TLOG_WITNESSES
        settings.HASHSYNC_TLOG_WITNESSES = []  # no cosigning after this release's commit
        _release(analyst, reviewer)
        settings.HASHSYNC_TLOG_WITNESSES = configured
        [result] = alpha.sync().results
        assert result.status == "failed" and result.error.code == "witness_quorum"
        assert cosign_latest() == 1
        assert alpha.sync().ok


def test_a_witness_refuses_to_cosign_a_forked_log(witness, analyst, reviewer):
    _release(analyst, reviewer)
    assert cosign_latest() == 1
    _rewrite_log(keep=1, extra=1)
    _release(analyst, reviewer)
    assert cosign_latest() == 0
    row = WitnessRow.objects.get(name="w1.test")
    assert "422" in row.last_error
    assert not selectors.checkpoint_latest().cosignatures.exists()


def feed_row() -> Any:
    return Feed.objects.get(name="md5-all")
