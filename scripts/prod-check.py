#!/usr/bin/env python3
"""`make prod-check`: hashsync in production mode, every part real, on this one machine.

It starts, with ``HASHSYNC_ENV=production`` settings and the files in ``deploy/``: nginx
(Debian's package; the site is deploy/nginx.conf with ports and paths substituted, TLS with a
self-signed certificate made here) in front of two gunicorn web nodes, two Celery workers and
beat (command lines taken from the ExecStart of deploy/systemd/*.service), against a fresh
PostgreSQL database, a private redis-server and moto_server as the S3 store. Keys come from the
documented ceremony (keys_create_root on an "offline" directory, keys_issue_signing). Then,
through nginx only, staff (personal API tokens, taken from the web pages after a TOTP
enrolment) and the member client ``hashsync-client`` run curate → approve → release → sync →
lookup → retract → sync → hash-holders; a second client that was offline during many releases
catches up from a snapshot; forty approvals fired at once are released exactly once by the two
workers. Finally ``check --deploy``, ``audit_verify`` and a scan of every log for secrets and
hash values. Everything it started is stopped (also on failure or Ctrl-C) and its database
dropped. docs/operations.md, "Production check".

Environment: PRODCHECK_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres, a
role that may create databases), PRODCHECK_KEEP=1 keeps the working directory (logs, configs)
even on success; on failure it is always kept and named.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEED = "md5-all"
STARTED = time.monotonic()


class CheckFailed(Exception):
    """A step's expectation did not hold."""


class Stopped(BaseException):
    """SIGTERM: unwind like Ctrl-C, so the clean-up runs."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], *, what: str, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` until it returns something truthy (no fixed sleeps as assertions:
    the timeout only bounds a hang)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except CheckFailed:
            raise
        except Exception as exc:  # not up yet: connection refused, 502 from nginx, …
            last = exc
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise CheckFailed(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last})" if last else "")
    )


# --- processes ------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class Run:
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # what no log may contain
    hash_values: list[str] = field(default_factory=list)
    database: str | None = None
    admin_url: str = ""

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def start(self, name: str, argv: list[str], *, stop_signal: int = signal.SIGTERM) -> Service:
        log = self.logs / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C in the terminal reaches this script only, which
            # then stops every service in order.
            start_new_session=True,
        )
        handle.close()
        service = Service(name, process, log, stop_signal)
        self.services.append(service)
        return service

    def manage(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        with (self.logs / "manage.log").open("a") as log:
            log.write(f"$ manage.py {args[0]}\n{done.stdout}{done.stderr}")
        if check and done.returncode != 0:
            raise CheckFailed(
                f"manage.py {args[0]} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done.stdout + done.stderr

    def stop_all(self) -> list[str]:
        """Stop every service, newest first (nginx before the web nodes, …); returns the names
        of any that had to be killed."""
        killed = []
        for service in reversed(self.services):
            if not service.alive():
                continue
            try:
                os.killpg(service.process.pid, service.stop_signal)
            except ProcessLookupError:
                continue
            try:
                service.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)
                killed.append(service.name)
        # Anything left in a group (a gunicorn or Celery child) goes too.
        for service in self.services:
            try:
                os.killpg(service.process.pid, signal.SIGKILL)
                killed.append(f"{service.name} (children)")
            except ProcessLookupError:
                pass
        return killed


# --- HTTP -----------------------------------------------------------------------------------


def http() -> Any:
    import requests

    return requests


class Staff:
    """One staff person at the web pages (sign-in, second factor, personal API token) and then
    the staff API with that token, always through nginx."""

    def __init__(self, run: Run, base: str, username: str, password: str) -> None:
        self.run, self.base, self.username, self.password = run, base, username, password
        self.session = http().Session()
        # The environment's REQUESTS_CA_BUNDLE would otherwise win over the session's verify.
        self.session.trust_env = False
        self.session.verify = str(run.work / "tls" / "fullchain.pem")
        self.token: str | None = None

    def _form(self, path: str, data: dict[str, str]) -> Any:
        page = self.session.get(self.base + path, timeout=30)
        expect(page.status_code == 200, f"GET {path}: {page.status_code}")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        expect(csrf, f"no CSRF token on {path}")
        assert csrf is not None
        return self.session.post(
            self.base + path,
            data={"csrfmiddlewaretoken": csrf.group(1), **data},
            headers={"Referer": self.base + path},
            timeout=30,
        )

    def sign_in_and_take_token(self) -> str:
        answer = self._form("/login/", {"username": self.username, "password": self.password})
        expect(answer.status_code == 200, f"{self.username}: sign-in answered {answer.status_code}")
        if urlsplit(answer.url).path != "/account/second-factor/":
            # Analysts may work without a second factor, but tokens need one.
            answer = self.session.get(self.base + "/account/second-factor/", timeout=30)
        # Reviewers, member administrators and auditors are sent to enrol a TOTP
        # authenticator; this is what their app would compute from the key the page shows.
        secret = re.search(r'<p class="mono key">([A-Z2-7 ]+)</p>', answer.text)
        device = re.search(r'name="device_id" value="(\d+)"', answer.text)
        expect(secret and device, f"{self.username}: no enrolment form on the second-factor page")
        assert secret is not None and device is not None
        key = secret.group(1).replace(" ", "")
        self.run.secrets[f"TOTP key of {self.username}"] = key
        enrolled = self._form(
            "/account/second-factor/", {"device_id": device.group(1), "otp_token": totp(key)}
        )
        expect(
            enrolled.status_code == 200 and "recovery-codes" in enrolled.text,
            f"{self.username}: TOTP enrolment refused ({enrolled.status_code})",
        )
        made = self._form("/account/tokens/", {"name": "prod-check", "expires_in_days": "1"})
        found = re.search(r'id="new-token" value="([^"]+)"', made.text)
        expect(made.status_code == 200 and found, f"{self.username}: no token ({made.status_code})")
        assert found is not None
        self.token = found.group(1)
        self.run.secrets[f"API token of {self.username}"] = self.token
        return self.token

    def api(
        self, method: str, path: str, body: Any = None, expect_status: int | None = None
    ) -> Any:
        answer = http().request(
            method,
            self.base + "/api/v1/" + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.session.verify,
            timeout=60,
        )
        if expect_status is not None:
            expect(
                answer.status_code == expect_status,
                f"{self.username} {method} {path}: {answer.status_code} {answer.text[:300]}",
            )
        return answer


def totp(base32_key: str, *, at: float | None = None) -> str:
    """RFC 6238 as django-otp's TOTP devices use it: SHA-1, 30-second steps, 6 digits."""
    key = base64.b32decode(base32_key + "=" * (-len(base32_key) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


# --- the check ------------------------------------------------------------------------------


class ProdCheck:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.ports = {
            name: free_port() for name in ("nginx", "http", "web1", "web2", "redis", "s3")
        }
        self.base = f"https://localhost:{self.ports['nginx']}"
        self.staff: dict[str, Staff] = {}
        self.clients: dict[str, dict[str, str]] = {}
        self.root_keyid = ""
        self.first_value = ""
        self.entry_id = 0
        self.backup = Path()
        self.backup_version = 0
        self._batch_values: list[str] = []

    # -- helpers

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.run.env["DATABASE_URL"], autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def feed_version(self) -> int:
        rows = self.sql(
            "SELECT coalesce(max(v.version), 0) FROM distribution_feedversion v "
            "JOIN distribution_feed f ON f.id = v.feed_id WHERE f.name = %s",
            FEED,
        )
        return int(rows[0][0])

    def wait_released(self, *proposals: int) -> int:
        """Wait until the workers released the changes of these approved proposals; the
        release (feed version) that carries the last of them."""

        def released() -> int | None:
            rows = self.sql(
                "SELECT c.release FROM hashlist_change c WHERE c.proposal_id = ANY(%s)",
                list(proposals),
            )
            if not rows or any(r[0] is None for r in rows):
                return None
            newest = max(int(r[0]) for r in rows)
            return newest if self.feed_version() >= newest else None

        return int(
            wait_until(
                released, what=f"the release of proposal(s) {list(proposals)[:5]}", timeout=90
            )
        )

    def client(
        self, name: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.run.env, **self.clients[name]}
        done = subprocess.run(
            [str(BIN / "hashsync-client"), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        with (self.run.logs / f"client-{name}.log").open("a") as log:
            log.write(
                f"$ hashsync-client {' '.join(args)}  -> {done.returncode}\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def propose(self, value: str) -> int:
        made = self.staff["analyst"].api(
            "POST",
            "proposals/create-entry/",
            {
                "category": "A",
                "age_group": "7-10",
                "hashes": [{"algorithm": "md5", "value": value}],
            },
            expect_status=201,
        )
        return int(made.json()["id"])

    def new_value(self) -> str:
        value = secrets.token_hex(16)  # synthetic md5, random
        self.run.hash_values.append(value)
        return value

    # -- steps

    def step_services(self) -> str:
        run, ports = self.run, self.ports
        run.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(run.work),
            ],
        )
        run.start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ports["s3"])])
        import redis

        wait_until(lambda: redis.Redis(port=ports["redis"]).ping(), what="redis-server")
        wait_until(
            lambda: http().get(f"http://127.0.0.1:{ports['s3']}/", timeout=2).status_code < 500,
            what="moto_server",
        )
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=run.env["HASHSYNC_S3_ENDPOINT_URL"],
            region_name=run.env["HASHSYNC_S3_REGION"],
            aws_access_key_id=run.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=run.env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(
            Bucket=run.env["HASHSYNC_S3_BUCKET"],
            CreateBucketConfiguration={"LocationConstraint": run.env["HASHSYNC_S3_REGION"]},
        )
        import psycopg

        name = "hs_prod_" + secrets.token_hex(4)
        with psycopg.connect(run.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        run.database = name
        admin = urlsplit(run.admin_url)
        run.env["DATABASE_URL"] = admin._replace(path="/" + name).geturl()
        return (
            f"PostgreSQL database {name}, redis-server :{ports['redis']}, "
            f"moto_server :{ports['s3']}"
        )

    def step_setup(self) -> str:
        run = self.run
        documented = set(
            re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / "deploy" / ".env.example").read_text(), re.M)
        )
        ours = {
            k
            for k in run.env
            if k.startswith(("HASHSYNC_", "GUNICORN_", "CELERY_", "SECURE_", "DB_"))
        }
        ours |= {
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "CSRF_TRUSTED_ORIGINS",
            "DATABASE_URL",
            "STATIC_ROOT",
        }
        expect(ours <= documented, f"not in deploy/.env.example: {sorted(ours - documented)}")
        run.manage("migrate", "--no-input")
        run.manage("collectstatic", "--no-input")
        roles = {
            "analyst": "analyst",
            "reviewer": "reviewer",
            "member_admin": "member_admin",
            "auditor": "auditor",
        }
        for role, name in roles.items():
            password = secrets.token_urlsafe(18)
            run.secrets[f"password of {name}"] = password
            run.manage(
                "create_user",
                name,
                "--role",
                role,
                "--password-env",
                "PRODCHECK_PASSWORD",
                env={**run.env, "PRODCHECK_PASSWORD": password},
            )
            self.staff[role] = Staff(run, self.base, name, password)
        return "migrate, collectstatic, four staff accounts (create_user --password-env)"

    def step_keys(self) -> str:
        run = self.run
        offline = run.work / "offline"
        offline.mkdir(mode=0o700)
        passphrase = secrets.token_urlsafe(24)
        run.secrets["root key passphrase"] = passphrase
        # The offline machine: no database, no broker, no server settings at all.
        offline_env = {
            key: value
            for key, value in run.env.items()
            if not key.startswith(("HASHSYNC_", "DATABASE_", "CELERY_", "AWS_", "SECRET_KEY"))
        }
        offline_env.update(
            HASHSYNC_ENV="development",
            HASHSYNC_VAR_DIR=str(offline / "var"),
            HASHSYNC_ROOT_KEY_PASSWORD=passphrase,
        )
        out = run.manage(
            "keys_create_root", "--out", str(offline / "root.key"), "--encrypt", env=offline_env
        )
        found = re.search(r"pin this in member clients\): ([0-9a-f]{64})", out)
        expect(found, f"keys_create_root printed no key id:\n{out}")
        assert found is not None
        self.root_keyid = found.group(1)
        expect(
            b"ENCRYPTED" in (offline / "root.key").read_bytes(),
            "the root key file is not encrypted",
        )
        # The root key file is brought to the server for this one command, then taken away.
        run.manage(
            "keys_issue_signing",
            "--root-key",
            str(offline / "root.key"),
            "--encrypted",
            env={**run.env, "HASHSYNC_ROOT_KEY_PASSWORD": passphrase},
        )
        signing = Path(run.env["HASHSYNC_SIGNING_KEY_PATH"])
        expect(
            signing.exists() and signing.stat().st_mode & 0o077 == 0,
            "the online signing key is missing or readable by others",
        )
        shown = run.manage("keys_show")
        expect(self.root_keyid in shown, "keys_show does not name the root key id")
        return (
            f"root {self.root_keyid[:16]}… (offline, encrypted); keyring v1 signed; "
            "online key installed"
        )

    def _unit_command(self, unit: str) -> list[str]:
        text = (ROOT / "deploy" / "systemd" / unit).read_text()
        found = re.search(r"^ExecStart=(.+)$", text, re.M)
        expect(found, f"{unit} has no ExecStart")
        assert found is not None
        command = found.group(1).replace("/opt/hashsync/.venv/bin/", f"{BIN}/")
        command = command.replace("/var/lib/hashsync", str(self.run.work / "state"))
        return shlex.split(command)

    def step_processes(self) -> str:
        run = self.run
        for node in ("web1", "web2"):
            # As the unit's Environment= line does (RuntimeDirectory=): one metrics directory
            # per gunicorn, shared by its workers; two nodes on one host must not share one.
            metrics_dir = run.work / f"metrics-{node}"
            metrics_dir.mkdir()
            env = {
                **run.env,
                "GUNICORN_BIND": f"127.0.0.1:{self.ports[node]}",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            }
            saved, run.env = run.env, env
            try:
                run.start(node, self._unit_command("hashsync-web.service"))
            finally:
                run.env = saved
        worker = self._unit_command("hashsync-worker.service")
        for index in (1, 2):
            # Two workers on one host need two node names (on two hosts the host names differ).
            run.start(f"worker{index}", [*worker, f"--hostname=worker{index}@%h"])
        run.start("beat", self._unit_command("hashsync-beat.service"))
        self._start_nginx()
        for node in ("web1", "web2"):
            wait_until(
                partial(self._node_answers, self.ports[node]), what=f"gunicorn {node}", timeout=90
            )
        for service in run.services:
            if service.name.startswith("worker"):
                needle = " ready."
            elif service.name == "beat":
                needle = "beat: Starting"
            else:
                continue
            wait_until(
                partial(self._alive_and_logged, service, needle),
                what=f"{service.name} to start",
                timeout=90,
            )
        cert = str(run.work / "tls" / "fullchain.pem")
        wait_until(
            lambda: http().get(self.base + "/login/", verify=cert, timeout=5).status_code == 200,
            what="nginx",
            timeout=30,
        )
        # Ready: database, cache, broker, S3, the signing key, no manifest near expiry.
        wait_until(
            lambda: http().get(self.base + "/readyz", verify=cert, timeout=20).status_code == 200,
            what="/readyz through nginx",
            timeout=60,
        )
        static = http().get(self.base + "/static/hashsync/app.css", verify=cert, timeout=5)
        expect(static.status_code == 200, f"static file through nginx: {static.status_code}")
        plain = http().get(
            f"http://127.0.0.1:{self.ports['http']}/login/", allow_redirects=False, timeout=5
        )
        expect(
            plain.status_code == 301 and plain.headers["Location"].startswith("https://"),
            f"nginx on plain HTTP answered {plain.status_code}",
        )
        direct = http().get(
            f"http://127.0.0.1:{self.ports['web1']}/login/",
            headers={"Host": "localhost"},
            allow_redirects=False,
            timeout=5,
        )
        expect(
            direct.status_code == 301 and direct.headers["Location"].startswith("https://"),
            f"gunicorn over plain HTTP without the proxy's header answered {direct.status_code}",
        )
        return (
            f"nginx :{self.ports['nginx']} (TLS) → gunicorn :{self.ports['web1']}, "
            f":{self.ports['web2']}; worker1, worker2, beat; static files by nginx; "
            "plain HTTP redirected"
        )

    def _node_answers(self, port: int) -> bool:
        answer = http().get(
            f"http://127.0.0.1:{port}/login/",
            headers={"Host": "localhost", "X-Forwarded-Proto": "https"},
            timeout=5,
        )
        return bool(answer.status_code == 200)

    def _alive_and_logged(self, service: Service, needle: str) -> bool:
        expect(service.alive(), f"{service.name} exited:\n{service.tail()}")
        return needle in service.log.read_text(errors="replace")

    def _start_nginx(self) -> None:
        run = self.run
        tls = run.work / "tls"
        tls.mkdir()
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(tls / "privkey.pem"),
                "-out",
                str(tls / "fullchain.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        nodes = "".join(f"server 127.0.0.1:{self.ports[n]};\n    " for n in ("web1", "web2"))
        for old, new in (
            ("listen 443 ssl", f"listen 127.0.0.1:{self.ports['nginx']} ssl"),
            ("listen 80;", f"listen 127.0.0.1:{self.ports['http']};"),
            ("server_name hashsync.example.org;", "server_name localhost;"),
            ("/etc/ssl/hashsync/", f"{tls}/"),
            ("/var/log/nginx/", f"{run.logs}/nginx-"),
            ("/var/lib/hashsync/static/", f"{run.env['STATIC_ROOT']}/"),
            ("server 127.0.0.1:8000;\n    ", nodes),
            # The probe and metrics locations ask this host's own node.
            (
                "proxy_pass http://127.0.0.1:8000;",
                f"proxy_pass http://127.0.0.1:{self.ports['web1']};",
            ),
        ):
            expect(
                old in site,
                f"deploy/nginx.conf no longer has {old!r}: update scripts/prod-check.py",
            )
            site = site.replace(old, new)
        nginx = run.work / "nginx"
        for sub in ("", "temp"):
            (nginx / sub).mkdir(exist_ok=True)
        (nginx / "hashsync.conf").write_text(site)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        (nginx / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {nginx}/nginx.pid;\n"
            f"error_log {run.logs}/nginx-error.log warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
            f"  access_log {run.logs}/nginx-other.access.log;\n"
            + "".join(
                f"  {kind}_temp_path {nginx}/temp/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  include {nginx}/hashsync.conf;\n}}\n"
        )
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        argv = [
            nginx_bin,
            "-p",
            str(nginx),
            "-e",
            str(run.logs / "nginx-error.log"),
            "-c",
            str(nginx / "nginx.conf"),
        ]
        tested = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
        expect(tested.returncode == 0, f"nginx -t refused the generated config:\n{tested.stderr}")
        run.start("nginx", argv, stop_signal=signal.SIGQUIT)

    def step_staff_tokens(self) -> str:
        for staff in self.staff.values():
            staff.sign_in_and_take_token()
        me = self.staff["reviewer"].api("GET", "me/", expect_status=200).json()
        expect("reviewer" in json.dumps(me), f"me/ does not name the role: {me}")
        # Bearer tokens only: HTTP Basic with the right password is refused in production.
        basic = http().get(
            self.base + "/api/v1/me/",
            auth=("analyst", self.staff["analyst"].password),
            verify=self.staff["analyst"].session.verify,
            timeout=30,
        )
        expect(
            basic.status_code == 401 and "error" in basic.json(),
            f"HTTP Basic answered {basic.status_code}",
        )
        return (
            "4 staff signed in through nginx, enrolled TOTP, took personal API tokens; "
            "HTTP Basic refused"
        )

    def step_members(self) -> str:
        admin = self.staff["member_admin"]
        admin.api("POST", "feeds/", {"name": FEED, "algorithms": ["md5"]}, expect_status=201)
        admin.api(
            "POST",
            "members/",
            {"name": "acme", "display_name": "Acme (synthetic)"},
            expect_status=201,
        )
        admin.api("POST", "members/acme/entitlements/", {"feed": FEED}, expect_status=201)
        for name in ("edge-1", "edge-2"):
            admin.api("POST", "members/acme/clients/", {"name": name}, expect_status=201)
            issued = admin.api(
                "POST",
                f"members/acme/clients/{name}/tokens/",
                {"scopes": ["sync", "lookup"], "expires_in_days": 1},
                expect_status=201,
            )
            token = issued.json()["token"]
            self.run.secrets[f"member token of {name}"] = token
            home = self.run.work / "clients" / name
            home.mkdir(parents=True)
            self.clients[name] = {
                "HASHSYNC_TOKEN": token,
                "HASHSYNC_CLIENT_CONFIG": str(home / "client.json"),
            }
            init = self.client(
                name,
                "init",
                "--server",
                self.base + "/",
                "--root-keyid",
                self.root_keyid,
                "--store",
                str(home / "store.sqlite3"),
                "--ca-bundle",
                str(self.run.work / "tls" / "fullchain.pem"),
            )
            expect(init.returncode == 0, f"client init {name}: {init.stdout}{init.stderr}")
        return (
            f"feed {FEED}, member acme entitled, clients edge-1 and edge-2 initialised "
            "(pinned root)"
        )

    def step_curate_release_sync(self) -> str:
        value = self.new_value()
        self.first_value = value
        proposal = self.propose(value)
        # Four eyes: the author (an analyst, who also lacks the role) cannot approve.
        refused = self.staff["analyst"].api("POST", f"proposals/{proposal}/approve/", {})
        expect(
            refused.status_code == 403 and "error" in refused.json(),
            f"author approved: {refused.status_code}",
        )
        own = (
            self.staff["reviewer"]
            .api(
                "POST",
                "proposals/create-entry/",
                {
                    "category": "A",
                    "age_group": "7-10",
                    "hashes": [{"algorithm": "md5", "value": self.new_value()}],
                },
                expect_status=201,
            )
            .json()["id"]
        )
        self_approval = self.staff["reviewer"].api("POST", f"proposals/{own}/approve/", {})
        expect(
            self_approval.status_code in (403, 409) and "error" in self_approval.json(),
            f"a reviewer approved their own proposal: {self_approval.status_code}",
        )
        self.staff["reviewer"].api("POST", f"proposals/{own}/withdraw/", {}, expect_status=200)
        approved = self.staff["reviewer"].api(
            "POST", f"proposals/{proposal}/approve/", {}, expect_status=200
        )
        self.entry_id = int(approved.json()["entry"])
        version = self.wait_released(proposal)
        for name in ("edge-1", "edge-2"):
            synced = self.client(name, "sync", "--no-progress", "--json")
            expect(synced.returncode == 0, f"{name} sync: {synced.stdout}{synced.stderr}")
            report = json.loads(synced.stdout)
            expect(
                report["feeds"][0]["version"] >= version, f"{name} is not at {version}: {report}"
            )
        found = self.client("edge-1", "lookup", "--values", "--json", "-", stdin=value + "\n")
        expect(
            found.returncode == 0 and json.loads(found.stdout.splitlines()[0])["matches"],
            f"lookup after release: {found.returncode} {found.stdout}{found.stderr}",
        )
        return (
            f"proposed, self-approval refused, approved by a second person, version {version} "
            "cut; both clients synced; lookup MATCH"
        )

    def step_retract(self) -> str:
        retract = self.staff["analyst"].api(
            "POST",
            "proposals/retract/",
            {"entry": self.entry_id, "reason": "synthetic: listed in error"},
            expect_status=201,
        )
        self.staff["reviewer"].api(
            "POST", f"proposals/{retract.json()['id']}/approve/", {}, expect_status=200
        )
        version = self.wait_released(retract.json()["id"])
        synced = self.client("edge-1", "sync", "--no-progress")
        expect(synced.returncode == 0, f"sync after retraction: {synced.stdout}{synced.stderr}")
        gone = self.client(
            "edge-1", "lookup", "--values", "--json", "-", stdin=self.first_value + "\n"
        )
        expect(
            gone.returncode == 1 and not json.loads(gone.stdout.splitlines()[0])["matches"],
            f"lookup after retraction: {gone.returncode} {gone.stdout}{gone.stderr}",
        )
        holders = (
            self.staff["auditor"]
            .api(
                "POST",
                "audit/hash-holders/",
                {"algorithm": "md5", "value": self.first_value},
                expect_status=200,
            )
            .json()
        )
        record = next((h for h in holders["holders"] if h["client"] == "edge-1"), None)
        expect(
            record and record["removed_in_version"] == version and record["removal_acked_at"],
            f"hash-holders does not show edge-1 acking the removal: {holders}",
        )
        return (
            f"retraction released as version {version}; edge-1 synced, lookup no match; "
            "hash-holders names edge-1 and its removal ack"
        )

    def step_many_releases(self) -> str:
        # The night's backup, restored by the drill below after the releases that follow it.
        self.backup = self.run.work / "backup.dump"
        self.backup_version = self.feed_version()
        subprocess.run(
            [
                "pg_dump",
                "--format=custom",
                "--file",
                str(self.backup),
                self.run.env["DATABASE_URL"],
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # edge-2 stays offline from here on.
        for _ in range(4):
            proposal = self.propose(self.new_value())
            self.staff["reviewer"].api(
                "POST", f"proposals/{proposal}/approve/", {}, expect_status=200
            )
            self.wait_released(proposal)
        lag = self.member_lag()
        expect(lag >= 4, f"/metrics shows acme {lag} versions behind while edge-2 is offline")
        return (
            f"4 more releases one by one; {FEED} now at version {self.feed_version()}; "
            f"/metrics: acme {lag:g} versions behind"
        )

    def scrape(self, port: int, token: str | None) -> Any:
        """GET /metrics from one gunicorn node directly, as Prometheus scrapes every node."""
        headers = {"Host": "localhost"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return http().get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=20)

    def member_lag(self) -> float:
        answer = self.scrape(self.ports["web2"], self.run.env["HASHSYNC_METRICS_TOKEN"])
        expect(answer.status_code == 200, f"/metrics answered {answer.status_code}")
        found = re.search(
            r'^hashsync_member_lag_versions\{member="acme"\} ([0-9.e+]+)$', answer.text, re.M
        )
        expect(found, "/metrics has no hashsync_member_lag_versions for acme")
        assert found is not None
        return float(found.group(1))

    def step_monitoring(self) -> str:
        run = self.run
        cert = str(run.work / "tls" / "fullchain.pem")
        ready = http().get(self.base + "/readyz", verify=cert, timeout=20)
        body = ready.json()
        expect(
            ready.status_code == 200 and all(c["ok"] for c in body["checks"].values()),
            f"/readyz: {ready.status_code} {ready.text[:300]}",
        )
        token = run.env["HASHSYNC_METRICS_TOKEN"]
        for port in (self.ports["web1"], self.ports["web2"]):
            refused = self.scrape(port, None), self.scrape(port, "x" * 32)
            expect(
                [r.status_code for r in refused] == [401, 401],
                f"/metrics without / with a wrong token: {[r.status_code for r in refused]}",
            )
        through = http().get(
            self.base + "/metrics", headers={"Authorization": f"Bearer {token}"}, verify=cert
        )
        expect(through.status_code == 200, f"/metrics through nginx: {through.status_code}")
        lag = self.member_lag()
        expect(lag == 0, f"/metrics shows acme {lag} versions behind after both clients synced")
        served = 0.0
        requests = 0.0
        for port in (self.ports["web1"], self.ports["web2"]):
            text = self.scrape(port, token).text
            served += sum(
                float(v)
                for v in re.findall(
                    r'^hashsync_bundle_bytes_served_total\{via="redirect"\} ([0-9.e+]+)$',
                    text,
                    re.M,
                )
            )
            requests += sum(
                float(v)
                for v in re.findall(
                    r'^hashsync_http_requests_total\{[^}]*route="[^"]*sync-plan"[^}]*\} '
                    r"([0-9.e+]+)$",
                    text,
                    re.M,
                )
            )
        expect(served > 0, "no bundle bytes counted as served by presigned redirect")
        expect(requests > 0, "no plan requests counted on either node")
        return (
            f"/readyz: {', '.join(sorted(body['checks']))} ok; /metrics refuses a missing or "
            f"wrong token; acme 0 versions behind; {requests:g} plan requests and "
            f"{served:g} bundle bytes by redirect counted over both nodes"
        )

    def step_exactly_once(self) -> str:
        first_release = int(
            self.sql("SELECT coalesce(max(version), 0) FROM distribution_release")[0][0]
        )
        values = [self.new_value() for _ in range(40)]
        proposals = [self.propose(value) for value in values]
        reviewer = self.staff["reviewer"]

        def approve(proposal: int) -> int:
            return int(reviewer.api("POST", f"proposals/{proposal}/approve/", {}).status_code)

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(proposals)) as pool:
            statuses = list(pool.map(approve, proposals))
        expect(
            statuses == [200] * len(proposals),
            f"concurrent approvals answered {sorted(set(statuses))}",
        )
        self.wait_released(*proposals)
        expect(
            self.sql("SELECT count(*) FROM hashlist_change WHERE proposal_id = ANY(%s)", proposals)[
                0
            ][0]
            == len(proposals),
            "an approval did not record exactly one change",
        )
        releases = self.sql(
            "SELECT version, change_count, first_change_id, last_change_id "
            "FROM distribution_release ORDER BY version"
        )
        versions = [r[0] for r in releases]
        expect(
            versions == list(range(1, len(versions) + 1)),
            f"release versions not contiguous: {versions}",
        )
        changes = self.sql("SELECT id, release FROM hashlist_change ORDER BY id")
        expect(
            sum(r[1] for r in releases) == len(changes),
            f"{sum(r[1] for r in releases)} changes counted in releases, "
            f"{len(changes)} changes exist",
        )
        for change_id, release in changes:
            owners = [r[0] for r in releases if r[2] <= change_id <= r[3]]
            expect(
                owners == [release], f"change {change_id} is in releases {owners}, marked {release}"
            )
        batch = [r for r in releases if r[0] > first_release]
        by_worker = {
            s.name: sum(
                1
                for line in s.log.read_text(errors="replace").splitlines()
                if "distribution.release_cut[" in line and "succeeded" in line
            )
            for s in self.run.services
            if s.name.startswith("worker")
        }
        by_node = {
            s.name: s.log.read_text(errors="replace").count("/approve/")
            for s in self.run.services
            if s.name.startswith("web")
        }
        self._batch_values = values
        return (
            f"40 approvals at once → {len(batch)} release(s) v{batch[0][0]}–v{batch[-1][0]}; "
            f"versions 1–{versions[-1]} contiguous, {len(changes)} changes each in exactly "
            "one release; "
            f"approvals answered per web node: {by_node}; release cuts run per worker: {by_worker}"
        )

    def sync_both_and_compare(self, version: int) -> None:
        """Both edge clients sync to ``version``, verify their store, and hold exactly the
        state digest the server signed for it."""
        digests = {}
        for name in ("edge-1", "edge-2"):
            synced = self.client(name, "sync", "--no-progress", "--json")
            expect(synced.returncode == 0, f"{name} sync: {synced.stdout}{synced.stderr}")
            report = json.loads(synced.stdout)["feeds"][0]
            expect(report["version"] == version, f"{name} at {report['version']}, not {version}")
            digests[name] = report["state_digest"]
            verified = self.client(name, "verify")
            expect(verified.returncode == 0, f"{name} verify: {verified.stdout}{verified.stderr}")
        server = self.sql(
            "SELECT v.state_digest FROM distribution_feedversion v JOIN distribution_feed f "
            "ON f.id = v.feed_id WHERE f.name = %s ORDER BY v.version DESC LIMIT 1",
            FEED,
        )[0][0]
        expect(set(digests.values()) == {server}, f"state digests {digests}, server {server}")

    def step_catch_up(self) -> str:
        server_version = self.feed_version()
        token = self.clients["edge-2"]["HASHSYNC_TOKEN"]
        cert = str(self.run.work / "tls" / "fullchain.pem")
        status = self.client("edge-2", "status", "--json")
        held = json.loads(status.stdout.splitlines()[0])["version"]
        plan = http().get(
            f"{self.base}/api/v1/sync/feeds/{FEED}/plan/?from_version={held}",
            headers={"Authorization": f"Bearer {token}"},
            verify=cert,
            timeout=30,
        )
        expect(plan.status_code == 200, f"plan: {plan.status_code} {plan.text[:300]}")
        body = plan.json()
        expect(
            body["status"] == "snapshot" and body["steps"][0]["kind"] == "snapshot",
            f"edge-2 at version {held} was not offered the snapshot: {body['status']}",
        )
        step = body["steps"][0]
        # Bundles are presigned S3 redirects: the token goes to hashsync only, the bytes come
        # from the object store.
        bundle = http().get(
            self.base + step["url"],
            headers={"Authorization": f"Bearer {token}"},
            verify=cert,
            allow_redirects=False,
            timeout=30,
        )
        location = bundle.headers.get("Location", "")
        expect(
            bundle.status_code in (302, 303, 307)
            and location.startswith(self.run.env["HASHSYNC_S3_ENDPOINT_URL"])
            and "X-Amz-Signature=" in location,
            f"bundle answer {bundle.status_code} {location[:80]}",
        )
        data = http().get(location, timeout=30).content
        expect(
            hashlib.sha256(data).hexdigest() == step["sha256"],
            "the presigned bundle's bytes differ",
        )
        synced = self.client("edge-2", "sync", "--no-progress", "--json")
        expect(synced.returncode == 0, f"edge-2 catch-up: {synced.stdout}{synced.stderr}")
        report = json.loads(synced.stdout)["feeds"][0]
        expect(
            report["version"] == server_version,
            f"edge-2 at {report['version']}, server {server_version}",
        )
        found = self.client(
            "edge-2",
            "lookup",
            "--values",
            "--json",
            "-",
            stdin="\n".join([self.first_value, *self._batch_values]) + "\n",
        )
        lines = [json.loads(line) for line in found.stdout.splitlines()]
        expect(
            not lines[0]["matches"] and all(line["matches"] for line in lines[1:]),
            "edge-2's lookups after catching up are wrong "
            "(retracted hash found, or a new one missing)",
        )
        self.sync_both_and_compare(server_version)
        return (
            f"edge-2 from version {held} to {server_version} via the snapshot "
            "(presigned S3 redirect, sha256 checked); "
            "both clients verify and match the server's state digest"
        )

    def step_restore_drill(self) -> str:
        """docs/operations.md, "Restore": the database comes back from the backup taken before
        the last releases; members' clients refuse the older history (a rollback) and keep
        their copy, until ``release_resume`` publishes every feed afresh above what they hold."""
        run = self.run
        held = self.feed_version()
        import psycopg

        with psycopg.connect(run.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{run.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{run.database}"')
        subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", run.env["DATABASE_URL"], str(self.backup)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        expect(
            self.feed_version() == self.backup_version,
            f"restored at version {self.feed_version()}, backup taken at {self.backup_version}",
        )
        refused = self.client("edge-1", "sync", "--no-progress", "--retries", "0")
        status = self.client("edge-1", "status", "--json")
        kept = json.loads(status.stdout.splitlines()[0])["version"]
        expect(
            refused.returncode != 0 and kept == held,
            f"edge-1 after the restore: exit {refused.returncode}, holds {kept} (had {held})",
        )
        out = run.manage("release_resume", "--above", str(held))
        said = next((line for line in out.splitlines() if line.startswith("Release")), out)
        resumed = self.feed_version()
        expect(resumed == held + 1, f"release_resume published version {resumed}")
        # The restore also took the transparency log back to the backup: a client that holds a
        # later checkpoint sees a log that shrank and must stop (exit 5, a fork proof kept) —
        # docs/transparency.md, "Limits". Nothing the restored server signs can talk it round.
        for name in ("edge-1", "edge-2"):
            stopped = self.client(name, "sync", "--no-progress", "--retries", "0")
            status = self.client(name, "status", "--json")
            version = json.loads(status.stdout.splitlines()[0])["version"]
            forks = list((run.work / "clients" / name).glob("*.forks/fork-*.json"))
            expect(
                stopped.returncode == 5 and forks and version <= held,
                f"{name} after the resume: exit {stopped.returncode}, holds {version}, "
                f"fork proofs {len(forks)}",
            )
        return (
            f"restored the backup of version {self.backup_version} under clients at {held}: "
            f"edge-1 refused the rollback and kept its copy; release_resume --above {held} → "
            f"{said[:12]} (version {resumed}); both clients stop on the shrunken transparency "
            "log (exit 5, fork proof kept), as docs/transparency.md says a restore does"
        )

    def step_deploy_checks(self) -> str:
        out = self.run.manage("check", "--deploy", "--fail-level", "WARNING")
        audit = self.run.manage("audit_verify")
        return (
            f"check --deploy: {out.strip().splitlines()[-1]}; "
            f"audit_verify: {audit.strip().splitlines()[-1]}"
        )

    def step_logs(self) -> str:
        needles = dict(self.run.secrets)
        needles["SECRET_KEY"] = self.run.env["SECRET_KEY"]
        needles["AWS secret"] = self.run.env["AWS_SECRET_ACCESS_KEY"]
        for value in self.run.hash_values:
            needles[f"hash value {value[:6]}…"] = value
        files = sorted(p for p in self.run.logs.iterdir() if not p.name.startswith("client-"))
        found = []
        for path in files:
            text = path.read_text(errors="replace").lower()
            found += [
                f"{what} in {path.name}"
                for what, needle in needles.items()
                if needle.lower() in text
            ]
        expect(not found, "secrets or hash values in logs: " + "; ".join(found))
        # No request through nginx was answered with a server error.
        statuses = re.findall(
            r'" (\d{3}) ', (self.run.logs / "nginx-hashsync.access.log").read_text()
        )
        errors = sorted({code for code in statuses if code.startswith("5")})
        expect(statuses and not errors, f"nginx logged server errors: {errors}")
        sizes = sum(p.stat().st_size for p in files)
        return (
            f"{len(needles)} secrets/tokens/hash values absent from {len(files)} logs "
            f"({sizes // 1024} KiB); {len(statuses)} requests through nginx, none answered 5xx"
        )


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="hashsync-prod-check-"))
    work.chmod(0o755)  # nginx's workers read the static files and certificates below it
    for sub in ("logs", "state", "state/secrets", "state/media", "state/static"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "state" / "secrets").chmod(0o700)
    run = Run(work)
    run.admin_url = os.environ.get(
        "PRODCHECK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
    )
    check = ProdCheck(run)
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HASHSYNC_", "DATABASE_", "CELERY_", "GUNICORN_", "DJANGO_", "AWS_"))
        and k
        not in (
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "CSRF_TRUSTED_ORIGINS",
            "DEBUG",
            "TEST_DATABASE_NAME",
        )
    }
    state = work / "state"
    run.env = {
        **inherited,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "client" / "src"), str(ROOT)]),
        "PATH": f"{BIN}{os.pathsep}{inherited.get('PATH', '')}",
        "HASHSYNC_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": check.base,
        "DATABASE_URL": "",  # set once the database exists
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{check.ports['redis']}/0",
        "HASHSYNC_CACHE_URL": f"redis://127.0.0.1:{check.ports['redis']}/1",
        "HASHSYNC_CLIENT_IP_HEADER": "HTTP_X_REAL_IP",
        "HASHSYNC_SIGNING_KEY_PATH": str(state / "secrets" / "hashsync-signing.key"),
        "HASHSYNC_VAR_DIR": str(state),
        "HASHSYNC_MEDIA_ROOT": str(state / "media"),
        "STATIC_ROOT": str(state / "static"),
        "HASHSYNC_BUNDLE_STORAGE": "s3",
        "HASHSYNC_S3_BUCKET": "hashsync-bundles",
        "HASHSYNC_S3_PREFIX": "bundles",
        "HASHSYNC_S3_REGION": "eu-west-2",
        "HASHSYNC_S3_ENDPOINT_URL": f"http://127.0.0.1:{check.ports['s3']}",
        "HASHSYNC_S3_ADDRESSING": "path",
        "AWS_ACCESS_KEY_ID": "prodcheck",
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        # Clients here sync back to back; production announces 5 s.
        "HASHSYNC_POLL_INTERVAL_SECONDS": "0",
        # Few deltas before the snapshot, so the offline client's catch-up takes it.
        "HASHSYNC_PLAN_MAX_DELTAS": "3",
        # Two cores: two sync workers per web node.
        "GUNICORN_WORKERS": "2",
        "LOG_LEVEL": "info",
        "HASHSYNC_METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    run.secrets["metrics token"] = run.env["HASHSYNC_METRICS_TOKEN"]
    steps: list[tuple[str, Callable[[], str]]] = [
        ("services: PostgreSQL database, private Redis, moto S3", check.step_services),
        ("migrate, collectstatic, staff accounts", check.step_setup),
        ("keys: offline root, keyring v1, online signing key", check.step_keys),
        ("processes: nginx, 2 gunicorn, 2 workers, beat", check.step_processes),
        ("staff sign-in, TOTP, personal API tokens", check.step_staff_tokens),
        ("feed, member, entitlement, two clients", check.step_members),
        ("curate → four-eyes approve → release → sync → lookup", check.step_curate_release_sync),
        ("retract → release → sync → hash-holders", check.step_retract),
        ("releases while edge-2 is offline", check.step_many_releases),
        ("40 concurrent approvals released exactly once", check.step_exactly_once),
        ("offline client catches up from a snapshot", check.step_catch_up),
        ("/readyz and /metrics: member lag back to 0", check.step_monitoring),
        (
            "restore drill: backup restored, clients refuse, release_resume",
            check.step_restore_drill,
        ),
        ("check --deploy --fail-level WARNING, audit_verify", check.step_deploy_checks),
        ("no secret, token or hash value in any log", check.step_logs),
    ]
    results: list[tuple[str, str, float, str]] = []
    failed = False

    def on_sigterm(*_: object) -> None:
        raise Stopped()

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C unwinds into the clean-up even when a non-interactive parent started this script
    # with SIGINT ignored (as shells do for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"hashsync prod-check: working directory {work}", flush=True)
    try:
        for title, step in steps:
            began = time.monotonic()
            print(f"… {title}", flush=True)
            try:
                detail = step()
            except Exception as exc:
                detail = str(exc) if isinstance(exc, CheckFailed) else traceback.format_exc()
                results.append(("FAIL", title, time.monotonic() - began, detail))
                failed = True
                for service in run.services:
                    if not service.alive():
                        results[-1] = (
                            *results[-1][:3],
                            results[-1][3] + f"\n{service.name} exited:\n{service.tail()}",
                        )
                break
            results.append(("PASS", title, time.monotonic() - began, detail))
    except (KeyboardInterrupt, Stopped):
        results.append(("FAIL", "interrupted", 0.0, "stopped by a signal"))
        failed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        began = time.monotonic()
        killed = run.stop_all()
        dropped = ""
        if run.database:
            try:
                import psycopg

                with psycopg.connect(run.admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
                dropped = f"; database {run.database} dropped"
            except Exception as exc:
                dropped = f"; database {run.database} NOT dropped: {exc}"
                failed = True
        alive = [s.name for s in run.services if s.alive()]
        stopped_ok = not alive and "NOT" not in dropped
        results.append(
            (
                "PASS" if stopped_ok else "FAIL",
                "stop everything started",
                time.monotonic() - began,
                f"{len(run.services)} processes stopped"
                + (f" (killed: {', '.join(killed)})" if killed else "")
                + dropped
                + (f"; STILL RUNNING: {alive}" if alive else ""),
            )
        )
        failed = failed or not stopped_ok
        signal.signal(signal.SIGINT, signal.default_int_handler)

    print("\nhashsync prod-check summary")
    for status, title, seconds, detail in results:
        print(f"  {status}  {title}  ({seconds:.1f}s)")
        for line in detail.strip().splitlines():
            print(f"        {line}")
    ran = [t for _, t, _, _ in results]
    for title, _ in steps:
        if title not in ran:
            print(f"  SKIP  {title}  (not reached)")
    total = time.monotonic() - STARTED
    if failed or os.environ.get("PRODCHECK_KEEP") == "1":
        print(f"\nLogs and configuration kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'FAIL' if failed else 'PASS'}  prod-check in {total:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
