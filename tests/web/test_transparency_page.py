"""The auditors' transparency log page: the log's size, the latest checkpoint, the witnesses
and when each last cosigned, and the inclusion check (verified with the client's code) — with
an empty log, a log of real releases, and what a person might type into the form. Who may
open the page is tests/web/test_page_roles.py; the nav item's visibility is here.
Synthetic hashes only: the log's leaves commit to manifests, never to listed hashes."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from distribution import keys
from distribution.releases import release_cut
from hashsync.migrations import _roles
from hashsync.roles import sync_roles
from hashsync_client.tlog import SIG_COSIGNATURE_V1, verifier_key
from tests.distribution.releases.conftest import make_feed
from tests.factories import approved_entry
from transparency import services
from transparency.models import LogLeaf, Witness

pytestmark = pytest.mark.django_db
URL = "web-transparency"


def _published(analyst: Any, reviewer: Any) -> None:
    """Two feeds and a few releases cut for real: every manifest is a leaf."""
    make_feed("all")
    make_feed("md5-only", algorithms=["md5"])
    for _ in range(2):
        approved_entry(analyst, reviewer)
        release_cut()


def _post(client: Any, **data: Any) -> Any:
    return client.post(reverse(URL), {"feed": "", "version": "", "sha256": "", **data})


def test_the_nav_shows_the_log_only_to_auditors(client_as):
    for role, shown in (("auditor", True), ("analyst", False), ("member_admin", False)):
        page = client_as(role).get(reverse("front"))
        assert (f'href="{reverse(URL)}"' in page.content.decode()) is shown, role


def test_an_empty_log_says_so(client_as):
    page = client_as("auditor").get(reverse(URL))
    assert page.status_code == 200
    text = page.content.decode()
    assert "The log is empty" in text
    assert "No witness is configured" in text


def test_the_page_shows_size_checkpoint_and_witnesses(client_as, analyst, reviewer, settings):
    _published(analyst, reviewer)
    size = LogLeaf.objects.count()
    Witness.objects.create(
        name="witness.example/a",
        url="https://witness.example/a",
        verifier_key="synthetic",
        size=size,
        last_cosigned_at=timezone.now(),
    )
    never = verifier_key(
        "witness.example/b", Ed25519PrivateKey.generate().public_key(), SIG_COSIGNATURE_V1
    )
    other = verifier_key(
        "witness.example/a", Ed25519PrivateKey.generate().public_key(), SIG_COSIGNATURE_V1
    )
    settings.HASHSYNC_TLOG_WITNESSES = [
        f"https://witness.example/a {other}",
        f"https://witness.example/b {never}",
    ]
    text = client_as("auditor").get(reverse(URL)).content.decode()
    assert f'<strong class="num">{size}</strong> leaves' in text
    assert settings.HASHSYNC_TLOG_ORIGIN in text
    assert '<pre class="mono checkpoint-note">' in text
    signer = keys.online_signing_key()
    assert signer is not None
    assert "witness.example/a" in text and "witness.example/b" in text
    assert '<span class="badge">never</span>' in text  # b has never cosigned
    assert text.count("UTC</time>") >= 2  # the checkpoint's time and a's cosignature


def test_verify_by_feed_and_version_and_by_sha256(client_as, analyst, reviewer):
    _published(analyst, reviewer)
    client = client_as("auditor")
    first = LogLeaf.objects.filter(feed_name="md5-only").order_by("index").first()
    assert first is not None
    page = _post(client, feed="md5-only", version=str(first.version))
    assert page.status_code == 200
    text = page.content.decode()
    assert '<span class="badge ok">Included</span>' in text
    assert "Leaf index" in text
    leaf = LogLeaf.objects.order_by("-index").first()
    assert leaf is not None
    page = _post(client, sha256=leaf.manifest_sha256.upper())
    text = page.content.decode()
    assert '<span class="badge ok">Included</span>' in text
    assert f'<dd class="num">{leaf.index}</dd>' in text


def test_a_manifest_not_in_the_log_is_not_included(client_as, analyst, reviewer):
    _published(analyst, reviewer)
    page = _post(client_as("auditor"), sha256="ab" * 32)  # synthetic: no such manifest
    assert page.status_code == 200
    assert '<span class="badge bad">Not included</span>' in page.content.decode()


def test_a_leaf_whose_tree_was_tampered_with_is_not_included(client_as):
    """A stored leaf that no longer matches the tree (its row rewritten) fails verification:
    the page checks, it does not merely look the leaf up."""
    signer = keys.online_signing_key()
    for i in range(5):
        services.log_append(
            feed="f", version=i, manifest_sha256=f"{i + 1:064x}", previous_sha256="", signer=signer
        )
    LogLeaf.objects.filter(index=2).update(version=99)
    text = _post(client_as("auditor"), sha256=f"{3:064x}").content.decode()
    assert '<span class="badge bad">Not included</span>' in text
    assert "does not lead to the root" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose the feed, or paste the manifest"),
        ({"sha256": "xyz"}, "exactly 64 hex digits"),
        ({"sha256": "a" * 65}, "exactly 64 hex digits"),
        ({"sha256": "a" * 300}, "at most 200 characters"),
        ({"feed": "all"}, "Give the version"),
        ({"version": "3"}, "Choose the feed"),
        ({"feed": "all", "version": "-1"}, "greater than or equal to 0"),
        ({"feed": "all", "version": "1e99"}, "whole number"),
        ({"feed": "all", "version": str(2**70)}, "less than or equal to"),
        ({"feed": "nope", "version": "1"}, "Select a valid choice"),
        ({"feed": "all", "version": "1", "sha256": "a" * 64}, "not both"),
        ({"feed": "all", "version": "999"}, "has no signed version 999"),
        ({"sha256": "\x00" * 64}, "Null characters are not allowed"),
    ],
)
def test_bad_input_is_a_form_error(client_as, analyst, reviewer, data, message):
    _published(analyst, reviewer)
    page = _post(client_as("auditor"), **data)
    assert page.status_code == 400
    text = page.content.decode()
    assert "There is a problem" in text or "problems" in text
    assert message in text.replace("&#x27;", "'"), text[:3000]


def test_the_role_migration_gives_auditors_the_log_and_no_one_else():
    """Transparency 0002 re-syncs the roles once this app's permission exists; the sync is run
    again here, since a browser test's flush may have emptied the groups the migrations made."""
    migration = import_module("transparency.migrations.0002_roles_auditor_log").Migration
    assert ("transparency", "0001_initial") in migration.dependencies
    assert migration.operations[0].code is _roles.forward
    Group.objects.all().delete()
    sync_roles()
    holders = Group.objects.filter(
        permissions__content_type__app_label="transparency", permissions__codename="view_log"
    )
    assert list(holders.values_list("name", flat=True)) == ["auditor"]
