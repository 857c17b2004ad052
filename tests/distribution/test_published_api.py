"""A new user's check of a release, over the staff API: verify the manifest against the pinned
root with plain `cryptography`, then apply the delta to the previous snapshot and compare the
state digest the manifest signs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.models import AuditEvent
from distribution import keys, releases
from distribution.models import Feed, FeedVersion
from hashsync_client.format import Op, read_bundle
from hashsync_client.lthash import LtHash16, element
from tests.conftest import synthetic
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def open_envelope(envelope: dict, trusted: dict[str, Ed25519PublicKey]) -> dict:
    payload = base64.b64decode(envelope["payload"])
    for signature in envelope["signatures"]:
        key = trusted.get(signature["keyid"])
        if key is not None:
            key.verify(base64.b64decode(signature["sig"]), pae(envelope["payloadType"], payload))
            return json.loads(payload)
    raise AssertionError("no trusted signature")


def public(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def test_a_release_verifies_from_the_pinned_root_and_its_delta_reproduces_the_digest(
    api, analyst, reviewer, auditor
):
    feed = Feed.objects.create(name="all")
    approved_entry(analyst, reviewer)
    releases.release_cut()
    releases.snapshot_build(feed_id=feed.pk)
    approved_entry(analyst, reviewer, category="B")
    releases.release_cut()
    client = api(auditor)
    pinned_root = keys.current_keyring().root_keyids  # what a member pins out of band

    keyring_doc = client.get("/api/v1/keyring/").json()["keyrings"][0]
    roots = {k: v for k, v in json.loads(base64.b64decode(keyring_doc["payload"]))["root"].items()}
    trusted_roots = {
        e["keyid"]: public(e["public_key"]) for e in roots["keys"] if e["keyid"] in pinned_root
    }
    keyring = open_envelope(keyring_doc, trusted_roots)
    online = {e["keyid"]: public(e["public_key"]) for e in keyring["signing_keys"]}
    manifest = open_envelope(client.get("/api/v1/feeds/all/manifest/").json(), online)

    def download(part: dict) -> bytes:
        response = client.get(f"/api/v1/bundles/{part['sha256']}/")
        assert response.status_code == 200
        data = b"".join(response.streaming_content)
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (part["sha256"], part["size"])
        return data

    held = {
        (r.algorithm, r.value): r.grading
        for r in read_bundle(io.BytesIO(download(manifest["snapshot"])))[1]
    }
    assert manifest["delta"]["from_version"] == manifest["snapshot"]["version"]
    for record in read_bundle(io.BytesIO(download(manifest["delta"])))[1]:
        if record.op == Op.UPSERT:
            held[(record.algorithm, record.value)] = record.grading
        else:
            held.pop((record.algorithm, record.value))
    digest = LtHash16()
    digest.add(element(a, v, g) for (a, v), g in held.items())
    assert digest.hexdigest() == manifest["state_digest"]
    assert len(held) == manifest["entry_count"] == 2


@pytest.mark.parametrize(
    "path", ["/api/v1/keyring/", "/api/v1/feeds/all/manifest/", "/api/v1/bundles/" + "0" * 64 + "/"]
)
def test_published_artefacts_are_refused_to_people_without_a_role(api, outsider, path):
    response = api(outsider).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("sha", ["0" * 64, "nothex", "A" * 64, "%2e%2e%2fetc"])
def test_an_unknown_or_malformed_bundle_address_is_404(api, auditor, sha):
    response = api(auditor).get(f"/api/v1/bundles/{sha}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_feed_without_a_manifest_is_404(api, auditor):
    Feed.objects.create(name="unpublished")
    response = api(auditor).get("/api/v1/feeds/unpublished/manifest/")
    assert response.status_code == 404


def test_a_bundle_on_s3_is_a_redirect_to_a_presigned_url_and_is_audited(
    api, analyst, reviewer, auditor, s3_storage
):
    feed = Feed.objects.create(name="all")
    md5 = synthetic("md5")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": md5}])
    releases.release_cut()
    sha = FeedVersion.objects.get(feed=feed).snapshot_sha256  # the first publication's
    response = api(auditor).get(f"/api/v1/bundles/{sha}/")
    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"], timeout=5) as download:  # noqa: S310
        data = download.read()
        assert hashlib.sha256(data).hexdigest() == sha
    _assert_download_audited(
        auditor, sha, kind="snapshot", size=len(data), md5=md5, delivery="presigned_url"
    )


# --- Who may download bundles, and the record of it ---------------------------------------------


def _last_download() -> AuditEvent:
    event = AuditEvent.objects.filter(action="bundle.download").order_by("-seq").first()
    assert event is not None
    return event


def _assert_download_audited(
    user, sha: str, *, kind: str, size: int, md5: str, delivery: str
) -> None:
    event = _last_download()
    assert (event.actor, event.actor_id, event.object_type, event.object_id) == (
        user.username,
        user.pk,
        "bundle",
        sha,
    )
    assert event.after == {"kind": kind, "size": size, "feeds": ["all"], "delivery": delivery}
    recorded = json.dumps([event.before, event.after, event.reason]).lower()
    assert md5 not in recorded


def _published_snapshot(analyst, reviewer) -> tuple[str, str]:
    """A feed "all" published with one entry: (its snapshot's SHA-256, the entry's md5)."""
    feed = Feed.objects.create(name="all")
    md5 = synthetic("md5")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": md5}])
    releases.release_cut()
    return FeedVersion.objects.get(feed=feed).snapshot_sha256, md5


@pytest.mark.parametrize("role", ["analyst", "reviewer", "auditor"])
def test_a_staff_bundle_download_is_audited_without_hash_values(
    api, analyst, reviewer, request, role
):
    sha, md5 = _published_snapshot(analyst, reviewer)
    user = request.getfixturevalue(role)

    response = api(user).get(f"/api/v1/bundles/{sha}/")

    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    _assert_download_audited(
        user, sha, kind="snapshot", size=len(data), md5=md5, delivery="streamed"
    )


def test_a_member_administrator_is_refused_bundles_and_nothing_is_recorded(
    api, analyst, reviewer, member_admin
):
    sha, md5 = _published_snapshot(analyst, reviewer)

    response = api(member_admin).get(f"/api/v1/bundles/{sha}/")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert md5 not in response.content.decode().lower()
    assert not AuditEvent.objects.filter(action="bundle.download").exists()
