"""Writing the local list out: CSV, JSON Lines, or the ``type hash`` lines threatexchange reads.

The threatexchange CLI and Hasher-Matcher-Actioner load a plain file of one signal per line,
``<signal type> <value>`` (threatexchange's ``LocalFileSignalExchangeAPI``). Their signal types
are named by content: ``pdq``, ``video_md5``, ``video_sha256``. Only entries that map onto one
of those are written; image MD5/SHA-1/SHA-256 and PhotoDNA have no threatexchange type and are
counted as skipped, unless ``te_all`` writes them under hashsync's algorithm names for a
consumer that knows them.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.classes import FeedFramework, feed_frameworks
from hashsync_client.format import ALGORITHM_NAMES, GRADING_COUNT, decode_grading
from hashsync_client.store import Store

FORMATS = ("csv", "jsonl", "te")
CSV_COLUMNS = (
    "feed",
    "algorithm",
    "value",
    "category",
    "age_group",
    "baseline",
    "industry_class",
    "content_type",
    "framework",
    "framework_version",
    "class",
)


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    skipped: int


def te_signal_type(algorithm: str, content_type: str) -> str | None:
    """The threatexchange signal type of a list entry, or None if it has none."""
    if algorithm == "pdq":
        return "pdq"
    if content_type == "video" and algorithm in ("md5", "sha256"):
        return f"video_{algorithm}"
    return None


def export_entries(
    store: Store,
    out: TextIO,
    fmt: str,
    *,
    feeds: Sequence[str] | None = None,
    te_all: bool = False,
) -> ExportSummary:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    feed_ids = store.feed_ids(feeds)
    if fmt == "te":
        return _write_te(store, out, list(feed_ids), te_all)
    rows = store.iter_entries(list(feed_ids))
    frameworks = feed_frameworks(store.feeds())
    count = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    for feed_id, number, value, code in rows:
        algorithm = ALGORITHM_NAMES[number]
        name = feed_ids[feed_id]
        framework = frameworks.get(name) or FeedFramework.of_manifest(None)
        grading, klass = framework.read(code)
        version = "" if framework.version is None else framework.version
        text = ALGORITHMS[algorithm].canonical(value)
        if writer is not None:
            baseline = "" if grading.baseline is None else str(grading.baseline).lower()
            writer.writerow(
                (
                    name,
                    algorithm,
                    text,
                    grading.category,
                    grading.age_group,
                    baseline,
                    grading.industry_class,
                    grading.content_type,
                    framework.slug,
                    version,
                    klass,
                )
            )
        else:
            record = {"feed": name, "algorithm": algorithm, "value": text}
            classed = {
                "framework": framework.slug,
                "framework_version": framework.version,
                "class": klass,
            }
            out.write(
                json.dumps({**record, **grading._asdict(), **classed}, sort_keys=False) + "\n"
            )
        count += 1
    return ExportSummary(count, 0)


def _write_te(store: Store, out: TextIO, feed_ids: list[int], te_all: bool) -> ExportSummary:
    written = skipped = 0
    previous: tuple[str, str] | None = None
    # Sorted by key across feeds, so a hash held by several feeds is written once.
    for number, value, code in store.iter_distinct(feed_ids):
        algorithm = ALGORITHM_NAMES[number]
        signal_type = te_signal_type(algorithm, decode_grading(code % GRADING_COUNT).content_type)
        if signal_type is None:
            if not te_all:
                skipped += 1
                continue
            signal_type = algorithm
        line = (signal_type, ALGORITHMS[algorithm].canonical(value))
        if line == previous:
            continue
        previous = line
        out.write(f"{line[0]} {line[1]}\n")
        written += 1
    return ExportSummary(written, skipped)


@contextmanager
def private_output(path: Path) -> Iterator[TextIO]:
    """A text file written atomically with mode 0600: the list is the member's to protect,
    and a reader never sees half an export."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            os.fchmod(handle.fileno(), 0o600)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
