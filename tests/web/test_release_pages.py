"""The releases, release, keyring and feeds pages: who may read them, what they show of real
releases (cut by ``release_cut`` with the development keys, as in tests/distribution), and
that odd input gets a normal page or a 404, never a 500. Synthetic hashes only."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from distribution import keys
from distribution.models import Feed, Manifest
from distribution.releases import release_cut
from hashsync_client.signing import load_private_key
from members import services as member_services
from tests.factories import approved_entry
from web.templatetags.web_extras import size
from web.views import releases as release_views

pytestmark = pytest.mark.django_db

READERS = ("analyst", "reviewer", "member_admin", "auditor")


@pytest.fixture
def published(analyst2: Any, reviewer2: Any) -> dict[str, Any]:
    """Three feeds published by release 1; release 2 carries one approved md5 entry, which
    changes ``all`` and ``md5-a`` but not ``pdq-only``."""
    feeds = {
        "all": Feed.objects.create(name="all", description="Everything on the list"),
        "md5-a": Feed.objects.create(name="md5-a", algorithms=["md5"], categories=["A"]),
        "pdq-only": Feed.objects.create(name="pdq-only", algorithms=["pdq"]),
    }
    first = release_cut()
    approved_entry(analyst2, reviewer2)
    second = release_cut()
    assert first is not None and second is not None
    return {"feeds": feeds, "first": first, "second": second}


def _text(response: Any) -> str:
    return response.content.decode()


# --- Who may read --------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_staff_role_reads_releases_keyring_and_feeds(client_as, published, role):
    client = client_as(role)
    for url in (
        reverse("web-releases"),
        reverse("web-release", args=[2]),
        reverse("web-keyring"),
        reverse("web-feeds"),
        reverse("web-feed", args=["all"]),
    ):
        assert client.get(url).status_code == 200, url


def test_someone_without_a_role_is_refused(client_as, published):
    client = client_as("outsider")
    for url in (reverse("web-releases"), reverse("web-release", args=[2]), reverse("web-feeds")):
        response = client.get(url)
        assert response.status_code == 403
        assert "does not allow this page" in _text(response)


def test_the_navigation_offers_releases_and_feeds(client_as, published):
    page = _text(client_as("auditor").get(reverse("web-releases")))
    assert f'href="{reverse("web-releases")}" aria-current="page">Releases' in page
    assert f'href="{reverse("web-feeds")}">Feeds' in page
    assert "Releases</a>" not in _text(client_as("outsider").get(reverse("front")))


def test_the_pages_only_answer_reading(client_as, published):
    client = client_as("auditor")
    for url in (reverse("web-releases"), reverse("web-release", args=[2]), reverse("web-feeds")):
        assert client.post(url).status_code == 405


# --- The releases list ----------------------------------------------------------------------


def test_releases_are_listed_newest_first_with_changes_and_feeds(client_as, published):
    page = _text(client_as("analyst").get(reverse("web-releases")))
    assert page.index("Release 2") < page.index("Release 1")
    assert f'href="{reverse("web-release", args=[2])}"' in page
    # Release 1 published the three new feeds; release 2 changed the two an md5 entry enters.
    row_2 = page[page.index("Release 2") : page.index("Release 1")]
    assert ">all</a>" in row_2 and ">md5-a</a>" in row_2 and "pdq-only" not in row_2
    assert ">pdq-only</a>" in page[page.index("Release 1") :]
    assert "ago)" in page  # relative time next to the absolute one


def test_releases_page_by_version(client_as, published, monkeypatch):
    monkeypatch.setattr(release_views, "LIST_PAGE", 1)
    client = client_as("auditor")
    first = _text(client.get(reverse("web-releases")))
    assert "Release 2" in first and "Release 1</a>" not in first
    assert 'href="?before=2" rel="next"' in first

    second = _text(client.get(reverse("web-releases") + "?before=2"))
    assert "Release 1</a>" in second and "Release 2</a>" not in second
    assert "Older releases" not in second

    past_the_end = _text(client.get(reverse("web-releases") + "?before=1"))
    assert "No older releases" in past_the_end


@pytest.mark.parametrize(
    "query", ["?before=abc", "?before=-1", "?before=1e3", "?before=" + "9" * 30, "?page=2&x=%00"]
)
def test_junk_parameters_get_the_newest_releases(client_as, published, query):
    response = client_as("analyst").get(reverse("web-releases") + query)
    assert response.status_code == 200
    assert "Release 2" in _text(response)


def test_no_release_yet_says_how_one_comes(client_as, db):
    page = _text(client_as("analyst").get(reverse("web-releases")))
    assert "No release has been cut yet" in page


def test_the_list_costs_the_same_queries_for_more_releases(
    client_as, published, analyst2, reviewer2
):
    client = client_as("auditor")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("web-releases"))
    for _ in range(3):
        approved_entry(analyst2, reviewer2)
        release_cut()
    with CaptureQueriesContext(connection) as more:
        client.get(reverse("web-releases"))
    assert len(more) == len(few)


# --- A release ------------------------------------------------------------------------------


def test_a_release_shows_each_feeds_manifest_bundles_and_digest(client_as, published):
    feed = Feed.objects.get(name="md5-a")
    manifest = Manifest.objects.get(feed=feed, version=2)
    keyid = json.loads(bytes(manifest.envelope))["signatures"][0]["keyid"]
    page = _text(client_as("member_admin").get(reverse("web-release", args=[2])))

    assert "<h1>Release 2</h1>" in page
    assert 'id="feed-md5-a"' in page and 'id="feed-all"' in page
    assert 'id="feed-pdq-only"' not in page  # not changed by this release
    assert manifest.sha256 in page
    assert "Verified" in page and "Does not verify" not in page
    assert "Ed25519" in page and keyid[:16] in page
    assert f'href="{reverse("web-keyring")}#key-{keyid}"' in page
    fv = feed.versions.get(version=2)
    assert fv.state_digest in page
    assert f'data-copy="{fv.delta_sha256}"' in page
    assert size(fv.delta_size) in page
    assert "version 1 → 2" in page
    # The previous manifest of the feed is the one release 1 published.
    assert f'href="{reverse("web-release", args=[1])}#feed-md5-a"' in page
    assert "← Release 1" in page


def test_a_feeds_first_publication_shows_its_snapshot(client_as, published):
    fv = Feed.objects.get(name="all").versions.get(version=1)
    page = _text(client_as("auditor").get(reverse("web-release", args=[1])))
    assert "Snapshot" in page and f'data-copy="{fv.snapshot_sha256}"' in page
    assert "none: the feed's first publication" in page
    assert "the newest release" not in page and "Release 2 →" in page


def test_a_full_signature_is_offered_to_copy_and_a_short_one_shown(client_as, published):
    manifest = Manifest.objects.get(feed__name="all", version=2)
    sig = json.loads(bytes(manifest.envelope))["signatures"][0]["sig"]
    page = _text(client_as("auditor").get(reverse("web-release", args=[2])))
    assert f'data-copy="{sig}"' in page
    assert f">{sig[:24]}…<" in page


def test_an_expired_current_manifest_is_flagged(client_as, published):
    Manifest.objects.filter(feed__name="md5-a", version=2).update(
        expires_at=timezone.now() - dt.timedelta(hours=1)
    )
    page = _text(client_as("auditor").get(reverse("web-release", args=[2])))
    assert "Expired" in page
    assert "refuse this feed until it is re-signed" in page
    heading = page[page.index('id="feed-md5-a-heading"') :]
    assert heading.index("Manifest expired") < heading.index("</h2>")


def test_a_current_manifest_close_to_expiry_warns(client_as, published):
    soon = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS - 1)
    Manifest.objects.filter(feed__name="md5-a", version=2).update(expires_at=soon)
    page = _text(client_as("auditor").get(reverse("web-release", args=[2])))
    assert "Expires soon" in page and "re-signing is late" in page


def test_an_older_manifest_expiring_is_history_not_an_alarm(client_as, published):
    Manifest.objects.filter(feed__name="md5-a", version=1).update(
        expires_at=timezone.now() - dt.timedelta(days=1)
    )
    page = _text(client_as("auditor").get(reverse("web-release", args=[1])))
    section = page[page.index('id="feed-md5-a"') :]
    assert "Superseded by a newer manifest" in section
    assert "refuse this feed" not in page


def test_a_tampered_signature_does_not_verify(client_as, published):
    manifest = Manifest.objects.get(feed__name="all", version=2)
    envelope = json.loads(bytes(manifest.envelope))
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    Manifest.objects.filter(pk=manifest.pk).update(envelope=json.dumps(envelope).encode())
    page = _text(client_as("auditor").get(reverse("web-release", args=[2])))
    section = page[page.index('id="feed-all"') : page.index('id="feed-md5-a"')]
    assert "Does not verify" in section
    assert section.index("Signature does not verify") < section.index("</h2>")
    assert "valid signatures from 0 trusted key(s)" in section


def test_a_re_signed_feed_shows_the_newest_manifest_of_its_version(client_as, published):
    from distribution.releases import manifest_resign

    later = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS)
    manifest_resign(now=later - dt.timedelta(hours=1))
    page = _text(client_as("auditor").get(reverse("web-release", args=[2])))
    assert "Newest manifest of this version" in page
    assert "1 more since the release" in page


@pytest.mark.parametrize("version", [3, 0, 10**30])
def test_an_unknown_release_is_a_404_page(client_as, published, version):
    response = client_as("auditor").get(f"/releases/{version}/")
    assert response.status_code == 404
    assert "<html" in _text(response)


def test_a_release_that_changed_no_feed_says_so(client_as, analyst2, reviewer2):
    approved_entry(analyst2, reviewer2)
    release_cut()  # no feed exists: the release carries the change to nobody
    page = _text(client_as("analyst").get(reverse("web-release", args=[1])))
    assert "This release changed no feed" in page


def test_a_release_page_costs_the_same_queries_for_more_feeds(client_as, published):
    client = client_as("auditor")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("web-release", args=[1]))
    for n in range(3):
        Feed.objects.create(name=f"extra-{n}")
    release_cut()
    with CaptureQueriesContext(connection) as more:
        client.get(reverse("web-release", args=[3]))
    assert len(more) == len(few)


# --- The keyring ----------------------------------------------------------------------------


def _development_root() -> Any:
    return load_private_key(Path(settings.VAR_DIR) / "keys" / keys.DEVELOPMENT_ROOT)


def test_the_keyring_shows_the_online_key_its_window_and_the_chain(client_as, published):
    keyring = keys.current_keyring()
    assert keyring is not None
    entry = keyring.signing_keys[0]
    page = _text(client_as("auditor").get(reverse("web-keyring")))
    assert f'id="key-{entry.keyid}"' in page
    assert entry.valid_from.strftime("%Y-%m-%d %H:%M") in page
    assert entry.valid_until.strftime("%Y-%m-%d %H:%M") in page
    assert "Valid</span>" in page
    assert "verifies from version 1" in page
    assert "First keyring: the root members pin." in page
    assert sorted(keyring.root_keyids)[0][:16] in page


def test_a_rotation_of_the_online_key_and_of_the_root_are_shown(client_as, published):
    from hashsync_client.signing import generate_key

    root = _development_root()
    _, added = keys.keyring_issue(root_keys=[root])
    new_root = generate_key()
    keys.keyring_issue(root_keys=[root], new_root_keys=[new_root], issue_signing_key=False)
    assert added is not None
    page = _text(client_as("auditor").get(reverse("web-keyring")))
    assert f'href="#key-{added.keyid}"' in page and "added" in page
    assert "Root rotated" in page
    assert new_root.keyid[:16] in page
    rotation = page[page.index('id="keyring-3"') : page.index('id="keyring-2"')]
    assert "previous root" in rotation and "this root" in rotation
    assert "verifies from version 1" in page


def test_a_key_dropped_before_its_window_ended_is_shown_revoked(client_as, published):
    from distribution.models import Keyring as KeyringRow
    from hashsync_client.signing import SigningKeyEntry, build_keyring, generate_key, sign_keyring

    root, old = _development_root(), keys.current_keyring()
    assert old is not None
    now = timezone.now()
    replacement = generate_key()
    keyring = build_keyring(
        version=2,
        issued_at=now,
        expires_at=now + dt.timedelta(days=30),
        root_keys=[root],
        root_threshold=1,
        signing_keys=[
            SigningKeyEntry.of(replacement, valid_from=now, valid_until=now + dt.timedelta(days=9))
        ],
    )
    KeyringRow.objects.create(version=2, envelope=sign_keyring(keyring, [root]))
    page = _text(client_as("auditor").get(reverse("web-keyring")))
    revoked = page[page.index(f'id="key-{old.signing_keys[0].keyid}"') :]
    assert "Revoked</span>" in revoked[: revoked.index("</tr>")]
    assert "dropped by keyring version 2" in revoked
    assert "verifies from version 1" in page
    # Manifests it signed before stay verified: the keyring that listed it vouches for them.
    assert "Does not verify" not in _text(
        client_as("auditor").get(reverse("web-release", args=[2]))
    )


def test_a_broken_keyring_chain_is_named(client_as, published):
    from distribution.models import Keyring as KeyringRow
    from hashsync_client.signing import generate_key

    # A version 2 signed by a stranger's root, stored behind the service's back.
    stranger = generate_key()
    keyring = keys.current_keyring()
    assert keyring is not None
    from hashsync_client.signing import build_keyring, sign_keyring

    forged = build_keyring(
        version=2,
        issued_at=timezone.now(),
        expires_at=timezone.now() + dt.timedelta(days=30),
        root_keys=[stranger],
        root_threshold=1,
        signing_keys=list(keyring.signing_keys),
    )
    KeyringRow.objects.create(version=2, envelope=sign_keyring(forged, [stranger]))
    page = _text(client_as("auditor").get(reverse("web-keyring")))
    assert "The chain does not verify" in page
    assert "by the previous root" in page


def test_no_keyring_yet_says_how_one_is_made(client_as, db):
    page = _text(client_as("auditor").get(reverse("web-keyring")))
    assert "No keyring yet" in page


# --- Feeds ----------------------------------------------------------------------------------


def test_feeds_are_listed_with_filter_size_version_and_members(client_as, published, member_admin):
    member_services.member_create(actor=member_admin, name="acme", display_name="Acme Hosting")
    member_services.entitlement_grant(actor=member_admin, member_name="acme", feed="md5-a")
    page = _text(client_as("member_admin").get(reverse("web-feeds")))
    assert page.index(">all</a>") < page.index(">md5-a</a>") < page.index(">pdq-only</a>")
    assert "md5; category A" in page
    assert "every entry, every algorithm" in page
    assert f'href="{reverse("web-release", args=[2])}">2</a>' in page
    assert "Signed</span>" in page
    assert '<th scope="col" class="num">Members</th>' in page


def test_analysts_see_feeds_without_the_member_column(client_as, published):
    page = _text(client_as("analyst").get(reverse("web-feeds")))
    assert ">md5-a</a>" in page
    assert "Members</th>" not in page


def test_a_new_feed_is_listed_as_not_published_yet(client_as, published):
    Feed.objects.create(name="fresh")
    page = _text(client_as("analyst").get(reverse("web-feeds")))
    assert "not published yet" in page
    feed_page = _text(client_as("analyst").get(reverse("web-feed", args=["fresh"])))
    assert "Not published yet" in feed_page


def test_no_feed_yet_says_how_one_is_made(client_as, db):
    page = _text(client_as("member_admin").get(reverse("web-feeds")))
    assert "No feed yet" in page


def test_a_feed_page_shows_filter_state_manifest_and_versions(client_as, published):
    feed = Feed.objects.get(name="md5-a")
    page = _text(client_as("auditor").get(reverse("web-feed", args=["md5-a"])))
    assert "<dt>Algorithms</dt><dd>MD5</dd>" in page
    assert "<dt>Categories</dt><dd>A</dd>" in page
    assert "<dt>Age groups</dt><dd>any</dd>" in page
    assert f'href="{reverse("web-release", args=[2])}">Release 2</a>' in page
    assert feed.manifests.order_by("-id").first().sha256 in page
    assert "Verified" in page
    assert f'href="{reverse("web-release", args=[1])}#feed-md5-a"' in page
    assert "No member is entitled to this feed yet" in page


def test_a_feed_page_lists_members_and_whether_they_receive_it(client_as, published, member_admin):
    for name in ("acme", "beta"):
        member_services.member_create(actor=member_admin, name=name, display_name=name.title())
        member_services.licence_grant(actor=member_admin, member_name=name, kind="photodna")
        member_services.entitlement_grant(actor=member_admin, member_name=name, feed="all")
    member_services.licence_revoke(actor=member_admin, member_name="beta", kind="photodna")
    page = _text(client_as("member_admin").get(reverse("web-feed", args=["all"])))
    acme, beta = page.index("Acme"), page.index("Beta")
    assert acme < beta
    assert "Yes</span>" in page[acme:beta]
    assert "needs a valid PhotoDNA licence" in page[beta:]


def test_analysts_do_not_see_who_is_entitled(client_as, published):
    page = _text(client_as("analyst").get(reverse("web-feed", args=["all"])))
    assert "Members are not shown to your role" in page


@pytest.mark.parametrize("name", ["nope", "ALL", "a" * 300])
def test_an_unknown_feed_is_a_404_page(client_as, published, name):
    response = client_as("auditor").get(f"/feeds/{name}/")
    assert response.status_code == 404


def test_sizes_read_in_human_units_with_the_exact_bytes():
    assert size(840) == "840\xa0bytes"
    assert size(1_234_567) == "1.2\xa0MB (1,234,567 bytes)"
    assert size(None) == ""


def test_the_feeds_list_flags_an_expired_feed(client_as, published):
    Manifest.objects.filter(feed__name="md5-a").update(
        expires_at=timezone.now() - dt.timedelta(hours=3)
    )
    page = _text(client_as("auditor").get(reverse("web-feeds")))
    row = page[page.index(">md5-a</a>") :]
    assert "Expired</span>" in row[: row.index("</tr>")]
    assert "refuse it until it is re-signed" in row
