#!/usr/bin/env python
"""Write the bundle-format test vectors: snapshot.bin, delta.bin (format 1), snapshot-v2.bin,
delta-v2.bin (format 2) and vectors.json.

Everything is synthetic: the hash values are bytes from a seeded PRNG, not hashes of anything.
The same seed always gives the same records; with the same zstandard (libzstd) version it
gives the same bytes, which tests/vectors/test_vectors.py checks against the committed files.

    .venv/bin/python tests/vectors/make_vectors.py            # rewrite the files here
    .venv/bin/python tests/vectors/make_vectors.py --out DIR  # write them elsewhere

vectors.json is a top-level object. This script owns the keys in ``OWN_KEYS`` and keeps every
other key it finds there (the manifest and signature vectors are added by their own script).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import zstandard

from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    GRADING_COUNT,
    FrameworkRef,
    Op,
    Record,
    classed_code,
    decode_grading,
    split_code,
    write_bundle,
)
from hashsync_client.lthash import LtHash16, element

HERE = Path(__file__).resolve().parent
SEED = 20261125
FEED = "synthetic-vectors"
OWN_KEYS = ("about", "snapshot", "delta", "lthash", "format2")
# Format 2 (docs/bundle-format.md §3.1): its own seed, so the format-1 files never change.
SEED_V2 = 20261206
FEED_V2 = "synthetic-vectors-v2"
FRAMEWORK_V1 = FrameworkRef("interpol-baseline", 1, ("yes", "no", "unassessed"))
FRAMEWORK_V2 = FrameworkRef("interpol-baseline", 2, ("yes", "no", "unassessed"))

Key = tuple[int, bytes]


def _key(record: Record) -> Key:
    return ALGORITHM_IDS[record.algorithm], record.value


def build_records() -> tuple[list[Record], list[Record]]:
    """(snapshot records at version 1, delta records from 1 to 2), both sorted."""
    rng = random.Random(SEED)  # synthetic test data, not a secret
    snapshot = [
        Record(name, rng.randbytes(ALGORITHM_LENGTHS[name]), Op.UPSERT, rng.randrange(630))
        for name in ALGORITHM_IDS
        for _ in range(4)
    ]
    snapshot.sort(key=_key)
    existing = snapshot[:]
    rng.shuffle(existing)
    regraded, retracted, regraded_out, hash_removed = existing[:4]
    new_grading = (regraded.grading + 1 + rng.randrange(GRADING_COUNT - 1)) % GRADING_COUNT
    delta = [
        Record("md5", rng.randbytes(16), Op.UPSERT, rng.randrange(630)),
        Record("pdq", rng.randbytes(32), Op.UPSERT, rng.randrange(630)),
        Record(regraded.algorithm, regraded.value, Op.UPSERT, new_grading),
        Record(retracted.algorithm, retracted.value, Op.RETRACTED, 0),
        Record(regraded_out.algorithm, regraded_out.value, Op.REGRADED_OUT, 0),
        Record(hash_removed.algorithm, hash_removed.value, Op.HASH_REMOVED, 0),
    ]
    delta.sort(key=_key)
    return snapshot, delta


def apply_delta(
    state: dict[Key, Record], digest: LtHash16, delta: list[Record]
) -> tuple[dict[Key, Record], LtHash16]:
    """What a client does with a delta: O(changes) updates of the list and of its digest."""
    state, digest = dict(state), digest.copy()
    for record in delta:
        old = state.pop(_key(record), None)
        if old is not None:
            digest.remove([element(old.algorithm, old.value, old.grading)])
        if record.op is Op.UPSERT:
            state[_key(record)] = record
            digest.add([element(record.algorithm, record.value, record.grading)])
    return state, digest


def _record_json(record: Record) -> dict[str, Any]:
    return {
        "algorithm": record.algorithm,
        "algorithm_id": ALGORITHM_IDS[record.algorithm],
        "value_hex": record.value.hex(),
        "op": int(record.op),
        "op_name": record.op.name,
        "grading": record.grading,
        "grading_fields": decode_grading(record.grading)._asdict()
        if record.op is Op.UPSERT
        else None,
    }


def build_records_v2() -> tuple[list[Record], list[Record]]:
    """Format 2: (snapshot at version 1, delta 1 -> 2 under the rules of version 2). Two keys
    keep their grading and change only their class, one is new, one is retracted."""
    rng = random.Random(SEED_V2)  # synthetic test data, not a secret
    classes = len(FRAMEWORK_V1.classes)
    snapshot = [
        Record(
            name,
            rng.randbytes(ALGORITHM_LENGTHS[name]),
            Op.UPSERT,
            classed_code(rng.randrange(GRADING_COUNT), rng.randrange(classes)),
        )
        for name in ("md5", "pdq")
        for _ in range(4)
    ]
    snapshot.sort(key=_key)
    first, second, third = rng.sample(snapshot, 3)

    def reclassed(record: Record) -> Record:
        grading, index = split_code(record.grading)
        return Record(record.algorithm, record.value, Op.UPSERT, classed_code(grading, 2 - index))

    delta = [
        reclassed(first),
        reclassed(second),
        Record("md5", rng.randbytes(16), Op.UPSERT, classed_code(rng.randrange(630), 0)),
        Record(third.algorithm, third.value, Op.RETRACTED, 0),
    ]
    delta.sort(key=_key)
    return snapshot, delta


def _record_json_v2(record: Record, framework: FrameworkRef) -> dict[str, Any]:
    grading, index = split_code(record.grading)
    described = {**_record_json(Record(record.algorithm, record.value, record.op, 0))}
    described["grading"] = record.grading
    described["grading_fields"] = None
    if record.op is Op.UPSERT:
        described["grading_code"] = grading
        described["grading_fields"] = decode_grading(grading)._asdict()
        described["class"] = framework.classes[index]
    return described


def _bundle(
    name: str, records: list[Record], *, feed: str = FEED, **header: Any
) -> tuple[bytes, dict[str, Any]]:
    out = io.BytesIO()
    info = write_bundle(out, feed=feed, records=records, **header)
    data = out.getvalue()
    header_length = int.from_bytes(data[4:8], "little")
    described = {
        "file": name,
        "sha256": info.sha256,
        "size": info.size,
        "header_json": data[8 : 8 + header_length].decode("ascii"),
        "body_offset": 8 + header_length,
        "decompressed_body_hex": zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(data[8 + header_length :])
        .hex(),
        "records": [
            _record_json(r)
            if header.get("framework") is None
            else _record_json_v2(r, header["framework"])
            for r in records
        ],
    }
    return data, described


def generate_v2() -> tuple[dict[str, bytes], dict[str, Any]]:
    snapshot, delta = build_records_v2()
    snapshot_bytes, snapshot_json = _bundle(
        "snapshot-v2.bin",
        snapshot,
        feed=FEED_V2,
        kind="snapshot",
        from_version=0,
        to_version=1,
        framework=FRAMEWORK_V1,
    )
    delta_bytes, delta_json = _bundle(
        "delta-v2.bin",
        delta,
        feed=FEED_V2,
        kind="delta",
        from_version=1,
        to_version=2,
        framework=FRAMEWORK_V2,
    )
    before = LtHash16()
    before.add(element(r.algorithm, r.value, r.grading) for r in snapshot)
    state_after, after = apply_delta({_key(r): r for r in snapshot}, before, delta)
    section = {
        "about": (
            "Bundle format 2 (docs/bundle-format.md §3.1): the header names the framework, "
            "its rule version and classes; each code is class_index * 630 + grading code. "
            f"SYNTHETIC (seed {SEED_V2})."
        ),
        "snapshot": snapshot_json,
        "delta": delta_json,
        "snapshot_digest": before.hexdigest(),
        "after_delta_digest": after.hexdigest(),
        "after_delta_entry_count": len(state_after),
    }
    return {"snapshot-v2.bin": snapshot_bytes, "delta-v2.bin": delta_bytes}, section


def generate() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files (name → bytes) and this script's sections of vectors.json."""
    snapshot, delta = build_records()
    snapshot_bytes, snapshot_json = _bundle(
        "snapshot.bin", snapshot, kind="snapshot", from_version=0, to_version=1
    )
    delta_bytes, delta_json = _bundle(
        "delta.bin", delta, kind="delta", from_version=1, to_version=2
    )
    before = LtHash16()
    before.add(element(r.algorithm, r.value, r.grading) for r in snapshot)
    state_after, after = apply_delta({_key(r): r for r in snapshot}, before, delta)
    from_scratch = LtHash16()
    from_scratch.add(element(r.algorithm, r.value, r.grading) for r in state_after.values())
    assert from_scratch == after, "incremental and from-scratch digests disagree"
    first = snapshot[0]
    sections = {
        "about": (
            "hashsync bundle format 1 test vectors (docs/bundle-format.md). SYNTHETIC: every "
            "hash value is random bytes from a seeded PRNG, not the hash of any content. "
            f"Written by tests/vectors/make_vectors.py (seed {SEED}) with libzstd "
            f"{zstandard.ZSTD_VERSION[0]}.{zstandard.ZSTD_VERSION[1]}.{zstandard.ZSTD_VERSION[2]}."
        ),
        "snapshot": snapshot_json,
        "delta": delta_json,
        "lthash": {
            "empty_digest": LtHash16().hexdigest(),
            "example_element": {
                "algorithm": first.algorithm,
                "value_hex": first.value.hex(),
                "grading": first.grading,
                "element_hex": element(first.algorithm, first.value, first.grading).hex(),
                "shake128_first_32_bytes_hex": hashlib.shake_128(
                    b"hashsync-lthash-v1" + element(first.algorithm, first.value, first.grading)
                )
                .digest(32)
                .hex(),
            },
            "snapshot_state_hex": before.state().hex(),
            "snapshot_digest": before.hexdigest(),
            "after_delta_state_hex": after.state().hex(),
            "after_delta_digest": after.hexdigest(),
            "after_delta_entry_count": len(state_after),
            "after_delta_records": [_record_json(state_after[k]) for k in sorted(state_after)],
        },
    }
    files_v2, format2 = generate_v2()
    sections["format2"] = format2
    return {"snapshot.bin": snapshot_bytes, "delta.bin": delta_bytes, **files_v2}, sections


def dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def write(out_dir: Path) -> None:
    files, sections = generate()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    path = out_dir / "vectors.json"
    document = json.loads(path.read_text()) if path.exists() else {}
    document.update(sections)
    path.write_text(dump_json(document))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
