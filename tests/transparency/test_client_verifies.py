"""The member client against a lying server (issue 16): the real client library talks to the
real Django application in-process (httpx's WSGI transport), and the test makes the server lie
by rewriting its log tables as a compromised server would. A good history passes; a forked log
(a split view), a rolled-back log, a manifest left out of the tree and a checkpoint signed by an
unknown key are refused, and a fork leaves a proof file with both signed checkpoints.
Synthetic hashes only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as _settings
from django.core.wsgi import get_wsgi_application

from distribution import keys, releases
from distribution.models import Feed
from hashlist.framework_store import ensure_frameworks
from hashsync_client.api import HashsyncClient
from hashsync_client.cli_output import EXIT_FORKED
from hashsync_client.config import Config
from hashsync_client.errors import LogForked
from hashsync_client.signing import generate_key
from hashsync_client.tlog import parse_note, verify_log_signature
from tests.factories import approved_entry, member_with_token
from transparency import services as log_services
from transparency.models import Checkpoint, LogLeaf, LogNode, LogState

# The client talks to the application in-process (httpx's WSGI transport). On PostgreSQL the
# tests are transactional: each request commits or rolls back on its own, as under gunicorn, so
# an error a request catches aborts that request's transaction, never the test's. SQLite (whose
# append-only audit trigger refuses a transactional test's flush) keeps the test transaction.
ON_POSTGRES = "postgresql" in _settings.DATABASES["default"]["ENGINE"]
pytestmark = [pytest.mark.django_db(transaction=ON_POSTGRES)]


@pytest.fixture
def feed(settings: Any) -> Feed:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    keys.ensure_development_keys()
    # On PostgreSQL these are transactional tests: an earlier one's flush took the frameworks
    # the migration seeded, and a feed is graded in one (uk by default).
    ensure_frameworks()
    feed = Feed.objects.create(name="md5-all", algorithms=["md5"])
    releases.release_cut()
    return feed


def _client(member_admin: Any, tmp_path: Path, name: str, feed: Feed) -> HashsyncClient:
    _, token = member_with_token(member_admin, name=name, feeds=(feed.name,))
    keyring = keys.current_keyring()
    assert keyring is not None
    config = Config(
        server_url="http://127.0.0.1/",
        root_keyids=tuple(keyring.root_keyids),
        store_path=str(tmp_path / f"{name}.sqlite3"),
    )
    transport = httpx.WSGITransport(app=get_wsgi_application())
    return HashsyncClient(config, token=token, transport=transport)


def _release(analyst: Any, reviewer: Any) -> None:
    before = Feed.objects.get(name="md5-all").version
    approved_entry(analyst, reviewer)
    releases.release_cut()  # unless the approval's own scheduled cut already ran
    assert Feed.objects.get(name="md5-all").version > before


def _rewrite_log(*, keep: int, extra: int = 0, drop: int = 0) -> None:
    """A lying server rebuilds its log: the first ``keep`` leaves as they were, then ``extra``
    leaves nobody was shown before, then every later manifest but the first ``drop`` of them
    again (a different history of the same manifests), signing fresh checkpoints with its real
    key."""
    leaves = list(LogLeaf.objects.order_by("index"))
    LogLeaf.objects.all().delete()
    LogNode.objects.all().delete()
    Checkpoint.objects.all().delete()
    LogState.objects.all().delete()
    signer = keys.online_signing_key()
    inserted: list[dict[str, Any]] = [
        dict(feed="hidden", version=i, manifest_sha256=f"{i + 1:064x}", previous_sha256="")
        for i in range(extra)
    ]
    rows: list[dict[str, Any]] = [
        dict(
            feed=leaf.feed_name,
            version=leaf.version,
            manifest_sha256=leaf.manifest_sha256,
            previous_sha256=leaf.previous_sha256,
        )
        for leaf in leaves
    ]
    for row in rows[:keep] + inserted + rows[keep + drop :]:
        log_services.log_append(**row, signer=signer)


def test_a_good_history_passes_and_the_checkpoint_is_kept(
    feed, analyst, reviewer, member_admin, tmp_path
):
    with _client(member_admin, tmp_path, "alpha", feed) as client:
        _release(analyst, reviewer)
        assert client.sync().ok
        first = client.store.log_checkpoint()
        assert first is not None
        _release(analyst, reviewer)
        assert client.sync().ok
        second = client.store.log_checkpoint()
        assert second is not None
        assert second.note.checkpoint.size > first.note.checkpoint.size
        signer = keys.online_signing_key()
        verify_log_signature(second.note, [signer.public_key])


def test_a_forked_log_is_caught_and_both_checkpoints_are_kept(
    feed, analyst, reviewer, member_admin, tmp_path
):
    """Alpha saw one history; the server then shows another (a leaf inserted before the last
    manifests): alpha refuses, and the proof file holds both signed checkpoints."""
    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        _release(analyst, reviewer)
        assert alpha.sync().ok
        held = alpha.store.log_checkpoint()
        assert held is not None
        _rewrite_log(keep=1, extra=1)
        _release(analyst, reviewer)
        report = alpha.sync()
        assert isinstance(report.error, LogForked)
        proof = json.loads(Path(report.error.proof_path).read_text())
        assert proof["held_checkpoint"] == held.text
        served = parse_note(proof["served_checkpoint"])
        signer = keys.online_signing_key()
        verify_log_signature(served, [signer.public_key])
        verify_log_signature(parse_note(proof["held_checkpoint"]), [signer.public_key])
        # Nothing of the forked view was applied; the held checkpoint is unchanged.
        assert alpha.store.log_checkpoint().text == held.text
        # A client that never saw the first view accepts the second: only comparing
        # checkpoints (members among themselves, or witnesses) shows the split.
        with _client(member_admin, tmp_path, "beta", feed) as beta:
            assert beta.sync().ok


def test_a_rolled_back_log_is_caught(feed, analyst, reviewer, member_admin, tmp_path):
    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        _release(analyst, reviewer)
        _release(analyst, reviewer)
        assert alpha.sync().ok
        size = alpha.store.log_checkpoint().note.checkpoint.size
        _rewrite_log(keep=1, drop=size - 1)  # every leaf after the first forgotten
        _release(analyst, reviewer)  # and new ones (a cut, perhaps a snapshot's re-signing)
        assert LogState.objects.get().size < size  # the log alpha is shown is shorter
        report = alpha.sync()
        assert isinstance(report.error, LogForked)
        assert "smaller" in str(report.error)
        assert Path(report.error.proof_path).exists()


def test_a_manifest_left_out_of_the_log_is_refused(
    feed, analyst, reviewer, member_admin, tmp_path, monkeypatch
):
    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        assert alpha.sync().ok
        real = log_services.log_append

        def omit(**kwargs: Any) -> Any:  # enters another digest instead of the manifest's
            other = hashlib.sha256(kwargs["manifest_sha256"].encode()).hexdigest()
            return real(**{**kwargs, "manifest_sha256": other})

        monkeypatch.setattr("distribution.releases.manifests.log_append", omit)
        _release(analyst, reviewer)
        report = alpha.sync()
        [result] = report.results
        assert result.status == "failed"
        assert result.error.code == "log_invalid"
        assert alpha.store.feed(feed.name).version < Feed.objects.get(pk=feed.pk).version


def test_a_checkpoint_signed_by_an_unknown_key_is_refused(
    feed, analyst, reviewer, member_admin, tmp_path, monkeypatch
):
    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        assert alpha.sync().ok
        stranger = generate_key()
        real = log_services.log_append
        monkeypatch.setattr(
            "distribution.releases.manifests.log_append",
            lambda **kwargs: real(**{**kwargs, "signer": stranger}),
        )
        _release(analyst, reviewer)
        [result] = alpha.sync().results
        assert result.status == "failed"
        assert result.error.code == "checkpoint_unsigned"


def test_the_cli_exits_with_its_own_status_on_a_fork(
    feed, analyst, reviewer, member_admin, tmp_path, monkeypatch, capsys
):
    from hashsync_client import cli

    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        _release(analyst, reviewer)
        assert alpha.sync().ok
        _rewrite_log(keep=1, extra=1)
        _release(analyst, reviewer)
        monkeypatch.setattr(cli, "load_config", lambda path: alpha.config)
        monkeypatch.setattr(cli, "HashsyncClient", lambda config, progress: alpha)
        assert cli.main(["sync"]) == EXIT_FORKED
        assert "fork" in capsys.readouterr().err.lower()


def test_members_comparing_checkpoints_find_consistency_or_the_fork(
    feed, analyst, reviewer, member_admin, tmp_path
):
    """verify-checkpoint: alpha and beta saw one history, so theirs agree; the server then
    shows gamma a forked history, and alpha comparing with gamma gets the proof of the fork."""
    with (
        _client(member_admin, tmp_path, "alpha", feed) as alpha,
        _client(member_admin, tmp_path, "beta", feed) as beta,
        _client(member_admin, tmp_path, "gamma", feed) as gamma,
    ):
        _release(analyst, reviewer)
        assert alpha.sync().ok
        _release(analyst, reviewer)
        assert beta.sync().ok
        assert alpha.compare_checkpoint(beta.checkpoint().text).startswith("consistent")
        assert beta.compare_checkpoint(alpha.checkpoint().text).startswith("consistent")
        _rewrite_log(keep=1, extra=1)
        _release(analyst, reviewer)
        assert gamma.sync().ok  # gamma only ever saw the forked view
        with pytest.raises(LogForked) as caught:
            alpha.compare_checkpoint(gamma.checkpoint().text)
        proof = json.loads(Path(caught.value.proof_path).read_text())
        assert proof["served_checkpoint"] == gamma.checkpoint().text


def test_a_checkpoint_not_signed_by_the_log_is_not_compared(
    feed, analyst, reviewer, member_admin, tmp_path
):
    from hashsync_client.errors import LogInvalid
    from hashsync_client.tlog import sign_checkpoint

    with _client(member_admin, tmp_path, "alpha", feed) as alpha:
        assert alpha.sync().ok
        held = alpha.checkpoint()
        forged = sign_checkpoint(held.note.checkpoint, generate_key())
        with pytest.raises(LogInvalid) as caught:
            alpha.compare_checkpoint(forged)
        assert caught.value.code == "checkpoint_unsigned"
