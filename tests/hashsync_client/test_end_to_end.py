"""Issue 5's end-to-end check, every part real: the live server (PostgreSQL), a Celery worker
on the Redis broker cutting the releases, and the installed ``hashsync-client`` console script
in its own process. propose → approve → release → sync → lookup finds it; retract → the next
sync removes it, and the auditors' "who held hash X" shows this client acking the removal;
the entitlement revoked → the next sync withdraws the feed and lookups of it are refused.
Synthetic data only."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from distribution import keys
from distribution.models import Feed
from members.services import entitlement_revoke
from tests.conftest import synthetic
from tests.factories import member_with_token
from tests.live import CLIENT, newest_version
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(settings: Any) -> Iterator[str]:
    from pytest_django.live_server_helper import LiveServer

    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    running = LiveServer("localhost")
    try:
        yield running.url
    finally:
        running.stop()


@pytest.fixture
def worker() -> Iterator[Any]:
    with celery_worker() as running:
        yield running


def test_an_approval_reaches_the_client_and_its_retraction_is_acked_for_auditors(
    server, worker, api, analyst, reviewer, member_admin, auditor, tmp_path
):
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    keys.ensure_development_keys()
    _, token = member_with_token(member_admin, feeds=("md5-all",))
    env = {
        **os.environ,
        "HASHSYNC_TOKEN": token,  # never on a command line
        "HASHSYNC_CLIENT_CONFIG": str(tmp_path / "client.json"),
    }

    def client(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLIENT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
        )

    init = [CLIENT, "init", "--server", server, "--store", str(tmp_path / "store.sqlite3")]
    for keyid in sorted(keys.current_keyring().root_keyids):
        init += ["--root-keyid", keyid]
    subprocess.run(init, env=env, check=True, capture_output=True, timeout=60)

    value = synthetic("md5")
    created = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {"category": "A", "age_group": "7-10", "hashes": [{"algorithm": "md5", "value": value}]},
        format="json",
    )
    assert created.status_code == 201, created.content
    approved = api(reviewer).post(f"/api/v1/proposals/{created.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content
    first = wait_for(lambda: newest_version("md5-all", 0), what="the worker to publish the feed")

    synced = client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    found = client("lookup", "--values", "--json", "-", stdin=value + "\n")
    assert found.returncode == 0, found.stdout + found.stderr
    assert json.loads(found.stdout.splitlines()[0])["matches"]
    assert token not in synced.stdout + synced.stderr + found.stdout + found.stderr

    retract = api(analyst).post(
        "/api/v1/proposals/retract/",
        {"entry": approved.json()["entry"], "reason": "synthetic: listed in error"},
        format="json",
    )
    assert retract.status_code == 201, retract.content
    approve = api(reviewer).post(f"/api/v1/proposals/{retract.json()['id']}/approve/", {})
    assert approve.status_code == 200, approve.content
    removed_in = wait_for(lambda: newest_version("md5-all", first), what="the retraction's release")

    synced = client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    gone = client("lookup", "--values", "--json", "-", stdin=value + "\n")
    assert gone.returncode == 1, gone.stdout + gone.stderr
    assert not json.loads(gone.stdout.splitlines()[0])["matches"]

    holders = api(auditor).post(
        "/api/v1/audit/hash-holders/", {"algorithm": "md5", "value": value}, format="json"
    )
    assert holders.status_code == 200, holders.content
    (record,) = holders.json()["holders"]
    assert (record["member"], record["client"], record["feed"]) == ("acme", "edge-1", "md5-all")
    assert record["held_at_time"] is False  # it holds the version without the hash now
    assert record["removed_in_version"] == removed_in
    assert record["removal_acked_at"] is not None

    # The hotline revokes the entitlement: the feed leaves the member's feed list, the next
    # sync withdraws it (exit 4, its rows deleted), and a lookup of it is refused (exit 4).
    entitlement_revoke(actor=member_admin, member_name="acme", feed="md5-all")
    withdrawn = client("sync", "--no-progress", "--json")
    assert withdrawn.returncode == 4, withdrawn.stdout + withdrawn.stderr
    assert json.loads(withdrawn.stdout)["withdrawn"] == ["md5-all"]
    refused = client("lookup", "--values", value)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "no longer offered by the server" in refused.stderr
