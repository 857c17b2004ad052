"""Restarts under load (issue 14): Redis and PostgreSQL restarted while the member client syncs
and an approval is made (``/readyz`` red while each is down, naming it, and green after); a
Celery worker killed in the middle of a release cut, and of a snapshot build; the bundle
store's disk full during a cut.

Every answer is correct or a 503 with Retry-After (gunicorn's access log shows no 500), no
approval is lost, each approved change is released exactly once, the client converges
(``hashsync-client verify``) and the audit chain verifies."""

from __future__ import annotations

import errno
import hashlib
import json
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faults.stack import Stack, wait_until

pytestmark = pytest.mark.faults


def _md5() -> str:
    return secrets.token_hex(16)


class Prober:
    """Polls the member plan in a thread and keeps every status and 503's Retry-After."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.answers: list[tuple[int, str | None, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, headers, body = self.stack.plan_status()
            except OSError as exc:  # gunicorn itself is never stopped here
                self.answers.append((0, None, type(exc).__name__))
            else:
                code = None
                if status >= 400:
                    code = json.loads(body)["error"]["code"]
                self.answers.append((status, headers.get("Retry-After"), code))
            self._stop.wait(0.2)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _unreleased(stack: Stack) -> int:
    return int(stack.pg.scalar("SELECT count(*) FROM hashlist_change WHERE release IS NULL"))


def _supervise_until_released(stack: Stack, *, what: str) -> None:
    """Wait for every approved change to be released, starting the worker or beat again if
    either exited, as systemd's ``Restart=on-failure`` would (deploy/systemd)."""

    def released() -> bool:
        stack.worker.ensure_running()
        stack.beat.ensure_running()
        return _unreleased(stack) == 0

    wait_until(released, what=what, timeout=45)


def _assert_no_failures(stack: Stack, prober: Prober) -> None:
    statuses = {status for status, _, _ in prober.answers}
    assert statuses <= {200, 503}, prober.answers
    for status, retry_after, code in prober.answers:
        if status == 503:
            assert code == "service_unavailable" and retry_after and int(retry_after) >= 1
    answered = stack.access_statuses()
    assert answered and 500 not in answered, stack.web.log()[-4000:]


def _assert_released_once_and_converged(stack: Stack, value: str) -> None:
    # Every approved change released, exactly once, in gap-free versions.
    assert stack.pg.scalar("SELECT count(*) FROM hashlist_change WHERE release IS NULL") == 0
    versions = stack.pg.scalar(
        "SELECT array_agg(version ORDER BY version) FROM distribution_release"
    )
    assert versions == list(range(1, len(versions) + 1))
    assert stack.pg.scalar("SELECT max(last_version) FROM distribution_releasestate") == max(
        versions
    )
    wait_until(lambda: stack.client_holds(value), what="the client to hold the approved hash")
    verified = stack.client("verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    audit = stack.manage("audit_verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def _synced_client_and_a_proposal(stack: Stack) -> tuple[str, dict[str, Any]]:
    """The member's client is up to date and an analyst has proposed a fresh synthetic hash."""
    synced = stack.client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    value = _md5()
    status, proposal = stack.propose(value)
    assert status == 201, proposal
    return value, proposal


def test_redis_restart_while_clients_sync_and_an_approval_is_made(stack: Stack):
    value, proposal = _synced_client_and_a_proposal(stack)

    with Prober(stack) as prober:
        time.sleep(1)
        assert stack.readyz() == (200, {})
        stack.redis.stop()
        # Readiness goes red, naming what is down.
        status, failed = stack.readyz()
        assert status == 503 and {"cache", "broker"} <= failed.keys(), failed
        assert "database" not in failed
        # Committed although the release cut cannot be sent: the reviewer sees success.
        status, _, approved = stack.approve(proposal["id"])
        assert status == 200, approved
        during = stack.client("sync", "--no-progress", "--retries", "0")
        assert "Traceback" not in during.stderr
        time.sleep(1)
        stack.redis.start()
        # A worker that lost its broker may exit; systemd (Restart=on-failure) starts it again.
        _supervise_until_released(stack, what="beat's periodic cut to release the approval")
        wait_until(lambda: stack.readyz() == (200, {}), what="/readyz to go green again")
        time.sleep(1)

    _assert_no_failures(stack, prober)
    assert any(status == 200 for status, _, _ in prober.answers)
    _assert_released_once_and_converged(stack, value)


def test_postgres_restart_while_clients_sync_and_an_approval_is_made(stack: Stack):
    value, proposal = _synced_client_and_a_proposal(stack)

    with Prober(stack) as prober:
        time.sleep(1)
        assert stack.readyz() == (200, {})
        stack.pg.stop("fast")
        status, failed = stack.readyz()
        assert status == 503 and "database" in failed, failed
        status, headers, refused = stack.approve(proposal["id"])
        # Nothing committed; the answer says so and when to come back.
        assert status == 503, refused
        assert refused["error"]["details"] == {"service": "database"}
        assert int(headers["Retry-After"]) >= 1
        during = stack.client("sync", "--no-progress", "--retries", "0")
        assert during.returncode != 0 and "Traceback" not in during.stderr
        wait_until(lambda: any(s == 503 for s, _, _ in prober.answers), what="a 503 poll")
        stack.pg.start()
        # The reviewer tries again, as the 503 told them to.
        wait_until(
            lambda: (lambda r: r if r[0] == 200 else None)(stack.approve(proposal["id"])),
            what="the approval to go through after the restart",
        )
        _supervise_until_released(stack, what="the approval's release")
        wait_until(lambda: stack.readyz() == (200, {}), what="/readyz to go green again")
        time.sleep(1)

    _assert_no_failures(stack, prober)
    assert stack.pg.scalar("SELECT count(*) FROM hashlist_change") >= 1
    _assert_released_once_and_converged(stack, value)


def test_a_worker_killed_during_a_release_cut_is_completed_once_by_the_next(stack: Stack):
    synced = stack.client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    before = stack.pg.scalar("SELECT max(version) FROM distribution_release")
    value = _md5()
    status, proposal = stack.propose(value)
    assert status == 201, proposal

    # Hold back the cut's last step: with the release table locked, the worker's cut writes
    # its bundles, feed versions and manifests, then waits to insert the release row.
    with stack.pg.connect() as blocker:
        blocker.autocommit = False
        blocker.execute("LOCK TABLE distribution_release IN EXCLUSIVE MODE")
        status, _, approved = stack.approve(proposal["id"])
        assert status == 200, approved
        wait_until(
            lambda: stack.pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO \"distribution_release\"%%'"
            ),
            what="the worker's cut to reach the release row",
        )
        stack.worker.signal(signal.SIGKILL)
        stack.worker.process.wait(timeout=10)  # type: ignore[union-attr]
        blocker.rollback()

    # The killed cut's transaction is rolled back by PostgreSQL when its connection drops.
    wait_until(
        lambda: (
            not stack.pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                "AND query LIKE 'INSERT INTO \"distribution_release\"%%'"
            )
        ),
        what="the killed cut's connection to go",
    )
    assert stack.pg.scalar("SELECT max(version) FROM distribution_release") == before
    stack.worker.start()
    wait_until(
        lambda: stack.pg.scalar("SELECT count(*) FROM hashlist_change WHERE release IS NULL") == 0,
        what="the next worker's cut",
        timeout=45,
    )
    assert stack.pg.scalar("SELECT max(version) FROM distribution_release") == before + 1
    assert (
        stack.pg.scalar(
            "SELECT count(DISTINCT release) FROM hashlist_change WHERE proposal_id = %s",
            proposal["id"],
        )
        == 1
    )
    assert 500 not in stack.access_statuses()
    _assert_released_once_and_converged(stack, value)


def _newest_feed_version(stack: Stack) -> tuple[int, int, str]:
    with stack.pg.connect() as conn:
        row = conn.execute(
            "SELECT v.id, v.version, v.snapshot_sha256 FROM distribution_feedversion v "
            "JOIN distribution_feed f ON f.id = v.feed_id WHERE f.name = 'md5-all' "
            "ORDER BY v.version DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), str(row[2])


def _refresh_snapshots(stack: Stack) -> None:
    """Send beat's hourly ``snapshot-refresh`` now, through the broker, to the worker."""
    sent = stack.manage(
        "shell",
        "-c",
        "from distribution.tasks import snapshot_refresh_task; snapshot_refresh_task.delay()",
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr


def test_a_worker_killed_during_a_snapshot_build_leaves_nothing_half_published(stack: Stack):
    synced = stack.client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    # A version without a snapshot, cut here rather than by the worker (whose cut could queue
    # a snapshot at once): the worker is stopped meanwhile.
    stack.worker.stop()
    value = _md5()
    status, proposal = stack.propose(value)
    assert status == 201, proposal
    status, _, approved = stack.approve(proposal["id"])
    assert status == 200, approved
    cut = stack.manage("release_cut")
    assert cut.returncode == 0, cut.stdout + cut.stderr
    row_id, version, snapshot = _newest_feed_version(stack)
    assert snapshot == ""
    manifests = stack.pg.scalar("SELECT count(*) FROM distribution_manifest")

    # Hold the snapshot's publication: with the feed version's row locked, the worker writes
    # the snapshot bundle, then waits to record it on the version and sign a manifest.
    with stack.pg.connect() as blocker:
        blocker.autocommit = False
        blocker.execute(
            "SELECT 1 FROM distribution_feedversion WHERE id = %s FOR UPDATE", (row_id,)
        )
        stack.worker.start()
        _refresh_snapshots(stack)
        wait_until(
            lambda: stack.pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE \"distribution_feedversion\"%%'"
            ),
            what="the worker's snapshot build to reach the feed version",
            timeout=45,
        )
        stack.worker.signal(signal.SIGKILL)
        stack.worker.process.wait(timeout=10)  # type: ignore[union-attr]
        blocker.rollback()

    wait_until(
        lambda: (
            not stack.pg.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                "AND query LIKE 'UPDATE \"distribution_feedversion\"%%'"
            )
        ),
        what="the killed build's connection to go",
    )
    # Nothing of it was published: no snapshot on the version, no manifest naming one.
    assert _newest_feed_version(stack) == (row_id, version, "")
    assert stack.pg.scalar("SELECT count(*) FROM distribution_manifest") == manifests
    # The plan still serves what was published before (the client syncs as usual).
    synced = stack.client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr

    # The next refresh (beat's hourly one; sent at once here) builds it, once.
    stack.worker.start()
    _refresh_snapshots(stack)
    wait_until(
        lambda: _newest_feed_version(stack)[2], what="the next worker's snapshot", timeout=45
    )
    _, _, sha256 = _newest_feed_version(stack)
    assert stack.pg.scalar("SELECT count(*) FROM distribution_manifest") == manifests + 1
    # A client starting from nothing is offered that snapshot, and its bytes are what the
    # manifest says.
    status, _, body = stack.request(
        "GET", "/api/v1/sync/feeds/md5-all/plan/?from_version=0", token=stack.seed["token"]
    )
    assert status == 200, body
    plan = json.loads(body)
    assert plan["status"] == "snapshot"
    assert (plan["steps"][0]["to_version"], plan["steps"][0]["sha256"]) == (version, sha256)
    status, _, data = stack.request("GET", plan["steps"][0]["url"], token=stack.seed["token"])
    assert status == 200 and hashlib.sha256(data).hexdigest() == sha256
    assert 500 not in stack.access_statuses()
    _assert_released_once_and_converged(stack, value)


def _fill(path: Path) -> None:
    """Write ``path`` until its disk is full (ENOSPC), the last page byte by byte."""
    with open(path, "wb", buffering=0) as filler:
        for chunk in (b"\0" * 65536, b"\0"):
            try:
                while True:
                    filler.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


@pytest.mark.small_bundle_disk
def test_a_full_bundle_disk_fails_the_cut_cleanly_and_the_sweep_releases_it_later(stack: Stack):
    synced = stack.client("sync", "--no-progress")
    assert synced.returncode == 0, synced.stderr
    before = stack.pg.scalar("SELECT max(version) FROM distribution_release")
    bundles = stack.root / "bundles"
    _fill(bundles / "filler")
    value = _md5()
    status, proposal = stack.propose(value)
    assert status == 201, proposal

    status, _, approved = stack.approve(proposal["id"])

    assert status == 200, approved  # the approval does not depend on the bundle store
    wait_until(
        lambda: stack.worker.log().count("No space left on device") >= 2,
        what="the cut to fail on the full disk (and the sweep to try again)",
    )
    assert stack.pg.scalar("SELECT max(version) FROM distribution_release") == before
    assert _unreleased(stack) > 0
    # Nothing half-written is left, under its final name or as a temporary file.
    stored = [p for p in bundles.rglob("*") if p.is_file() and p.name != "filler"]
    assert stored and all(stack_object_intact(p) for p in stored), stored
    assert stack.plan_status()[0] == 200  # members are served what was released before

    (bundles / "filler").unlink()
    _supervise_until_released(stack, what="the sweep to release the change once there is room")

    assert stack.pg.scalar("SELECT max(version) FROM distribution_release") == before + 1
    assert 500 not in stack.access_statuses()
    _assert_released_once_and_converged(stack, value)


def stack_object_intact(path: Path) -> bool:
    """Whether a file in the bundle store is a whole object: named by the SHA-256 of its bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest() == path.name
