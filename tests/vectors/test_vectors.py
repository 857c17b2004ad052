"""The committed bundle-format test vectors: they read back as recorded, and the generator
still writes them byte for byte.

All vectors are synthetic (seeded random bytes), see vectors.json "about".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import zstandard

from hashsync_client.format import ALGORITHM_IDS, Op, Record, read_bundle_bytes
from hashsync_client.lthash import LtHash16, element
from tests.vectors import make_vectors

HERE = Path(__file__).resolve().parent
VECTORS = json.loads((HERE / "vectors.json").read_text())


def recorded_records(section: dict) -> list[Record]:
    return [
        Record(r["algorithm"], bytes.fromhex(r["value_hex"]), Op(r["op"]), r["grading"])
        for r in section["records"]
    ]


@pytest.mark.parametrize("name", ["snapshot", "delta"])
def test_committed_bundles_read_back_as_recorded(name):
    section = VECTORS[name]
    data = (HERE / section["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == section["sha256"]
    assert len(data) == section["size"]
    header, records = read_bundle_bytes(data)
    assert records == recorded_records(section)
    assert data[8 : section["body_offset"]].decode() == section["header_json"]
    assert header.record_count == len(records)
    body = zstandard.ZstdDecompressor().decompressobj().decompress(data[section["body_offset"] :])
    assert body.hex() == section["decompressed_body_hex"]
    for r in section["records"]:
        assert r["algorithm_id"] == ALGORITHM_IDS[r["algorithm"]]


def test_committed_state_digests():
    lthash = VECTORS["lthash"]
    snapshot = read_bundle_bytes((HERE / "snapshot.bin").read_bytes())[1]
    delta = read_bundle_bytes((HERE / "delta.bin").read_bytes())[1]
    before = LtHash16()
    before.add(element(r.algorithm, r.value, r.grading) for r in snapshot)
    assert before.hexdigest() == lthash["snapshot_digest"]
    assert before.state().hex() == lthash["snapshot_state_hex"]
    assert LtHash16().hexdigest() == lthash["empty_digest"]

    state = {(r.algorithm, r.value): r for r in snapshot}
    after = before.copy()
    for r in delta:
        old = state.pop((r.algorithm, r.value), None)
        if old is not None:
            after.remove([element(old.algorithm, old.value, old.grading)])
        if r.op is Op.UPSERT:
            state[(r.algorithm, r.value)] = r
            after.add([element(r.algorithm, r.value, r.grading)])
    assert after.hexdigest() == lthash["after_delta_digest"]
    assert after.state().hex() == lthash["after_delta_state_hex"]
    assert len(state) == lthash["after_delta_entry_count"]
    assert sorted(state.values(), key=lambda r: (ALGORITHM_IDS[r.algorithm], r.value)) == (
        recorded_records({"records": lthash["after_delta_records"]})
    )
    example = lthash["example_element"]
    item = element(example["algorithm"], bytes.fromhex(example["value_hex"]), example["grading"])
    assert item.hex() == example["element_hex"]


def test_every_removal_reason_is_in_the_delta():
    ops = {r["op_name"] for r in VECTORS["delta"]["records"]}
    assert ops == {op.name for op in Op}


def test_generator_reproduces_the_committed_files(tmp_path):
    # Fails if the encoder's output changed. If only the libzstd inside zstandard changed
    # (see "about"), the committed files must still read back (tests above): regenerate
    # them with make_vectors.py and say so in the commit.
    (tmp_path / "vectors.json").write_text(json.dumps({"signing": {"kept": True}}))
    make_vectors.write(tmp_path)
    for name in ("snapshot.bin", "delta.bin"):
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name
    regenerated = json.loads((tmp_path / "vectors.json").read_text())
    assert regenerated["signing"] == {"kept": True}  # other sections are left alone
    for key in make_vectors.OWN_KEYS:
        assert regenerated[key] == VECTORS[key], key
