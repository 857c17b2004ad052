"""Applying one verified bundle: the transaction, the digest check, and the digest shared with
a helper process for large snapshots (forced here on small ones)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashsync_client import apply as apply_module
from hashsync_client import lthash as lthash_module
from hashsync_client.apply import apply_step, bundle_state
from hashsync_client.errors import DigestMismatch, VerificationError
from hashsync_client.format import Op, Record, read_bundle_blocks, read_bundle_bytes
from hashsync_client.lthash import HelperFailed, LtHash16, LtHashSum
from hashsync_client.plan import VerifiedStep
from hashsync_client.store import Store
from tests.hashsync_client.fakeserver import Entries, build_bundle, digest_of, synthetic_entries

FEED = "synthetic-apply"


def snapshot_step(
    tmp_path: Path, entries: Entries, *, digest: str | None = None
) -> tuple[VerifiedStep, Path]:
    data = build_bundle(
        "snapshot", FEED, 0, 4, [Record(a, v, Op.UPSERT, g) for (a, v), g in entries.items()]
    )
    path = tmp_path / "snapshot.bundle"
    path.write_bytes(data)
    step = VerifiedStep(
        kind="snapshot",
        from_version=0,
        to_version=4,
        sha256="0" * 64,  # checked at download, not here
        size=len(data),
        url="",
        max_records=len(entries),
        state_digest=digest or digest_of(entries),
        entry_count=len(entries),
        manifest={"version": 4, "expires_at": "2099-01-01T00:00:00Z"},
    )
    return step, path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "apply.sqlite3") as opened:
        yield opened


def test_digest_from_a_second_process_equals_the_one_computed_here(tmp_path, store):
    entries = synthetic_entries(500, seed=1)
    step, bundle = snapshot_step(tmp_path, entries)

    applied = apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=1)

    assert applied.state_digest == digest_of(entries)
    assert store.feed(FEED).version == 4
    assert LtHash16(bundle_state(str(bundle), 500)).hexdigest() == digest_of(entries)


def test_a_wrong_signed_digest_rolls_back_with_the_process_digest_too(tmp_path, store):
    entries = synthetic_entries(300, seed=2)
    step, bundle = snapshot_step(tmp_path, entries, digest="f" * 64)

    with pytest.raises(DigestMismatch):
        apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=1)

    assert store.feed(FEED).version == 0
    assert store.conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 0


def test_a_corrupt_bundle_rolls_back_whoever_notices_first(tmp_path, store):
    entries = synthetic_entries(300, seed=3)
    step, bundle = snapshot_step(tmp_path, entries)
    data = bytearray(bundle.read_bytes())
    data[-20] ^= 0xFF  # inside the zstd frame: its checksum fails at the end
    bundle.write_bytes(bytes(data))

    with pytest.raises(VerificationError) as error:
        apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=1)

    assert error.value.code == "bundle_format"
    assert store.conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 0


def test_without_a_digest_process_the_digest_is_computed_here(tmp_path, store, monkeypatch):
    def cannot_start(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no processes allowed")

    monkeypatch.setattr(lthash_module.os, "fork", cannot_start)
    monkeypatch.setattr(lthash_module.subprocess, "Popen", cannot_start)
    entries = synthetic_entries(2000, seed=4)
    step, bundle = snapshot_step(tmp_path, entries)

    applied = apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=1)

    assert applied.state_digest == digest_of(entries)


def test_a_digest_helper_lost_midway_is_made_up_for_from_the_bundle(tmp_path, store, monkeypatch):
    def lost(self: LtHashSum) -> LtHash16:
        self.close()
        raise HelperFailed("the digest helper exited without its sum")

    monkeypatch.setattr(apply_module.LtHashSum, "result", lost)
    entries = synthetic_entries(2000, seed=5)
    step, bundle = snapshot_step(tmp_path, entries)

    applied = apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=1)

    assert applied.state_digest == digest_of(entries)
    assert store.feed(FEED).version == 4
    assert store.conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 2000


@pytest.mark.parametrize("helper_from", [1, 1 << 62], ids=["helper", "no-helper"])
def test_a_tampered_snapshot_is_refused_and_the_store_keeps_what_it_held(
    tmp_path, store, helper_from
):
    # The bundle's bytes pass the size and SHA-256 checks (they were checked at download);
    # one record's grading differs from what the manifest's state digest signs.
    held = synthetic_entries(3000, seed=11)
    step, bundle = snapshot_step(tmp_path, held)
    apply_step(store, store.ensure_feed(FEED), step, bundle, process_digest_from=helper_from)
    before = store.feed(FEED)
    rows = store.conn.execute("SELECT * FROM entries ORDER BY 1, 2, 3").fetchall()

    signed = synthetic_entries(3000, seed=12)
    tampered = dict(signed)
    key = next(iter(tampered))
    tampered[key] = (tampered[key] + 1) % 630
    data = build_bundle(
        "snapshot", FEED, 0, 5, [Record(a, v, Op.UPSERT, g) for (a, v), g in tampered.items()]
    )
    bundle.write_bytes(data)
    newer = VerifiedStep(
        **{
            **step.__dict__,
            "to_version": 5,
            "size": len(data),
            "state_digest": digest_of(signed),
            "manifest": {"version": 5, "expires_at": "2099-01-01T00:00:00Z"},
        }
    )

    with pytest.raises(DigestMismatch):
        apply_step(store, before, newer, bundle, process_digest_from=helper_from)

    after = store.feed(FEED)
    assert (after.version, after.lthash, after.state_digest, after.entry_count) == (
        before.version,
        before.lthash,
        before.state_digest,
        before.entry_count,
    )
    assert store.conn.execute("SELECT * FROM entries ORDER BY 1, 2, 3").fetchall() == rows


def test_a_bundle_for_another_step_is_refused_before_anything_is_written(tmp_path, store):
    entries = synthetic_entries(50, seed=6)
    step, bundle = snapshot_step(tmp_path, entries)
    wrong = VerifiedStep(**{**step.__dict__, "to_version": 5})

    with pytest.raises(VerificationError) as error:
        apply_step(store, store.ensure_feed(FEED), wrong, bundle)

    assert error.value.code == "bundle_header"


def test_a_bundle_with_fewer_records_than_signed_is_refused_before_anything_is_written(
    tmp_path, store
):
    # docs/signing.md §4: the header's record_count equals the signed count; a server that
    # drops records from a bundle cannot hide it behind a matching size and SHA-256.
    entries = synthetic_entries(50, seed=6)
    step, bundle = snapshot_step(tmp_path, entries)
    signed_more = VerifiedStep(**{**step.__dict__, "max_records": 51, "entry_count": 51})

    with pytest.raises(VerificationError) as error:
        apply_step(store, store.ensure_feed(FEED), signed_more, bundle)

    assert error.value.code == "bundle_header"
    assert store.feed(FEED).version == 0


@pytest.mark.parametrize("name", ["snapshot.bin", "delta.bin"])
def test_block_reader_yields_the_records_of_the_record_reader(name):
    data = (Path(__file__).parent.parent / "vectors" / name).read_bytes()
    _, records = read_bundle_bytes(data)

    _, blocks = read_bundle_blocks(io.BytesIO(data))
    from_blocks = [
        Record(block.algorithm, value, Op(int(op)), int(grading))
        for block in blocks
        for value, op, grading in zip(block.values, block.ops, block.gradings, strict=True)
    ]

    assert from_blocks == records
