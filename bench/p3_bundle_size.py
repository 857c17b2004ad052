#!/usr/bin/env python
"""P3: snapshot bytes per entry against the information-theoretic bound. Target: ratio ≤ 1.10.

Writes a snapshot of N synthetic entries with ``hashsync_client.format.write_bundle`` and compares
its size with the bound for that many random hashes of that length plus their grading:

    bound bits per entry = log2 C(2^(8L), N) / N + H(grading)

where C is the binomial coefficient (a set of N distinct L-byte values, order free) and H the
empirical entropy of the grading codes actually written. Two runs: N random MD5 values, and N
values spread over all five algorithms (the bound then sums log2 C over each algorithm).

Data is synthetic: uniformly random bytes from a seeded numpy generator, and gradings drawn
from a made-up, skewed and correlated distribution (``grading_codes``). Nothing is a real hash.

    .venv/bin/python bench/p3_bundle_size.py                  # 1,000,000 entries
    .venv/bin/python bench/p3_bundle_size.py --entries 100000 --grading-layouts --zstd-levels

Prints (progress and detail on stderr):

    P3 snapshot_<N>_bytes_per_entry <v> B
    P3 snapshot_<N>_bound_bytes_per_entry <v> B
    P3 snapshot_<N>_ratio_to_bound <v> x
    P3 snapshot_<N>_mixed_… (the same three for the five-algorithm run)
    P3 snapshot_<N>_gzip_csv_ratio_to_bound <v> x   (hex,grading CSV + gzip -6, for reference)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hashsync_client.format import (  # noqa: E402 - after the path is set
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    GRADING_COUNT,
    GRADING_FIELDS,
    ZSTD_LEVEL,
    Op,
    Record,
    write_bundle,
)

BUCKETS = 256  # keys are made one leading byte at a time, so memory stays bounded


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def grading_codes(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """Made-up gradings: skewed, and correlated the way the real fields are (industry class
    follows the age group, the Interpol baseline flag leans on category A)."""
    fields = GRADING_FIELDS
    category = rng.choice(3, n, p=[0.20, 0.25, 0.55])
    age = rng.choice(7, n, p=[0.03, 0.10, 0.25, 0.35, 0.12, 0.05, 0.10])
    baseline = np.where(
        category == 0,
        rng.choice(3, n, p=[0.4, 0.5, 0.1]),
        rng.choice(3, n, p=[0.7, 0.2, 0.1]),
    )
    prepubescent = age <= 2
    unknown_age = age == 6
    # industry class: 0 "", 1 A1, 2 A2, 3 B1, 4 B2
    industry = np.where(
        prepubescent,
        rng.choice(5, n, p=[0.5, 0.3, 0.2, 0.0, 0.0]),
        np.where(
            unknown_age,
            rng.choice(5, n, p=[0.9, 0.0, 0.05, 0.0, 0.05]),
            rng.choice(5, n, p=[0.5, 0.0, 0.0, 0.3, 0.2]),
        ),
    )
    video = rng.choice(2, n, p=[0.93, 0.07])
    radices = [len(values) for values in fields.values()]
    code = np.zeros(n, dtype=np.int64)
    for digit, radix in zip((category, age, baseline, industry, video), radices, strict=True):
        code = code * radix + digit
    return code


def synthetic_snapshot(
    n: int, algorithms: Sequence[str], seed: int, grading_counts: npt.NDArray[np.int64]
) -> Iterator[Record]:
    """``n`` sorted records of uniformly random keys, spread evenly over ``algorithms``,
    made in bounded memory; adds each grading written to ``grading_counts``."""
    rng = np.random.default_rng(seed)
    per_algorithm = [
        n // len(algorithms) + (i < n % len(algorithms)) for i in range(len(algorithms))
    ]
    ordered = sorted(zip(algorithms, per_algorithm, strict=True), key=lambda a: ALGORITHM_IDS[a[0]])
    for algorithm, count in ordered:
        length = ALGORITHM_LENGTHS[algorithm]
        width = -(-length // 8) * 8
        # Multinomial bucket sizes + uniform keys inside each bucket = n uniform keys, sorted.
        sizes = rng.multinomial(count, [1 / BUCKETS] * BUCKETS)
        for bucket, size in enumerate(sizes.tolist()):
            if not size:
                continue
            keys = np.zeros((size, width), dtype=np.uint8)
            keys[:, :length] = rng.integers(0, 256, size=(size, length), dtype=np.uint8)
            keys[:, 0] = bucket
            words = keys.view(">u8")
            keys = keys[np.lexsort(words.T[::-1])][:, :length]
            flat = keys.tobytes()
            values = [flat[i : i + length] for i in range(0, size * length, length)]
            unique = len(set(values))
            if unique != size:  # a collision of random keys: astronomically unlikely
                raise RuntimeError("duplicate synthetic key")
            codes = grading_codes(rng, size)
            grading_counts += np.bincount(codes, minlength=GRADING_COUNT)
            yield from map(
                Record,
                itertools.repeat(algorithm),
                values,
                itertools.repeat(Op.UPSERT),
                codes.tolist(),
            )


def log2_binomial(m_bits: int, n: int) -> float:
    """log2 C(2**m_bits, n) for n ≪ 2**m_bits.

    lgamma(2**128) cannot be subtracted from lgamma(2**128 - n) in floating point, so use
    C(M, n) = M^n / n! * prod(1 - i/M): the product's log is -n(n-1)/(2M) to first order,
    which is below 1e-20 bits here but kept for form's sake.
    """
    correction = -math.ldexp(n * (n - 1), -m_bits - 1) / math.log(2)
    return n * m_bits - math.lgamma(n + 1) / math.log(2) + correction


def entropy_bits(counts: npt.NDArray[np.int64]) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def bound_bytes_per_entry(per_algorithm: dict[str, int], counts: npt.NDArray[np.int64]) -> float:
    n = sum(per_algorithm.values())
    key_bits = sum(log2_binomial(8 * ALGORITHM_LENGTHS[a], k) for a, k in per_algorithm.items())
    return (key_bits / n + entropy_bits(counts)) / 8


def run(n: int, algorithms: Sequence[str], seed: int, workdir: Path) -> tuple[Path, float, dict]:
    counts = np.zeros(GRADING_COUNT, dtype=np.int64)
    path = workdir / f"snapshot-{'-'.join(algorithms)}.bin"
    started = time.perf_counter()
    with path.open("wb") as out:
        info = write_bundle(
            out,
            kind="snapshot",
            feed="synthetic-bench",
            from_version=0,
            to_version=1,
            records=synthetic_snapshot(n, algorithms, seed, counts),
            record_count=n,
        )
    per_algorithm = {
        a: n // len(algorithms) + (i < n % len(algorithms)) for i, a in enumerate(algorithms)
    }
    bound = bound_bytes_per_entry(per_algorithm, counts)
    log(
        f"{'+'.join(algorithms)}: {n} entries, {info.size} bytes in "
        f"{time.perf_counter() - started:.1f} s; grading entropy {entropy_bits(counts):.3f} bits, "
        f"{int((counts > 0).sum())} distinct codes"
    )
    return path, bound, {"counts": counts, "per_algorithm": per_algorithm}


def gzip_csv_bytes(n: int, seed: int) -> int:
    """Size of the same md5 snapshot as ``hex,grading`` CSV lines through gzip -6."""
    sink = _CountingSink()
    counts = np.zeros(GRADING_COUNT, dtype=np.int64)
    with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) as zipped:
        batch: list[str] = []
        for record in synthetic_snapshot(n, ("md5",), seed, counts):
            batch.append(f"{record.value.hex()},{record.grading}\n")
            if len(batch) == 65536:
                zipped.write("".join(batch).encode())
                batch.clear()
        zipped.write("".join(batch).encode())
    return sink.size


class _CountingSink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def grading_layouts(path: Path) -> dict[str, int]:
    """Compressed body size with the grading column laid out other ways (same other columns).

    "palette" is format 1 (per-block palette by frequency + u8 index + u16 escapes); "u16le" is
    the code as a little-endian u16 per record; "split" is its high bytes then its low bytes.
    """
    data = path.read_bytes()
    start = 8 + int.from_bytes(data[4:8], "little")
    body = zstandard.ZstdDecompressor().decompressobj().decompress(data[start:])
    variants: dict[str, list[bytes]] = {"palette": [], "u16le": [], "split": []}
    at = 0
    while body[at] != 0:
        length = ALGORITHM_LENGTHS[ALGORITHM_NAMES[body[at]]]
        count = int.from_bytes(body[at + 1 : at + 5], "little")
        prefix_bytes = int.from_bytes(body[at + 5 : at + 9], "little")
        palette_size = body[at + 9]
        head = body[at : at + 10]
        at += 10
        palette = np.frombuffer(body[at : at + 2 * palette_size], "<u2").astype(np.int64)
        at += 2 * palette_size
        ops = body[at : at + count]
        index = np.frombuffer(body[at + count : at + 2 * count], np.uint8)
        at += 2 * count
        escaped = index == 255  # only ever set when the palette is full
        escapes = np.frombuffer(body[at : at + 2 * int(escaped.sum())], "<u2")
        at += 2 * int(escaped.sum())
        codes = palette[np.where(escaped, 0, index)]
        codes[escaped] = escapes
        rest = body[at : at + prefix_bytes + count * (length - 4)]
        at += prefix_bytes + count * (length - 4)
        variants["palette"].append(
            head
            + palette.astype("<u2").tobytes()
            + ops
            + index.tobytes()
            + escapes.tobytes()
            + rest
        )
        variants["u16le"].append(head[:9] + ops + codes.astype("<u2").tobytes() + rest)
        variants["split"].append(
            head[:9]
            + ops
            + (codes >> 8).astype(np.uint8).tobytes()
            + (codes & 255).astype(np.uint8).tobytes()
            + rest
        )
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
    return {
        name: len(compressor.compress(b"".join(blocks) + b"\x00"))
        for name, blocks in variants.items()
    }


def zstd_levels(path: Path) -> dict[int, tuple[int, float]]:
    """(compressed body size, seconds) of the same decompressed body at other zstd levels."""
    data = path.read_bytes()
    start = 8 + int.from_bytes(data[4:8], "little")
    body = zstandard.ZstdDecompressor().decompressobj().decompress(data[start:])
    results = {}
    for level in (1, 3, 9, 19):
        started = time.perf_counter()
        size = len(zstandard.ZstdCompressor(level=level, write_checksum=True).compress(body))
        results[level] = (size + start, time.perf_counter() - started)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries (1,000,000)")
    parser.add_argument(
        "--grading-layouts",
        action="store_true",
        help="also compare the format's grading palette with plain u16 and split-byte columns",
    )
    parser.add_argument(
        "--zstd-levels", action="store_true", help="also compress the body at levels 1, 3, 9, 19"
    )
    parser.add_argument("--no-gzip", action="store_true", help="skip the gzip'd CSV reference")
    args = parser.parse_args()
    n = args.entries
    if n < 1:
        parser.error("--entries must be at least 1")

    with tempfile.TemporaryDirectory(prefix="hashsync-p3-") as tmp:
        workdir = Path(tmp)
        path, bound, _ = run(n, ("md5",), seed=3, workdir=workdir)
        per_entry = path.stat().st_size / n
        print(f"P3 snapshot_{n}_bytes_per_entry {per_entry:.3f} B")
        print(f"P3 snapshot_{n}_bound_bytes_per_entry {bound:.3f} B")
        print(f"P3 snapshot_{n}_ratio_to_bound {per_entry / bound:.4f} x", flush=True)
        if args.grading_layouts:
            for name, size in grading_layouts(path).items():
                header = 8 + int.from_bytes(path.read_bytes()[4:8], "little")
                log(
                    f"grading layout {name}: {(size + header) / n:.3f} B/entry, "
                    f"ratio {(size + header) / n / bound:.4f}"
                )
        if args.zstd_levels:
            for level, (size, seconds) in zstd_levels(path).items():
                log(
                    f"zstd level {level}: {size / n:.3f} B/entry, ratio {size / n / bound:.4f}, "
                    f"{seconds:.2f} s"
                )
        path.unlink()

        mixed, mixed_bound, _ = run(n, tuple(ALGORITHM_IDS), seed=4, workdir=workdir)
        mixed_per_entry = mixed.stat().st_size / n
        print(f"P3 snapshot_{n}_mixed_bytes_per_entry {mixed_per_entry:.3f} B")
        print(f"P3 snapshot_{n}_mixed_bound_bytes_per_entry {mixed_bound:.3f} B")
        print(f"P3 snapshot_{n}_mixed_ratio_to_bound {mixed_per_entry / mixed_bound:.4f} x")
        log(f"mixed snapshot sha256 {hashlib.sha256(mixed.read_bytes()).hexdigest()[:16]}…")

        if not args.no_gzip:
            gz = gzip_csv_bytes(n, seed=3) / n
            log(f"gzip -6 of hex,grading CSV: {gz:.3f} B/entry")
            print(f"P3 snapshot_{n}_gzip_csv_ratio_to_bound {gz / bound:.4f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
