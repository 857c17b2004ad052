"""The transparency log page in a real browser, as an auditor: a log of a few releases cut for
real, two configured witnesses (one that cosigned, one never asked yet), and an inclusion
check by feed and version. Screenshots ``transparency-log--auditor.png`` and
``transparency-log-verified--auditor.png``. Synthetic hashes only."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone
from playwright.sync_api import expect

from distribution.models import Feed
from distribution.releases import release_cut
from hashsync.roles import ANALYST, AUDITOR, REVIEWER
from hashsync_client.tlog import SIG_COSIGNATURE_V1, verifier_key
from tests.browser.helpers import shoot
from tests.factories import approved_entry, staff_user
from transparency.models import LogLeaf, Witness


def _log_with_witnesses(settings) -> int:
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    Feed.objects.create(name="all", description="Every hash on the list, every algorithm")
    Feed.objects.create(name="md5-sha1-category-a", algorithms=["md5", "sha1"], categories=["A"])
    release_cut()
    for _ in range(3):
        approved_entry(analyst, reviewer)
        release_cut()
    size = LogLeaf.objects.count()
    keys = {
        name: verifier_key(name, Ed25519PrivateKey.generate().public_key(), SIG_COSIGNATURE_V1)
        for name in ("witness.acme.example", "auditor.hotline.example")
    }
    settings.HASHSYNC_TLOG_WITNESSES = [
        f"https://{name}/witness {key}" for name, key in keys.items()
    ]
    Witness.objects.create(
        name="witness.acme.example",
        url="https://witness.acme.example/witness",
        verifier_key=keys["witness.acme.example"],
        size=size - 2,
        last_cosigned_at=timezone.now(),
    )
    return size


def test_an_auditor_reads_the_log_and_verifies_an_inclusion(open_page, settings):
    size = _log_with_witnesses(settings)
    page = open_page(staff_user(AUDITOR))
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency log")
    expect(page.locator("pre.checkpoint-note")).to_contain_text(f"\n{size}\n")
    expect(page.get_by_role("table").get_by_text("never")).to_be_visible()
    shoot(page, "transparency-log")

    leaf = LogLeaf.objects.filter(feed_name="md5-sha1-category-a").order_by("-index").first()
    assert leaf is not None
    page.select_option("#id_feed", "md5-sha1-category-a")
    page.fill("#id_version", str(leaf.version))
    page.get_by_role("button", name="Verify inclusion").click()
    expect(page.locator(".inclusion-answer").first).to_contain_text("Included")
    expect(page.locator(".inclusion-answer").first).to_contain_text(str(leaf.index))
    shoot(page, "transparency-log-verified")
