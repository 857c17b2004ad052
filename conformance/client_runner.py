#!/usr/bin/env python3
"""The conformance runner for the project's own client, ``hashsync_client``.

    python conformance/client_runner.py CASE_DIR     # prints "accept" or "refuse:<error class>"

It does what ``hashsync_client.sync.Syncer`` does with one plan — ``parse_plan``,
``verify_plan`` (with the client's default limits), the size and SHA-256 check of every
download, ``apply_step`` into a real client store — without HTTP, retries or acks, and maps
the client's error codes to the suite's error classes (docs/conformance.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from hashsync_client.apply import apply_step
from hashsync_client.config import Config
from hashsync_client.errors import BadResponse, DigestMismatch, VerificationError
from hashsync_client.plan import parse_plan, verify_plan
from hashsync_client.signing import canonical_json, manifest_sha256, parse_timestamp
from hashsync_client.store import Store

# The client's own default limits: the suite stays far below them.
DEFAULTS: dict[str, Any] = {item.name: item.default for item in fields(Config)}


def _sync(case: Path, store: Store, feed: str, item: dict, description: dict) -> None:
    now = parse_timestamp(item["now"])
    state = store.ensure_feed(feed)
    raw = parse_plan(
        json.loads((case / item["plan"]).read_bytes()), feed=feed, from_version=state.version
    )
    plan = verify_plan(
        raw,
        pinned_root_keyids=description["pinned_root_keyids"],
        pinned_threshold=description["pinned_threshold"],
        trusted_keyring=store.trusted_keyring(),
        held_version=state.version,
        min_manifest_version=max(state.version, state.highest_manifest_version),
        max_bundle_bytes=DEFAULTS["max_bundle_bytes"],
        max_entries=DEFAULTS["max_entries"],
        now=now,
        max_manifest_lifetime=timedelta(seconds=DEFAULTS["max_manifest_lifetime_seconds"]),
        held_manifest=json.loads(state.manifest) if state.manifest else None,
    )
    if plan.keyring is not None:
        store.save_trusted_keyring(plan.keyring)
    store.note_manifest_version(feed, plan.version)
    if plan.manifest is None:
        return
    if not plan.steps and plan.manifest["state_digest"] != state.state_digest:
        raise DigestMismatch(f"{feed}: the held list is not the signed version")
    for step in plan.steps:
        path = case / "bundles" / step.sha256
        data = path.read_bytes() if path.is_file() else b""
        if len(data) != step.size or hashlib.sha256(data).hexdigest() != step.sha256:
            raise VerificationError("the bundle is not the signed one", code="bundle_mismatch")
        with tempfile.NamedTemporaryFile(suffix=".bundle") as spool:
            spool.write(data)
            spool.flush()
            current = store.feed(feed)
            assert current is not None
            apply_step(store, current, step, Path(spool.name), process_digest_from=1 << 62)
    store.update_feed(
        feed,
        manifest=canonical_json(plan.manifest),
        manifest_sha256=manifest_sha256(plan.manifest),
        manifest_expires_at=plan.manifest["expires_at"],
    )


def run(case: Path) -> str:
    description = json.loads((case / "case.json").read_text())
    with tempfile.TemporaryDirectory() as home, Store(Path(home) / "store.sqlite3") as store:
        try:
            for item in description["syncs"]:
                _sync(case, store, description["feed"], item, description)
        except DigestMismatch:
            return "refuse:state_mismatch"
        except BadResponse:
            return "refuse:plan_malformed"
        except VerificationError as exc:
            return f"refuse:{exc.code}"
    return "accept"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: client_runner.py CASE_DIR")
    print(run(Path(sys.argv[1])))
