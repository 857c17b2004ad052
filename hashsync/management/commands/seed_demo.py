"""Seed the embedded default with demo users and a demo list of SYNTHETIC hashes.

Every hash created here is random bytes — not a hash of any real image — and is labelled
``source = "synthetic-demo"``. Demo passwords are random, generated on first run and kept in
``var/demo-logins.json`` (mode 0600). Refuses to run in production.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from distribution import keys
from distribution.models import Feed
from distribution.services import feed_create
from hashlist import services
from hashlist.models import Entry
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER, ensure_roles
from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.format import AGE_GROUPS, CATEGORIES
from members import services as member_services
from members.models import ApiToken, Member

DEMO_USERS = [
    ("analyst", ANALYST),
    ("analyst2", ANALYST),
    ("reviewer", REVIEWER),
    ("member-admin", MEMBER_ADMIN),
    ("auditor", AUDITOR),
]
SOURCE = "synthetic-demo"
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


def synthetic_hash(rng: random.Random, algorithm: str) -> str:
    algo = ALGORITHMS[algorithm]
    return algo.canonical(rng.randbytes(algo.length))


class Command(BaseCommand):
    help = "Create demo users and a demo list of synthetic hashes (embedded default only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entries", type=int, default=120, help="approved demo entries")
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
        if options["check_port"]:
            _refuse_busy_port(url)
        logins = self._users()
        users = {name: get_user_model().objects.get(username=name) for name, _ in DEMO_USERS}
        for feed in DEMO_FEEDS:
            if not Feed.objects.filter(name=feed["name"]).exists():
                feed_create(actor=users["member-admin"], **feed)
        if not Entry.objects.filter(source=SOURCE).exists():
            # One transaction: the approvals' release requests all fire after it commits, so
            # the demo list becomes one release rather than one per entry.
            with transaction.atomic():
                self._demo_list(users, entries, pending)
        self._demo_member(users["member-admin"], logins)
        keys.ensure_development_keys()  # normally made by the first release cut, above
        self._print(url, logins)

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
            path = settings.VAR_DIR / "demo-logins.json"
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
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(logins, indent=2))
        path.chmod(0o600)
        return logins

    def _demo_list(self, users: dict[str, Any], count: int, pending: int) -> None:
        rng = random.Random(secrets.randbits(64))  # fresh synthetic values per database
        analyst, reviewer = users["analyst"], users["reviewer"]
        for i in range(count + pending):
            algos = ["md5", "sha1"] if i % 3 else ["pdq", "sha256"]
            if i % 17 == 0:
                algos.append("photodna")
            proposal = services.proposal_create_entry(
                actor=analyst if i % 2 else users["analyst2"],
                grading={
                    "category": rng.choice(CATEGORIES),
                    "age_group": rng.choice(AGE_GROUPS),
                    "baseline": rng.choice([None, True, False]),
                    "content_type": "video" if i % 11 == 0 else "image",
                },
                hashes=[{"algorithm": a, "value": synthetic_hash(rng, a)} for a in algos],
                source=SOURCE,
                notes="SYNTHETIC demo entry: random bytes, not a hash of any real content.",
                comment="demo data",
            )
            if i < count:
                services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
        self.stdout.write(f"Seeded {count} approved and {pending} pending synthetic demo entries.")

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
