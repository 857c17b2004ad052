"""``lookup``: files and hash values against the local store, exact and PDQ within a distance.

The "files" are synthetic random bytes and a synthetic generated image; the list entries are
their digests or random values. Nothing here is a real hash-list entry.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashsync_client.api import HashsyncClient
from hashsync_client.format import decode_grading
from hashsync_client.lookup import PdqIndex, file_digests, pdq_of_image
from tests.hashsync_client.conftest import FEED
from tests.hashsync_client.fakeserver import Entries, FakeHashsync, synthetic_entries


def flip_bits(value: bytes, count: int, *, seed: int = 0) -> bytes:
    bits = np.unpackbits(np.frombuffer(value, dtype=np.uint8))
    positions = np.random.default_rng(seed).choice(len(bits), count, replace=False)
    bits[positions] ^= 1
    return np.packbits(bits).tobytes()


def synthetic_file(directory: Path, name: str, size: int = 5000, seed: int = 0) -> Path:
    path = directory / f"synthetic-{name}.bin"
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def synthetic_image(path: Path, *, seed: int) -> Path:
    """A synthetic picture with structure (smooth gradients and blocks), so PDQ has detail."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    channels = [
        np.sin(x / rng.uniform(8, 40)) * 80 + np.cos(y / rng.uniform(8, 40)) * 80 + 128
        for _ in range(3)
    ]
    image = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    image[64:128, 32:200] = rng.integers(0, 255, 3, dtype=np.uint8)
    Image.fromarray(image).save(path)
    return path


def sync_with(client: HashsyncClient, server: FakeHashsync, entries: Entries) -> None:
    server.publish(FEED, entries)
    report = client.sync(retries=0)
    assert report.ok, report.errors()


def test_a_file_matches_by_md5_sha1_and_sha256(client, server, tmp_path):
    listed = synthetic_file(tmp_path, "listed", seed=1)
    other = synthetic_file(tmp_path, "other", seed=2)
    digests = file_digests(listed)
    entries = synthetic_entries(100, seed=3)
    entries[("md5", digests["md5"])] = 126
    entries[("sha1", digests["sha1"])] = 127
    entries[("sha256", digests["sha256"])] = 128
    sync_with(client, server, entries)

    hit, miss = client.lookup_files([listed, other])

    assert sorted((m.algorithm, m.feed, m.distance) for m in hit.matches) == [
        ("md5", FEED, 0),
        ("sha1", FEED, 0),
        ("sha256", FEED, 0),
    ]
    md5 = next(m for m in hit.matches if m.algorithm == "md5")
    assert md5.grading == decode_grading(126)
    assert md5.value == digests["md5"].hex()
    assert hit.hashes["sha256"] == hashlib.sha256(listed.read_bytes()).hexdigest()
    assert miss.matches == []


def test_values_match_in_any_accepted_text_form(client, server):
    entries = synthetic_entries(50, seed=4, algorithms=("md5", "sha1"))
    sync_with(client, server, entries)
    (algorithm, value), grading = next(iter(entries.items()))

    queries = client.lookup_values(
        [value.hex().upper(), base64.b64encode(value).decode(), bytes(len(value)).hex()]
    )

    assert [bool(q.matches) for q in queries] == [True, True, False]
    assert queries[0].matches[0].algorithm == algorithm
    assert queries[0].matches[0].grading == decode_grading(grading)


def test_a_value_of_no_known_algorithm_is_an_error_not_a_miss(client, server):
    sync_with(client, server, synthetic_entries(5, seed=5))

    (query,) = client.lookup_values(["not-a-hash"])

    assert query.error is not None
    assert query.matches == []


def test_pdq_matches_within_the_hamming_distance_and_not_beyond(client, server):
    pdq = np.random.default_rng(6).bytes(32)
    entries = synthetic_entries(300, seed=7, algorithms=("pdq",))
    entries[("pdq", pdq)] = 50
    sync_with(client, server, entries)
    near, far = flip_bits(pdq, 10, seed=1).hex(), flip_bits(pdq, 40, seed=2).hex()

    near_query, far_query = client.lookup_values([near, far])

    matches = [m for m in near_query.matches if m.algorithm == "pdq"]
    assert [(m.value, m.distance) for m in matches] == [(pdq.hex(), 10)]
    assert not [m for m in far_query.matches if m.algorithm == "pdq"]
    (wider,) = client.lookup_values([far], pdq_distance=40)
    assert [(m.value, m.distance) for m in wider.matches] == [(pdq.hex(), 40)]


def test_pdq_of_an_image_file_is_computed_and_matched(client, server, tmp_path):
    image = synthetic_image(tmp_path / "synthetic-picture.png", seed=8)
    computed = pdq_of_image(image)
    assert computed is not None
    value, quality = computed
    assert quality >= 50
    entries = synthetic_entries(100, seed=9)
    listed = flip_bits(value, 5, seed=3)  # as if the listed image were slightly different
    entries[("pdq", listed)] = 300
    sync_with(client, server, entries)

    (query,) = client.lookup_files([image])

    assert query.pdq_quality == quality
    assert [(m.algorithm, m.distance, m.value) for m in query.matches] == [("pdq", 5, listed.hex())]


def test_a_flat_image_has_too_little_detail_to_match(client, server, tmp_path):
    flat = tmp_path / "synthetic-flat.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(flat)
    value, quality = pdq_of_image(flat) or (b"", 0)
    entries = synthetic_entries(10, seed=10)
    entries[("pdq", value)] = 1
    sync_with(client, server, entries)

    (query,) = client.lookup_files([flat])

    assert quality < 50
    assert query.matches == []
    assert any("quality" in note for note in query.notes)


def test_pdq_of_a_file_that_is_not_an_image_is_skipped(tmp_path):
    assert pdq_of_image(synthetic_file(tmp_path, "noise")) is None


@pytest.mark.parametrize("max_distance", [0, 31, 64, 256])
def test_vectorised_hamming_equals_a_naive_count(max_distance):
    rng = np.random.default_rng(max_distance)
    matrix = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    query = rng.bytes(32)
    matrix[17] = np.frombuffer(flip_bits(query, 3), dtype=np.uint8)

    rows, distances = PdqIndex(matrix).within(query, max_distance)

    naive = [
        (i, bin(int.from_bytes(row.tobytes(), "big") ^ int.from_bytes(query, "big")).count("1"))
        for i, row in enumerate(matrix)
    ]
    expected = sorted(((i, d) for i, d in naive if d <= max_distance), key=lambda p: (p[1], p[0]))
    assert list(zip(rows.tolist(), distances.tolist(), strict=True)) == expected


def test_lookup_restricted_to_a_feed(client, server):
    pdq = np.random.default_rng(11).bytes(32)
    server.publish(FEED, {("pdq", pdq): 2})
    server.publish("other-feed", {("pdq", pdq): 3})
    assert client.sync(retries=0).ok

    (everywhere,) = client.lookup_values([pdq.hex()])
    (only,) = client.lookup_values([pdq.hex()], feeds=["other-feed"])

    assert sorted(m.feed for m in everywhere.matches) == ["other-feed", FEED]
    assert [m.feed for m in only.matches] == ["other-feed"]


def test_pdq_hex_is_the_bit_order_threatexchange_writes(tmp_path):
    import pdqhash

    image = synthetic_image(tmp_path / "synthetic-order.png", seed=12)
    vector, _ = pdqhash.compute(np.asarray(Image.open(image).convert("RGB")))
    # threatexchange's pdq_hasher: the bits as a binary string, read as one big integer.
    expected = f"{int(''.join(str(int(bit)) for bit in vector), 2):064x}"

    value, _ = pdq_of_image(image) or (b"", 0)

    assert value.hex() == expected
