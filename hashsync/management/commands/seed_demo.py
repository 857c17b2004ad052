"""Seed the embedded default with demo users and weeks of demo history over SYNTHETIC hashes.

Every hash created here is random bytes — not a hash of any real image — and is labelled
``source = "synthetic-demo"``. Demo passwords are random, generated on first run and kept in
``var/demo-logins.json`` (mode 0600). Refuses to run in production.

On an empty database it writes 8 weeks of history (``_demo_history``: proposals and reviews,
releases, members and their clients' syncs), each event at its moment in the past
(``_demo_clock``), so the audit chain is appended in time order and stays intact. Later runs
find the demo list and add nothing.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from distribution import keys, releases
from distribution.models import Feed
from distribution.services import feed_create
from hashlist.models import Entry
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER, ensure_roles
from members import services as member_services
from members.models import ApiToken, Member

from ._demo_clock import demo_clock
from ._demo_history import (
    MINIMUM_ENTRIES,
    SOURCE,
    WEEKS,
    build_history,
    history_start,
    synthetic_hash,
)

DEMO_USERS = [
    ("analyst", ANALYST),
    ("analyst2", ANALYST),
    ("reviewer", REVIEWER),
    ("reviewer2", REVIEWER),
    ("member-admin", MEMBER_ADMIN),
    ("auditor", AUDITOR),
]
# The example feeds of DESIGN.md §3.
DEMO_FEEDS: list[dict[str, Any]] = [
    {"name": "all", "description": "Every active entry, every algorithm."},
    {"name": "photodna-all", "algorithms": ["photodna"], "description": "PhotoDNA licensees."},
    {
        "name": "md5-sha1-category-a",
        "algorithms": ["md5", "sha1"],
        "categories": ["A"],
        "description": "MD5 and SHA-1 hashes of category A entries.",
    },
    {
        "name": "pdq-baseline",
        "algorithms": ["pdq"],
        "baseline_only": True,
        "description": "PDQ hashes of entries marked INTERPOL baseline.",
    },
]


DEMO_MEMBER = "demo-member"
# No PhotoDNA licence: the demo member receives the feeds that cannot carry PhotoDNA.
DEMO_MEMBER_FEEDS = ["md5-sha1-category-a", "pdq-baseline"]
CLIENT_DIR = "var/client"
CLIENT_CONFIG = f"--config {CLIENT_DIR}/config.json"
TOKEN_KEY = "demo-member-token"  # noqa: S105 - a key of the logins file, not a secret


def _refuse_busy_port(url: str) -> None:
    """Say so before the banner when the server could not start (another hashsync running)."""
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise CommandError(
                f"Port {port} on {host} is already in use (another hashsync, or another "
                f"program). Stop it, or start on another port: make run PORT={port + 1}"
            ) from None


__all__ = ["Command", "synthetic_hash"]


class Command(BaseCommand):
    help = "Create demo users and a demo list of synthetic hashes (embedded default only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--entries",
            type=int,
            default=240,
            help=f"approved demo entries over the {WEEKS} weeks of history "
            f"(at least {MINIMUM_ENTRIES})",
        )
        parser.add_argument("--pending", type=int, default=3, help="proposals left for review")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")
        parser.add_argument(
            "--check-port",
            action="store_true",
            help="refuse to start when the URL's host and port are already in use (make run)",
        )

    def handle(self, *args: Any, entries: int, pending: int, url: str, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with HASHSYNC_ENV=production.")
        if entries < MINIMUM_ENTRIES or pending < 0:
            raise CommandError(f"--entries must be at least {MINIMUM_ENTRIES}, --pending >= 0.")
        if options["check_port"]:
            _refuse_busy_port(url)
        logins = self._users()
        users = {name: get_user_model().objects.get(username=name) for name, _ in DEMO_USERS}
        if not Entry.objects.filter(source=SOURCE).exists():
            self._history(users, logins, entries, pending)
        for feed in DEMO_FEEDS:
            if not Feed.objects.filter(name=feed["name"]).exists():
                feed_create(actor=users["member-admin"], **feed)
        self._demo_member(users["member-admin"], logins)
        keys.ensure_development_keys()  # normally made by the history, above
        # As the hourly beat task would: no feed's newest manifest is about to expire.
        releases.manifest_resign()
        self._print(url, logins)

    def _history(
        self, users: dict[str, Any], logins: dict[str, str], entries: int, pending: int
    ) -> None:
        now = timezone.now()
        start = history_start(now)
        latest = AuditEvent.objects.order_by("-seq").values_list("at", flat=True).first()
        if latest is not None and latest >= start:
            # The history is written in time order onto the audit chain, which is never
            # rewritten: it can only come first.
            raise CommandError(
                f"This database's audit trail already has events (the latest at "
                f"{latest:%Y-%m-%d %H:%M} UTC); the demo's {WEEKS} weeks of history must come "
                "before them. Seed an empty database: remove var/hashsync.sqlite3 (or `make "
                "clean`) and `make run`."
            )
        begun = time.monotonic()
        with demo_clock(start) as clock:
            summary = build_history(
                clock=clock,
                now=now,
                users=users,
                entries=entries,
                pending=pending,
                demo_member=DEMO_MEMBER,
                demo_member_display="Demo Member Ltd (synthetic)",
                demo_member_feeds=DEMO_MEMBER_FEEDS,
                feeds=DEMO_FEEDS,
                write=self.stdout.write,
            )
        logins[TOKEN_KEY] = summary.demo_member_token
        self._save_logins(logins)
        self.stdout.write(
            f"Seeded {WEEKS} weeks of demo history from {summary.start:%Y-%m-%d}: {entries} "
            f"approved and {pending} pending synthetic entries, {summary.releases} releases, "
            f"{Member.objects.count()} members ({time.monotonic() - begun:.1f} s)."
        )

    def _demo_member(self, admin: Any, logins: dict[str, str]) -> None:
        """A member entitled to two feeds, with one sync client and a token (shown once in
        production; kept in var/demo-logins.json here so the demo survives restarts)."""
        if not Member.objects.filter(name=DEMO_MEMBER).exists():
            member_services.member_create(
                actor=admin, name=DEMO_MEMBER, display_name="Demo Member Ltd (synthetic)"
            )
            for feed in DEMO_MEMBER_FEEDS:
                member_services.entitlement_grant(actor=admin, member_name=DEMO_MEMBER, feed=feed)
            member_services.client_create(actor=admin, member_name=DEMO_MEMBER, name="edge-1")
        token = logins.get(TOKEN_KEY)
        live = ApiToken.objects.filter(
            client__member__name=DEMO_MEMBER, revoked_at__isnull=True
        ).exists()
        if token is None or not live:
            _, logins[TOKEN_KEY] = member_services.token_create(
                actor=admin,
                member_name=DEMO_MEMBER,
                client_name="edge-1",
                scopes=["sync", "lookup", "feedback"],
            )
            self._save_logins(logins)

    def _save_logins(self, logins: dict[str, str]) -> None:
        path = settings.VAR_DIR / "demo-logins.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(logins, indent=2))
        path.chmod(0o600)

    def _users(self) -> dict[str, str]:
        path = settings.VAR_DIR / "demo-logins.json"
        logins: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        user_model = get_user_model()
        with transaction.atomic():
            ensure_roles()
            for username, role in DEMO_USERS:
                user = user_model.objects.filter(username=username).first()
                if user is None or username not in logins:
                    logins[username] = secrets.token_urlsafe(12)
                    user = user or user_model(username=username, is_staff=True)
                    user.set_password(logins[username])
                    user.save()
                user.groups.set([Group.objects.get(name=role)])
        self._save_logins(logins)
        return logins

    def _print(self, url: str, logins: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"hashsync is starting at {url}"))
        self.stdout.write(f"  Web:     {url}login/   (sign in with a demo login below)")
        self.stdout.write(f"  API:     {url}api/v1/   (OpenAPI schema: {url}api/v1/schema/)")
        self.stdout.write(f"  Admin:   {url}admin/")
        self.stdout.write(
            "  Demo logins (synthetic data only; passwords kept in var/demo-logins.json):"
        )
        for username, role in DEMO_USERS:
            self.stdout.write(f"    {role:<13} {username:<13} {logins[username]}")
        self.stdout.write(
            "  Second factor: reviewer, member-admin and auditor set one up at their first "
            "sign-in:\n"
            "           scan the QR code with any authenticator app, or (demo only) print the "
            "code it would show:\n"
            "           .venv/bin/python manage.py totp_code reviewer"
        )
        self.stdout.write(
            f"  Try:     curl -u reviewer:{logins['reviewer']} {url}api/v1/review-queue/"
        )
        token = logins[TOKEN_KEY]
        self.stdout.write(
            f"  Member:  {DEMO_MEMBER} (feeds {', '.join(DEMO_MEMBER_FEEDS)}), sync token {token}"
        )
        self.stdout.write(
            f'  Sync:    curl -H "Authorization: Bearer {token}" {url}api/v1/sync/feeds/'
        )
        self.stdout.write("           (docs/sync-api.md walks through a whole sync with curl)")
        first = keys.first_keyring()
        if first is not None:
            pins = ", ".join(sorted(first.root_keyids))
            self.stdout.write(f"  Root key members pin: {pins}   (again: manage.py keys_show)")
            init = keys.client_init_command(
                first,
                server_url=url,
                options=f"--token-env HASHSYNC_TOKEN --store {CLIENT_DIR}/store.sqlite3",
            )
            self.stdout.write("  Client (client/README.md), in another terminal:")
            self.stdout.write(f"    export HASHSYNC_TOKEN={token}")
            self.stdout.write(f"    .venv/bin/{init.replace('init', CLIENT_CONFIG + ' init', 1)}")
            self.stdout.write(f"    .venv/bin/hashsync-client {CLIENT_CONFIG} sync")
        self.stdout.write("")
