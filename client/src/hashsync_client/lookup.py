"""Looking files and hash values up in the local list.

Exact matches for every algorithm (MD5, SHA-1 and SHA-256 of files are computed here in one
pass). PDQ is perceptual: a PDQ value matches list entries within a Hamming distance (31 of
256 bits by default, Meta's recommended threshold), found by the exact multi-index hashing
index of ``hashsync_client.pdqindex`` (the server's matcher uses the same one), one per feed,
persisted beside the store by each sync (``hashsync_client.feedindex``) and mapped from there:
a lookup rebuilds it from SQLite only when it is missing or not the index of the version held.
All PDQ values of one lookup are searched in one batch. Computing
the PDQ of an image file needs the optional ``pdq`` extra
(``pdqhash`` and Pillow); PDQ *values* can be looked up without it. PhotoDNA values can be
looked up exactly; PhotoDNA of files cannot be computed here (it is licensed separately).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashsync_client.algorithms import ALGORITHMS, parse_any
from hashsync_client.classes import FeedFramework, feed_frameworks
from hashsync_client.feedindex import FeedIndex, open_feed_index, query_words
from hashsync_client.format import ALGORITHM_IDS, Grading
from hashsync_client.pdqindex import PdqIndex
from hashsync_client.store import Store

__all__ = ["PDQ_DEFAULT_DISTANCE", "Lookup", "Match", "PdqIndex", "Query"]

PDQ_DEFAULT_DISTANCE = 31
# Meta's guidance: PDQ hashes of quality below 50 (flat or tiny images) match too much.
PDQ_MIN_QUALITY = 50
FILE_ALGORITHMS = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class Match:
    feed: str
    algorithm: str
    value: str  # the list entry, canonical text
    distance: int  # 0 for exact matches
    grading: Grading
    # The feed's grading framework (classes.FeedFramework) and the entry's class in it.
    framework: str = "uk"
    framework_version: int | None = None
    klass: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "algorithm": self.algorithm,
            "value": self.value,
            "distance": self.distance,
            **self.grading._asdict(),
            "framework": self.framework,
            "framework_version": self.framework_version,
            "class": self.klass,
        }


@dataclass
class Query:
    """One thing looked up: a file, or a value as given."""

    label: str
    kind: str  # "file" | "value"
    hashes: dict[str, str] = field(default_factory=dict)  # algorithm → canonical text
    pdq_quality: int | None = None
    notes: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.label,
            "kind": self.kind,
            "hashes": self.hashes,
            "pdq_quality": self.pdq_quality,
            "matched": bool(self.matches),
            "matches": [m.as_json() for m in self.matches],
            "notes": self.notes,
            "error": self.error,
        }


def file_digests(path: Path) -> dict[str, bytes]:
    """MD5, SHA-1 and SHA-256 of a file, read once in 1 MiB chunks."""
    hashers = {name: hashlib.new(name) for name in FILE_ALGORITHMS}
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.digest() for name, hasher in hashers.items()}


def pdq_available() -> bool:
    try:
        import pdqhash  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError:
        return False
    return True


def pdq_of_image(path: Path) -> tuple[bytes, int] | None:
    """(PDQ hash, quality 0..100) of an image file, or None if it is not an image Pillow
    reads. The hash bytes are the 256 bits in the order threatexchange writes them as hex."""
    import pdqhash
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    vector, quality = pdqhash.compute(rgb)
    bits = np.asarray(vector, dtype=np.uint8)
    return np.packbits(bits).tobytes(), int(quality)


class Lookup:
    """Lookups against the feeds held in ``store`` (all, or ``feeds``); never a feed the
    server withdrew. ``HashsyncClient.lookup`` first checks they can vouch for an answer."""

    # Withdrawn feeds a lookup of all feeds left out (set by HashsyncClient.lookup).
    skipped_withdrawn: tuple[str, ...] = ()

    def __init__(
        self,
        store: Store,
        feeds: Iterable[str] | None = None,
        *,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
        pdq_min_quality: int = PDQ_MIN_QUALITY,
    ) -> None:
        if not 0 <= pdq_distance <= 256:
            raise ValueError("the PDQ distance is 0..256 bits")
        self._store = store
        self._feeds = store.feed_ids(feeds)
        self._frameworks = feed_frameworks(store.feeds())
        self._pdq_distance = pdq_distance
        self._pdq_min_quality = pdq_min_quality
        self._pdq: dict[int, FeedIndex] | None = None
        # Feeds whose persisted PDQ index was missing or stale, so rebuilt from SQLite.
        self.pdq_rebuilt: list[str] = []

    def pdq_indexes(self) -> dict[int, FeedIndex]:
        """feed id → its PDQ index (opened once per lookup; see the module's doc)."""
        if self._pdq is None:
            indexes: dict[int, FeedIndex] = {}
            for feed_id, name in self._feeds.items():
                state = self._store.feed(name)
                if state is None:  # deleted since: nothing to match against
                    continue
                index, persisted = open_feed_index(
                    self._store, name, (state.version, state.state_digest)
                )
                if not persisted:
                    self.pdq_rebuilt.append(name)
                indexes[feed_id] = index
            self._pdq = indexes
        return self._pdq

    def _exact(self, algorithm: str, value: bytes) -> list[Match]:
        rows = self._store.find_exact(list(self._feeds), ALGORITHM_IDS[algorithm], [value])
        canonical = ALGORITHMS[algorithm].canonical
        return [
            self._match(self._feeds[feed], algorithm, canonical(found), 0, grading)
            for feed, found, grading in rows
        ]

    def _match(self, feed: str, algorithm: str, value: str, distance: int, code: int) -> Match:
        framework = self._frameworks.get(feed) or FeedFramework.of_manifest(None)
        grading, klass = framework.read(int(code))
        return Match(
            feed, algorithm, value, distance, grading, framework.slug, framework.version, klass
        )

    def _near_pdq(self, values: Sequence[bytes]) -> list[list[Match]]:
        """The matches of each PDQ value, nearest first (ties: feed by name, then value)."""
        found: list[list[tuple[int, int, bytes, Match]]] = [[] for _ in values]
        if not values:
            return []
        words = query_words(values)
        for position, (feed_id, index) in enumerate(self.pdq_indexes().items()):
            queries, rows, distances = index.index.within_many(words, self._pdq_distance)
            name = self._feeds[feed_id]
            for q, row, distance in zip(
                queries.tolist(), rows.tolist(), distances.tolist(), strict=True
            ):
                value = index.value(row)
                match = self._match(name, "pdq", value.hex(), distance, int(index.grading(row)))
                found[q].append((distance, position, value, match))
        return [[m for *_, m in sorted(each, key=lambda t: t[:3])] for each in found]

    def _search(self, searches: Sequence[tuple[Query, Sequence[tuple[str, bytes]]]]) -> None:
        pdq_values = [v for _, readings in searches for a, v in readings if a == "pdq"]
        near = iter(self._near_pdq(pdq_values))
        for query, readings in searches:
            for algorithm, value in readings:
                query.hashes[algorithm] = ALGORITHMS[algorithm].canonical(value)
                if algorithm == "pdq":
                    query.matches.extend(next(near))
                else:
                    query.matches.extend(self._exact(algorithm, value))

    def values(self, texts: Iterable[str]) -> list[Query]:
        """Each text read as every algorithm it can be (64 hex digits are both SHA-256 and
        PDQ), and looked up as each."""
        searches = []
        for text in texts:
            query = Query(label=text.strip(), kind="value")
            readings = [(algorithm.name, value) for algorithm, value in parse_any(text)]
            if not readings:
                query.error = "not a hash value of any known algorithm"
            searches.append((query, readings))
        self._search(searches)
        return [query for query, _ in searches]

    def files(self, paths: Iterable[Path]) -> list[Query]:
        with_pdq = pdq_available()
        searches: list[tuple[Query, Sequence[tuple[str, bytes]]]] = []
        for path in paths:
            query = Query(label=str(path), kind="file")
            try:
                readings = list(file_digests(path).items())
            except OSError as exc:
                query.error = f"cannot read: {exc.strerror}"
                searches.append((query, ()))
                continue
            if with_pdq:
                computed = pdq_of_image(path)
                if computed is not None:
                    value, quality = computed
                    query.pdq_quality = quality
                    if quality >= self._pdq_min_quality:
                        readings.append(("pdq", value))
                    else:
                        query.hashes["pdq"] = value.hex()
                        query.notes.append(
                            f"PDQ quality {quality} is below {self._pdq_min_quality}: "
                            "not matched (too little detail to be reliable)"
                        )
            else:
                query.notes.append("PDQ not computed: install hashsync-client[pdq]")
            searches.append((query, readings))
        self._search(searches)
        return [query for query, _ in searches]
