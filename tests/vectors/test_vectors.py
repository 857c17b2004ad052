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

from hashsync_client.format import (
    ALGORITHM_IDS,
    FrameworkRef,
    Op,
    Record,
    classed_code,
    read_bundle_bytes,
    split_code,
)
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
    for name in ("snapshot.bin", "delta.bin", "snapshot-v2.bin", "delta-v2.bin"):
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name
    regenerated = json.loads((tmp_path / "vectors.json").read_text())
    assert regenerated["signing"] == {"kept": True}  # other sections are left alone
    for key in make_vectors.OWN_KEYS:
        assert regenerated[key] == VECTORS[key], key


# --- format 2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["snapshot", "delta"])
def test_format_2_bundles_read_back_with_their_framework_and_classes(name):
    section = VECTORS["format2"][name]
    data = (HERE / section["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == section["sha256"]
    header, records = read_bundle_bytes(data)
    assert header.format == 2
    assert data[8 : section["body_offset"]].decode() == section["header_json"]
    assert records == recorded_records(section)
    framework = json.loads(section["header_json"])
    assert header.framework == FrameworkRef(
        framework["framework"], framework["framework_version"], tuple(framework["classes"])
    )
    for record, described in zip(records, section["records"], strict=True):
        if record.op is Op.UPSERT:
            grading, index = split_code(record.grading)
            assert (grading, header.framework.classes[index]) == (
                described["grading_code"],
                described["class"],
            )


def test_format_2_digests_cover_the_class():
    section = VECTORS["format2"]
    snapshot = read_bundle_bytes((HERE / "snapshot-v2.bin").read_bytes())[1]
    delta = read_bundle_bytes((HERE / "delta-v2.bin").read_bytes())[1]
    before = LtHash16()
    before.add(element(r.algorithm, r.value, r.grading) for r in snapshot)
    assert before.hexdigest() == section["snapshot_digest"]
    state = {(r.algorithm, r.value): r for r in snapshot}
    for r in delta:
        state.pop((r.algorithm, r.value), None)
        if r.op is Op.UPSERT:
            state[(r.algorithm, r.value)] = r
    after = LtHash16()
    after.add(element(r.algorithm, r.value, r.grading) for r in state.values())
    assert after.hexdigest() == section["after_delta_digest"] != section["snapshot_digest"]
    # Two of the delta's upserts change only the class: same grading code, another class.
    old = {(r.algorithm, r.value): r.grading for r in snapshot}
    reclassed = [
        r
        for r in delta
        if r.op is Op.UPSERT
        and (r.algorithm, r.value) in old
        and split_code(r.grading)[0] == split_code(old[(r.algorithm, r.value)])[0]
    ]
    assert len(reclassed) == 2


def test_a_format_1_reader_refuses_a_class_code_and_a_format_2_reader_a_code_past_its_classes():
    import io

    from hashsync_client.format import BundleFormatError, write_bundle

    record = Record("md5", bytes(16), Op.UPSERT, classed_code(5, 2))
    with pytest.raises(ValueError, match=r"grading must be 0\.\.629"):
        write_bundle(
            io.BytesIO(), kind="snapshot", feed="f", from_version=0, to_version=1, records=[record]
        )
    two = FrameworkRef("interpol-baseline", 1, ("yes", "unassessed"))
    with pytest.raises(ValueError, match=r"grading must be 0\.\.1259"):
        write_bundle(
            io.BytesIO(),
            kind="snapshot",
            feed="f",
            from_version=0,
            to_version=1,
            records=[record],
            framework=two,
        )
    # A hand-made format-2 bundle whose palette holds a code past its classes is refused.
    out = io.BytesIO()
    three = FrameworkRef("interpol-baseline", 1, ("yes", "no", "unassessed"))
    write_bundle(
        out,
        kind="snapshot",
        feed="f",
        from_version=0,
        to_version=1,
        records=[record],
        framework=three,
    )
    data = out.getvalue().replace(b'["yes","no","unassessed"]', b'["no","unassessed"]     ')
    size = int.from_bytes(data[4:8], "little")
    with pytest.raises(BundleFormatError):
        read_bundle_bytes(data[:8] + data[8 : 8 + size].rstrip() + data[8 + size :])


@pytest.mark.parametrize(
    "change",
    [
        {"classes": ["yes", "no"]},  # "unassessed" not last
        {"classes": ["yes", "yes", "unassessed"]},
        {"framework": "Interpol"},
        {"framework_version": 0},
    ],
)
def test_a_bad_format_2_header_is_refused(change):
    from hashsync_client.format import BundleFormatError

    data = (HERE / "snapshot-v2.bin").read_bytes()
    size = int.from_bytes(data[4:8], "little")
    header = json.loads(data[8 : 8 + size])
    header.update(change)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    forged = data[:4] + len(text).to_bytes(4, "little") + text + data[8 + size :]
    with pytest.raises(BundleFormatError, match="bad header"):
        read_bundle_bytes(forged)
