"""Shared fixtures: one user per role (plus a second analyst and reviewer for four-eyes tests,
and an outsider with no role), API clients, and synthetic hashes.

Synthetic data only: every hash in the tests is random bytes or a digest of a made-up string.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from hashlist.framework_store import ensure_frameworks
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER, ensure_roles
from hashsync_client.algorithms import get_algorithm

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_runtest_setup(item: pytest.Item) -> None:
    needs_pg = item.get_closest_marker("postgres") or item.get_closest_marker("services")
    if needs_pg and os.environ.get("DATABASE_URL", "").split(":", 1)[0] not in (
        "postgres",
        "postgresql",
    ):
        message = f"{item.nodeid} needs PostgreSQL (DATABASE_URL is not a PostgreSQL URL)"
        if IN_CI:
            pytest.fail(message + " — in CI nothing may be skipped", pytrace=False)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_files(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keys, uploads and bundles of each test live in its own directory, never in var/."""
    root = tmp_path_factory.mktemp("hashsync")
    settings.VAR_DIR = root / "var"
    settings.MEDIA_ROOT = root / "media"
    settings.HASHSYNC_SIGNING_KEY_PATH = root / "var" / "keys" / "signing.key"
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root / "bundles")},
        },
    }


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Pacing and bad-token counters live in the cache, and while Redis is down in the
    per-process fallback (hashsync.outages): no test inherits another's."""
    from django.core.cache import cache

    from hashsync import outages

    cache.clear()
    outages._fallback.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Production-strength PBKDF2 costs ~0.3 s per password; tests only need hashing to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    counter = {"n": 0}

    def make(role: str | None, username: str | None = None) -> Any:
        counter["n"] += 1
        user = django_user_model.objects.create_user(
            username=username or f"{role or 'outsider'}-{counter['n']}",
            password=secrets.token_urlsafe(16),
        )
        if role:
            if not Group.objects.filter(name=role).exists():
                ensure_roles()  # groups are flushed between transactional tests
                ensure_frameworks()  # and so are the frameworks the migration seeded
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def analyst(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(ANALYST, "analyst")


@pytest.fixture
def analyst2(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(ANALYST, "analyst2")


@pytest.fixture
def reviewer(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(REVIEWER, "reviewer")


@pytest.fixture
def reviewer2(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(REVIEWER, "reviewer2")


@pytest.fixture
def member_admin(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(MEMBER_ADMIN, "member-admin")


@pytest.fixture
def auditor(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(AUDITOR, "auditor")


@pytest.fixture
def outsider(db: None, make_user: Callable[..., Any]) -> Any:
    """Signed in, but holds no role."""
    return make_user(None, "outsider")


@pytest.fixture
def api() -> Callable[[Any], APIClient]:
    """``api(user)`` is a client authenticated as ``user``; ``api(None)`` is anonymous."""

    def client_for(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def synthetic(algorithm: str) -> str:
    """A random (synthetic, not real) hash value in its canonical text form."""
    algo = get_algorithm(algorithm)
    return algo.canonical(secrets.token_bytes(algo.length))


@pytest.fixture
def new_hash() -> Callable[[str], str]:
    return synthetic


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
