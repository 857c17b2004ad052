"""A private production-mode hashsync for fault tests: its own PostgreSQL cluster and Redis
server on spare ports (from the installed server binaries, so the machine's shared ones are
never touched), a gunicorn web node with ``HASHSYNC_ENV=production``, a Celery worker and beat,
and the member client in its own process. Each part can be stopped, killed and restarted.

Nothing here mocks anything: an outage is a server that is really gone."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def missing_binaries() -> list[str]:
    """What this machine lacks to run the fault tests (empty: all there)."""
    missing = []
    if not pg_bin_dir():
        missing.append("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    for name in ("gunicorn", "celery", "hashsync-client"):
        if not (BIN / name).exists():
            missing.append(name)
    return missing


def pg_bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class DiskUnavailable(Exception):
    """A small disk for the bundle store could not be mounted here."""


class PrivatePostgres:
    """A throw-away cluster: ``initdb`` into a temporary directory, listening on a spare port
    of 127.0.0.1 only, fsync off (a test cluster; a restart still loses nothing committed,
    since the server shuts down cleanly or recovers from its WAL)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.dir.mkdir()
        self.data = self.dir / "data"
        self.port = free_port()
        bin_dir = pg_bin_dir()
        assert bin_dir is not None
        self.bin = bin_dir
        if AS_POSTGRES:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*AS_POSTGRES, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
            cwd=self.dir,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/hashsync"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=60"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self, dbname: str = "hashsync") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def create_database(self) -> None:
        with self.connect("postgres") as conn:
            conn.execute("CREATE DATABASE hashsync")

    def scalar(self, sql: str, *params: Any) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None


class PrivateRedis:
    """redis-server on a spare port, without persistence: a restart loses every queued
    message and cached counter, the harder case for the broker."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        with open(self.dir / "log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        import redis

        wait_until(lambda: redis.Redis(port=self.port).ping(), what="redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass
class Process:
    """A server process of ours, in its own process group so a kill takes its children."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> bool:
        """What systemd's ``Restart=on-failure`` does: start it again if it exited. Returns
        whether it had to."""
        if self.alive():
            return False
        self.start()
        return True

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        # Children a SIGKILL of the leader left behind (prefork pool processes).
        with_suppressed_lookup(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def with_suppressed_lookup(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Stack:
    root: Path
    pg: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    web_port: int
    web: Process
    worker: Process
    beat: Process
    seed: dict[str, Any] = field(default_factory=dict)
    # A small tmpfs mounted as the bundle store (``start_stack(small_bundle_disk=True)``).
    bundle_mount: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- HTTP as staff and members -----------------------------------------------------------

    def request(
        self, method: str, path: str, *, token: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http://127.0.0.1
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def propose(self, value: str) -> tuple[int, dict[str, Any]]:
        status, _, body = self.request(
            "POST",
            "/api/v1/proposals/create-entry/",
            token=self.seed["analyst_token"],
            body={
                "category": "A",
                "age_group": "7-10",
                "hashes": [{"algorithm": "md5", "value": value}],
            },
        )
        return status, json.loads(body)

    def approve(self, proposal_id: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = self.request(
            "POST",
            f"/api/v1/proposals/{proposal_id}/approve/",
            token=self.seed["reviewer_token"],
            body={},
        )
        return status, headers, json.loads(body)

    def plan_status(self) -> tuple[int, dict[str, str], bytes]:
        return self.request(
            "GET", "/api/v1/sync/feeds/md5-all/plan/?from_version=0", token=self.seed["token"]
        )

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """``/readyz``: the status and which checks failed (name → detail)."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=30) as response:  # noqa: S310 - http://127.0.0.1
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        checks = json.loads(body)["checks"]
        return status, {name: c["detail"] for name, c in checks.items() if not c["ok"]}

    # --- the member client ------------------------------------------------------------------

    def client(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HASHSYNC_TOKEN": self.seed["token"],
            "HASHSYNC_CLIENT_CONFIG": str(self.root / "client.json"),
        }
        return subprocess.run(
            [str(BIN / "hashsync-client"), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def client_holds(self, value: str) -> bool:
        self.client("sync", "--no-progress", "--retries", "0")
        found = self.client("lookup", "--values", "--json", "-", stdin=value + "\n")
        return found.returncode == 0 and bool(json.loads(found.stdout.splitlines()[0])["matches"])

    # --- checks -------------------------------------------------------------------------------

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def access_statuses(self) -> list[int]:
        """The status of every request gunicorn answered (its access log: method, path and
        status only)."""
        statuses = []
        for line in self.web.log().splitlines():
            parts = line.split('" ')
            if len(parts) >= 2 and parts[1][:3].isdigit():
                statuses.append(int(parts[1][:3]))
        return statuses

    def stop(self) -> None:
        for process in (self.beat, self.worker, self.web):
            process.stop()
        self.redis.stop()
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the scenario
            self.pg.stop("immediate")
        if self.bundle_mount is not None:
            subprocess.run(["umount", str(self.bundle_mount)], check=False, timeout=30)
        if not os.environ.get("HASHSYNC_FAULTS_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


def production_env(root: Path, pg: PrivatePostgres, redis: PrivateRedis, web_port: int) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HASHSYNC_", "CELERY_", "DB_", "DJANGO_"))
        and key not in ("DATABASE_URL", "TEST_DATABASE_NAME", "SECRET_KEY", "ALLOWED_HOSTS")
    }
    env.update(
        {
            "HASHSYNC_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": pg.url,
            "HASHSYNC_CACHE_URL": redis.url(1),
            "CELERY_BROKER_URL": redis.url(0),
            "HASHSYNC_CLIENT_IP_HEADER": "REMOTE_ADDR",
            "HASHSYNC_VAR_DIR": str(root / "var"),
            "HASHSYNC_MEDIA_ROOT": str(root / "media"),
            "HASHSYNC_BUNDLE_ROOT": str(root / "bundles"),
            "HASHSYNC_SIGNING_KEY_PATH": str(root / "var" / "keys" / "signing.key"),
            "HASHSYNC_POLL_INTERVAL_SECONDS": "0",
            "HASHSYNC_RELEASE_DEBOUNCE_SECONDS": "0",
            # Beat's safety-net cut every 2 s, so a scenario sees recovery in seconds.
            "HASHSYNC_RELEASE_SWEEP_SECONDS": "2",
            "HASHSYNC_OUTAGE_RETRY_AFTER_SECONDS": "1",
            "HASHSYNC_CACHE_TIMEOUT_SECONDS": "1",
            # No TLS proxy in front here (make prod-check has nginx): plain HTTP is not
            # redirected to HTTPS, which production does by default.
            "SECURE_SSL_REDIRECT": "0",
            "GUNICORN_BIND": f"127.0.0.1:{web_port}",
            "GUNICORN_WORKERS": "2",
            "PYTHONPATH": f"{ROOT / 'client' / 'src'}:{ROOT}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def mount_small_disk(path: Path, *, size: str = "1m") -> str | None:
    """Mount a tmpfs of ``size`` at ``path``: a disk that really fills up. Returns why it could
    not (not root, no CAP_SYS_ADMIN in a container), or None."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def start_stack(*, small_bundle_disk: bool = False) -> Stack:
    root = Path(tempfile.mkdtemp(prefix="hashsync-faults-"))
    root.chmod(0o755)  # the postgres user must reach its data directory inside
    pg = PrivatePostgres(root)
    pg.start()
    pg.create_database()
    redis = PrivateRedis(root)
    redis.start()
    web_port = free_port()
    env = production_env(root, pg, redis, web_port)
    bundle_mount = None
    if small_bundle_disk:
        why = mount_small_disk(root / "bundles")
        if why is not None:
            pg.stop("immediate")
            redis.stop()
            raise DiskUnavailable(why)
        bundle_mount = root / "bundles"
    celery = [str(BIN / "celery"), "-A", "hashsync"]
    stack = Stack(
        root=root,
        pg=pg,
        redis=redis,
        env=env,
        web_port=web_port,
        web=Process(
            "web",
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "hashsync.wsgi"],
            env,
            root / "web.log",
        ),
        worker=Process(
            "worker",
            [
                *celery,
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--without-mingle",
                "--without-gossip",
            ],
            env,
            root / "worker.log",
        ),
        bundle_mount=bundle_mount,
        beat=Process(
            "beat",
            [*celery, "beat", "--loglevel=INFO", f"--schedule={root / 'beat-schedule'}"],
            env,
            root / "beat.log",
        ),
    )
    try:
        migrated = stack.manage("migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        # The signing keys and the staff, feed and member of the scenarios. Keys are made the
        # embedded way (a development root) since production refuses to generate any; the
        # production processes then only load them.
        seed_env = {**env, "HASHSYNC_ENV": "development"}
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.faults.seed"],
            env=seed_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        stack.seed = json.loads(seeded.stdout.strip().splitlines()[-1])
        stack.web.start()
        stack.worker.start()
        stack.beat.start()
        wait_until(
            lambda: urllib.request.urlopen(stack.url + "/healthz", timeout=5).status == 200,  # noqa: S310
            what="gunicorn",
        )
        wait_until(lambda: "ready." in stack.worker.log(), what="the Celery worker")
        init = [
            "init",
            "--server",
            stack.url,
            "--store",
            str(root / "store.sqlite3"),
        ]
        for keyid in stack.seed["root_keyids"]:
            init += ["--root-keyid", keyid]
        done = stack.client(*init)
        assert done.returncode == 0, done.stderr
    except BaseException:
        stack.stop()
        raise
    return stack
