"""``export``: CSV, JSON Lines and the threatexchange/HMA ``type hash`` file, from the store."""

from __future__ import annotations

import csv
import io
import json
import stat

from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.export import CSV_COLUMNS, private_output
from hashsync_client.format import decode_grading, encode_grading
from tests.hashsync_client.conftest import FEED
from tests.hashsync_client.fakeserver import synthetic_entries

VIDEO = encode_grading("A", "7-10", None, "", "video")
IMAGE = encode_grading("B", "11-13", True, "A1", "image")


def synced(client, server, entries):
    server.publish(FEED, entries)
    report = client.sync(retries=0)
    assert report.ok, report.errors()


def test_csv_has_one_row_per_feed_entry_with_its_grading(client, server):
    entries = synthetic_entries(40, seed=1, algorithms=("md5", "sha1", "sha256", "pdq", "photodna"))
    synced(client, server, entries)
    out = io.StringIO()

    summary = client.export(out, "csv")

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert summary.rows == len(rows) == len(entries)
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = {(a, ALGORITHMS[a].canonical(v)): decode_grading(g) for (a, v), g in entries.items()}
    for row in rows:
        grading = expected[(row["algorithm"], row["value"])]
        assert row["feed"] == FEED
        assert row["category"] == grading.category
        assert row["baseline"] == (
            "" if grading.baseline is None else str(grading.baseline).lower()
        )


def test_jsonl_is_one_object_per_line(client, server):
    entries = synthetic_entries(25, seed=2)
    synced(client, server, entries)
    out = io.StringIO()

    client.export(out, "jsonl")

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == len(entries)
    assert set(lines[0]) == set(CSV_COLUMNS)
    assert {line["feed"] for line in lines} == {FEED}


def test_te_file_uses_threatexchange_signal_types_and_skips_the_rest(client, server):
    pdq, video_md5, image_md5, video_sha256 = (
        ("pdq", bytes(range(32))),
        ("md5", bytes(range(16))),
        ("md5", bytes(range(1, 17))),
        ("sha256", bytes(range(2, 34))),
    )
    entries = {pdq: IMAGE, video_md5: VIDEO, image_md5: IMAGE, video_sha256: VIDEO}
    synced(client, server, entries)
    out = io.StringIO()

    summary = client.export(out, "te")

    assert sorted(out.getvalue().splitlines()) == sorted(
        [
            f"pdq {bytes(range(32)).hex()}",
            f"video_md5 {bytes(range(16)).hex()}",
            f"video_sha256 {bytes(range(2, 34)).hex()}",
        ]
    )
    assert summary.skipped == 1
    everything = io.StringIO()
    client.export(everything, "te", te_all=True)
    assert f"md5 {bytes(range(1, 17)).hex()}" in everything.getvalue().splitlines()


def test_te_file_lists_a_hash_held_by_two_feeds_once(client, server):
    entry = {("pdq", bytes(range(32))): IMAGE}
    server.publish(FEED, entry)
    server.publish("second-feed", entry)
    assert client.sync(retries=0).ok
    out = io.StringIO()

    client.export(out, "te")

    assert out.getvalue().splitlines() == [f"pdq {bytes(range(32)).hex()}"]


def test_export_to_a_file_is_private_and_atomic(tmp_path):
    target = tmp_path / "list.csv"

    with private_output(target) as out:
        out.write("feed,algorithm\n")
        assert not target.exists()  # nobody sees half an export

    assert target.read_text() == "feed,algorithm\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
