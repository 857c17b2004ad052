"""The transparency log over the sync API: the plan carries the checkpoint, every manifest's
inclusion proof and the consistency proof from the checkpoint the client holds; the three
standalone endpoints; stable error codes for bad sizes and indexes; the 304 poll unchanged."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.urls import reverse

from distribution import keys, releases
from hashsync_client.tlog import (
    leaf_hash,
    manifest_leaf,
    parse_note,
    verify_consistency,
    verify_inclusion,
    verify_log_signature,
)
from tests.factories import member_with_token
from tests.sync.helpers import _listed, _plan_path, _send
from tests.utils import assert_error
from transparency import selectors as log_selectors

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


def _payload(envelope: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope["payload"]))


def _hashes(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def _signing_keys() -> list[Any]:
    keyring = keys.current_keyring()
    assert keyring is not None
    return [entry.public_key for entry in keyring.signing_keys]


def _root_at(size: int) -> bytes:
    from transparency.models import Checkpoint

    return bytes(Checkpoint.objects.get(size=size).root_hash)


def test_the_plan_carries_a_signed_checkpoint_and_proves_every_manifest(world, analyst, reviewer):
    _listed(analyst, reviewer, "md5")
    releases.release_cut()
    body = _send("get", _plan_path(world.feed_a.name, 0), token=world.token_a).json()
    log = body["log"]
    note = parse_note(log["checkpoint"])
    verify_log_signature(note, _signing_keys())
    assert note.checkpoint.size == log["size"]
    root = note.checkpoint.root_hash
    proved = [(body["manifest"], log["manifest"])] + [
        (step["manifest"], entry) for step, entry in zip(body["steps"], log["steps"], strict=True)
    ]
    assert len(proved) >= 2
    for envelope, entry in proved:
        leaf = leaf_hash(manifest_leaf(_payload(envelope)))
        verify_inclusion(leaf, entry["log_index"], log["size"], _hashes(entry["inclusion"]), root)
    assert log["consistency"] is None


def test_after_a_release_of_both_feeds_each_plan_is_covered_by_its_one_checkpoint(
    world, analyst, reviewer
):
    """One release publishes both feeds (two leaves) under one new checkpoint; the plan of
    each feed, read after it committed, is served that checkpoint and its manifest verifies
    as included in it — no plan sees a leaf its checkpoint does not cover."""
    from transparency.models import Checkpoint, LogLeaf

    before = Checkpoint.objects.count()
    _listed(analyst, reviewer, "md5")
    _listed(analyst, reviewer, "sha1")
    releases.release_cut()
    assert Checkpoint.objects.count() == before + 1
    latest = log_selectors.checkpoint_latest()
    assert latest.size == LogLeaf.objects.count()
    for feed, token in ((world.feed_a, world.token_a), (world.feed_b, world.token_b)):
        body = _send("get", _plan_path(feed.name, 0), token=token).json()
        log = body["log"]
        note = parse_note(log["checkpoint"])
        verify_log_signature(note, _signing_keys())
        assert note.checkpoint.size == latest.size
        entry = log["manifest"]
        assert entry["log_index"] < latest.size
        leaf = leaf_hash(manifest_leaf(_payload(body["manifest"])))
        verify_inclusion(
            leaf,
            entry["log_index"],
            latest.size,
            _hashes(entry["inclusion"]),
            note.checkpoint.root_hash,
        )


def test_the_plan_proves_consistency_from_the_size_the_client_holds(world, analyst, reviewer):
    held = log_selectors.checkpoint_latest()
    assert held is not None
    _listed(analyst, reviewer, "md5")
    releases.release_cut()
    path = _plan_path(world.feed_a.name, 0) + f"&log_size={held.size}"
    log = _send("get", path, token=world.token_a).json()["log"]
    assert log["consistency"]["from_size"] == held.size
    new_root = parse_note(log["checkpoint"]).checkpoint.root_hash
    verify_consistency(
        held.size,
        log["size"],
        _hashes(log["consistency"]["hashes"]),
        bytes(held.root_hash),
        new_root,
    )


def test_a_client_holding_a_bigger_log_than_the_servers_is_told_so(world):
    size = log_selectors.checkpoint_latest().size
    path = _plan_path(world.feed_a.name, 0) + f"&log_size={size + 1}"
    assert_error(_send("get", path, token=world.token_a), 409, "log_size_unknown")


@pytest.mark.parametrize("bad", ["-1", "x", "1e3", "99999999999999999999", " 1"])
def test_a_malformed_log_size_is_refused_with_a_stable_code(world, bad):
    path = _plan_path(world.feed_a.name, 0) + f"&log_size={bad}"
    assert_error(_send("get", path, token=world.token_a), 400, "log_size_invalid")


def test_the_up_to_date_poll_ignores_log_size(world):
    """The 304 path reads nothing of the log: the ETag does not depend on log_size."""
    path = _plan_path(world.feed_a.name, world.feed_a.version)
    etag = _send("get", path, token=world.token_a)["ETag"]
    again = _send("get", path + "&log_size=1", token=world.token_a, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


def test_the_up_to_date_poll_reads_no_table_of_the_log(world):
    """P4's path: a 304 touches nothing of the transparency app, however big the log."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path = _plan_path(world.feed_a.name, world.feed_a.version)
    etag = _send("get", path, token=world.token_a)["ETag"]
    with CaptureQueriesContext(connection) as queries:
        again = _send("get", path + "&log_size=1", token=world.token_a, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert queries.captured_queries  # the poll did query (token, entitlement, manifest)
    assert not [q for q in queries.captured_queries if "transparency_" in (q["sql"] or "")]


def test_checkpoint_endpoint_serves_the_newest_signed_note(world):
    response = _send("get", reverse("sync-log-checkpoint"), token=world.token_b)
    assert response.status_code == 200
    note = parse_note(response.json()["checkpoint"])
    verify_log_signature(note, _signing_keys())
    assert note.checkpoint.size == response.json()["size"] == log_selectors.checkpoint_latest().size


def test_inclusion_endpoint_proves_a_leaf(world):
    size = log_selectors.checkpoint_latest().size
    leaf = log_selectors.leaf_get(0)
    from hashsync_client.tlog import leaf_bytes

    data = leaf_bytes(
        feed=leaf.feed_name,
        version=leaf.version,
        manifest_sha256=leaf.manifest_sha256,
        previous_sha256=leaf.previous_sha256,
    )
    response = _send("get", reverse("sync-log-inclusion") + "?index=0", token=world.token_a)
    assert response.status_code == 200
    body = response.json()
    assert body["size"] == size
    verify_inclusion(leaf_hash(data), 0, size, _hashes(body["hashes"]), _root_at(size))


def test_consistency_endpoint_proves_growth(world, analyst, reviewer):
    old = log_selectors.checkpoint_latest().size
    _listed(analyst, reviewer, "sha1")
    releases.release_cut()
    new = log_selectors.checkpoint_latest().size
    url = reverse("sync-log-consistency") + f"?from_size={old}&size={new}"
    body = _send("get", url, token=world.token_a).json()
    verify_consistency(old, new, _hashes(body["hashes"]), _root_at(old), _root_at(new))


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?index=", "log_index_invalid"),
        ("?index=-1", "log_index_invalid"),
        ("?index=abc", "log_index_invalid"),
        ("?index=999999", "log_index_invalid"),
        ("?index=0&size=0", "log_size_invalid"),
        ("?index=0&size=999999", "log_size_invalid"),
        ("?index=3&size=2", "log_index_invalid"),
    ],
)
def test_inclusion_refuses_bad_indexes_and_sizes(world, query, code):
    response = _send("get", reverse("sync-log-inclusion") + query, token=world.token_a)
    assert_error(response, 400, code)


@pytest.mark.parametrize(
    "query",
    ["", "?from_size=0", "?from_size=999999", "?from_size=2&size=1", "?from_size=x"],
)
def test_consistency_refuses_bad_sizes(world, query):
    response = _send("get", reverse("sync-log-consistency") + query, token=world.token_a)
    assert_error(response, 400, "log_size_invalid")


@pytest.mark.parametrize(
    "name", ["sync-log-checkpoint", "sync-log-inclusion", "sync-log-consistency"]
)
def test_log_endpoints_need_a_member_token_with_the_sync_scope(world, name):
    url = reverse(name) + "?index=0&from_size=1"
    assert _send("get", url).status_code == 401
    _, lookup_only = member_with_token(
        world.admin, name="gamma", feeds=(world.feed_a.name,), scopes=("lookup",)
    )
    assert_error(_send("get", url, token=lookup_only), 403)
    assert _send("get", url, token=world.token_a).status_code == 200
