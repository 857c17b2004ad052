"""Constants fixed by bundle formats 1 and 2, and the algorithm ids they assign (both ways)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from hashsync_client.algorithms import ALGORITHMS

MAGIC: Final = b"HSB1"
FORMAT_VERSION: Final = 1  # what a writer writes unless it is given a framework
# Format 2 (docs/bundle-format.md §3.1): the header names a grading framework, its rule version
# and its classes, and each record's code also carries the entry's class in that framework.
FORMAT_VERSION_FRAMEWORK: Final = 2
FORMAT_VERSIONS: Final = (FORMAT_VERSION, FORMAT_VERSION_FRAMEWORK)
UNASSESSED: Final = "unassessed"  # the last class of every format-2 header
MAX_FRAMEWORK_CLASSES: Final = 17  # a framework's 16 classes at most, then "unassessed"
KINDS: Final = ("snapshot", "delta")
MAX_HEADER_BYTES: Final = 4096
BLOCK_RECORDS: Final = 65_536
MAX_VERSION: Final = 2**53 - 1  # the largest integer every JSON implementation reads exactly
ZSTD_LEVEL: Final = 3
MAX_WINDOW_BYTES: Final = 1 << 23  # readers refuse zstd frames that need a larger window
PREFIX_BYTES: Final = 4  # key bytes stored as a delta; the rest of the key is stored raw
PALETTE_MAX: Final = 255  # grading palette entries per block; index 255 means "escaped"
ESCAPE: Final = 255
END_OF_BLOCKS: Final = 0  # an "algorithm id" of 0 ends the block sequence
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"

# Fixed by the format, not derived from the registry's order: never renumber.
ALGORITHM_IDS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {"md5": 1, "sha1": 2, "sha256": 3, "pdq": 4, "photodna": 5}
)
# The inverse (id -> name), for readers of bundles and stores; import it, never rebuild it.
ALGORITHM_NAMES: Final[MappingProxyType[int, str]] = MappingProxyType(
    {number: name for name, number in ALGORITHM_IDS.items()}
)
ALGORITHM_LENGTHS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {name: ALGORITHMS[name].length for name in ALGORITHM_IDS}
)
# The format spec fixes these lengths too; a registry change must not silently change bundles.
if dict(ALGORITHM_LENGTHS) != {"md5": 16, "sha1": 20, "sha256": 32, "pdq": 32, "photodna": 144}:
    raise RuntimeError("hash registry lengths disagree with bundle format 1")
if set(ALGORITHMS) - set(ALGORITHM_IDS):
    raise RuntimeError("an algorithm in the hash registry has no bundle format id")
