"""Issue 16's "Done when", tried as a new user would: a live server (PostgreSQL), the real Celery
worker cutting releases and collecting cosignatures, two ``hashsync-client`` processes and a
``hashsync-client witness`` process, each in its own process. They agree on one history; the
server is then made to show a different one (a compromised database rewrites the log: a leaf
nobody was shown is slipped in before the newest published one, and the tree is re-signed
with the real key), and a release goes out on top of it. The witness refuses to cosign it,
the client that syncs next stops with exit 5 and a fork proof holding both signed
checkpoints, and the other client's ``verify-checkpoint`` of the forked checkpoint reports the
fork. Synthetic data only."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from distribution import keys
from distribution.models import Feed, FeedVersion
from distribution.releases.lock import lock_release_state
from hashsync_client.tlog import parse_note, verifier_key, verify_log_signature
from tests.conftest import synthetic
from tests.factories import member_with_token
from tests.live import CLIENT, ClientProcess
from tests.utils import wait_for
from tests.workers import celery_worker
from transparency import services as log_services
from transparency.models import Checkpoint, Cosignature, LogLeaf, LogNode, LogState
from transparency.models import Witness as WitnessRow

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

FEED = "md5-all"
EXIT_FORKED = 5


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Any) -> Iterator[str]:
    from pytest_django.live_server_helper import LiveServer

    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    running = LiveServer("localhost")
    try:
        yield running.url
    finally:
        running.stop()


class WitnessProcess:
    """``hashsync-client witness`` in its own process, its key and state in ``home``."""

    def __init__(self, home: Path, log_vkey: str) -> None:
        self.home = home
        self.name = "witness.drill.test"
        key = home / "witness.pem"
        made = subprocess.run(
            [CLIENT, "witness", "--name", self.name, "--key", str(key), "--init"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.vkey = made.stdout.strip()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/add-checkpoint"
        self.log = home / "witness.log"
        self._out = self.log.open("w")
        self.process = subprocess.Popen(
            [
                CLIENT,
                "witness",
                "--name",
                self.name,
                "--key",
                str(key),
                "--state",
                str(home / "witness-state.json"),
                "--log-key",
                log_vkey,
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: "listening" in self.log.read_text(), what="the witness to listen")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._out.close()


class Member(ClientProcess):
    """One member machine: its own config, store and token; the real console script."""

    def __init__(self, name: str, home: Path, token: str, server: str) -> None:
        self.name = name
        super().__init__(server, token, home)

    def forks(self) -> list[Path]:
        return sorted(self.home.glob("*.forks/fork-*.json"))


def _approve_one(api: Any, analyst: Any, reviewer: Any) -> None:
    created = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {
            "category": "A",
            "age_group": "7-10",
            "hashes": [{"algorithm": "md5", "value": synthetic("md5")}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    approved = api(reviewer).post(f"/api/v1/proposals/{created.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content


def _released_after(version: int) -> int | None:
    return (
        FeedVersion.objects.filter(feed__name=FEED, version__gt=version)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )


def _cosigned(size: int) -> bool:
    return Cosignature.objects.filter(checkpoint__size=size).exists()


def _fork_the_log() -> None:
    """What a compromised server does to show a different history: its log rebuilt with a leaf
    nobody was shown slipped in before the newest published one, and fresh checkpoints signed
    with its real key — so no tree anyone was shown is a prefix of it. Under the release lock,
    as a release would."""
    with transaction.atomic():
        lock_release_state()
        leaves = list(LogLeaf.objects.order_by("index"))
        for model in (Checkpoint, LogLeaf, LogNode, LogState):
            model.objects.all().delete()
        signer = keys.online_signing_key()
        rows: list[dict[str, Any]] = [
            dict(
                feed=leaf.feed_name,
                version=leaf.version,
                manifest_sha256=leaf.manifest_sha256,
                previous_sha256=leaf.previous_sha256,
            )
            for leaf in leaves
        ]
        hidden: dict[str, Any] = dict(
            feed="hidden", version=1, manifest_sha256="e" * 64, previous_sha256=""
        )
        with log_services.one_checkpoint():
            for row in [*rows[:-1], hidden, rows[-1]]:
                log_services.log_append(**row, signer=signer)


def test_a_forked_log_is_refused_by_the_witness_and_a_client_and_shown_by_the_other(
    server, api, analyst, reviewer, member_admin, tmp_path
):
    Feed.objects.create(name=FEED, algorithms=["md5"])
    keys.ensure_development_keys()
    log_vkey = verifier_key(settings.HASHSYNC_TLOG_ORIGIN, keys.online_signing_key().public_key)
    witness = WitnessProcess(tmp_path, log_vkey)
    try:
        with celery_worker(
            extra_env={
                "HASHSYNC_TLOG_WITNESSES": f"{witness.url} {witness.vkey}",
                "HASHSYNC_TLOG_ORIGIN": settings.HASHSYNC_TLOG_ORIGIN,
            }
        ) as worker:
            try:
                _drill(server, api, analyst, reviewer, member_admin, tmp_path, witness)
            except AssertionError as exc:
                while not worker.lines.empty():
                    worker.log.append(worker.lines.get())
                raise AssertionError(
                    f"{exc}\n--- worker:\n{''.join(worker.log[-60:])}"
                    f"--- witness:\n{witness.log.read_text()[-3000:]}"
                ) from exc
    finally:
        witness.stop()


def _drill(
    server: str,
    api: Any,
    analyst: Any,
    reviewer: Any,
    member_admin: Any,
    tmp_path: Path,
    witness: WitnessProcess,
) -> None:
    members = {}
    for name in ("alpha", "beta"):
        _, token = member_with_token(member_admin, name=name, feeds=(FEED,))
        home = tmp_path / name
        home.mkdir()
        members[name] = Member(name, home, token, server)
    alpha, beta = members["alpha"], members["beta"]

    # One honest history: a release, cosigned by the witness; both members sync it.
    _approve_one(api, analyst, reviewer)
    first = wait_for(lambda: _released_after(0), what="the worker to publish the feed")
    honest = Checkpoint.objects.order_by("-size").first()
    assert honest is not None
    wait_for(lambda: _cosigned(honest.size), what="the witness to cosign the release")
    for member in (alpha, beta):
        synced = member.run("sync", "--no-progress")
        assert synced.returncode == 0, synced.stdout + synced.stderr
    held = {m.name: m.run("checkpoint").stdout for m in (alpha, beta)}
    assert held["alpha"] == held["beta"]
    assert parse_note(held["alpha"]).checkpoint.size == honest.size
    (tmp_path / "beta.checkpoint").write_text(held["beta"])
    agreed = alpha.run("verify-checkpoint", str(tmp_path / "beta.checkpoint"))
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert agreed.stdout.startswith("consistent")

    # The server is made to show a different history, and releases on top of it.
    _fork_the_log()
    _approve_one(api, analyst, reviewer)
    wait_for(lambda: _released_after(first), what="the release on the forked log")
    forked = Checkpoint.objects.order_by("-size").first()
    assert forked is not None

    # The witness refuses to cosign it (the worker asked it: HTTP 422, a fork).
    row = wait_for(
        lambda: WitnessRow.objects.filter(name=witness.name).exclude(last_error="").first(),
        what="the worker to ask the witness about the forked checkpoint",
    )
    assert "422" in row.last_error, row.last_error
    assert not _cosigned(forked.size)
    assert "REFUSED" in witness.log.read_text()
    assert json.loads((tmp_path / "witness-state.json").read_text())  # still the honest one

    # Beta syncs: it refuses the forked view, keeps its copy, and writes the proof.
    stopped = beta.run("sync", "--no-progress", "--retries", "0")
    assert stopped.returncode == EXIT_FORKED, stopped.stdout + stopped.stderr
    assert "fork" in stopped.stderr.lower()
    assert beta.run("checkpoint").stdout == held["beta"]
    [proof_path] = beta.forks()
    proof = json.loads(proof_path.read_text())
    assert proof["held_checkpoint"] == held["beta"]
    signer = keys.online_signing_key().public_key
    for side in ("held_checkpoint", "served_checkpoint"):
        verify_log_signature(parse_note(proof[side]), [signer])  # both signed by the log
    served_note = parse_note(proof["served_checkpoint"]).checkpoint
    assert served_note.size >= forked.size  # the forked log (a snapshot may have grown it)
    stored = Checkpoint.objects.get(size=served_note.size)
    assert served_note.root_hash == bytes(stored.root_hash)

    # Alpha, comparing the checkpoint beta was served with its own, finds the fork too.
    served = tmp_path / "served.checkpoint"
    served.write_text(proof["served_checkpoint"])
    compared = alpha.run("verify-checkpoint", str(served))
    assert compared.returncode == EXIT_FORKED, compared.stdout + compared.stderr
    [alpha_proof] = alpha.forks()
    assert json.loads(alpha_proof.read_text())["held_checkpoint"] == held["alpha"]
