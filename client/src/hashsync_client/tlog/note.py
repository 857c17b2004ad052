"""C2SP signed notes, checkpoints (tlog-checkpoint) and cosignatures (tlog-cosignature/v1).

A checkpoint is the note body ``<origin>\\n<size>\\n<base64 root hash>\\n``, then an empty line,
then one signature line per signer: ``— <key name> <base64(key hash ‖ signature)>``. The key
hash is the first four bytes of SHA-256(name ‖ 0x0A ‖ type ‖ public key): type 0x01 for a plain
Ed25519 note signature (the log's), 0x04 for a witness's ``cosignature/v1``, whose signature
bytes are key hash ‖ uint64 big-endian timestamp ‖ Ed25519 signature over
``cosignature/v1\\ntime <timestamp>\\n<checkpoint body>``.

Nothing here trusts what it parses: ``parse_note`` only splits; ``verify_*`` check signatures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.signing.keys import SigningKey
from hashsync_client.tlog.tree import HASH_SIZE

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
DASH = "\u2014"  # "—", the em dash every signature line starts with
MAX_NOTE_BYTES = 64 * 1024
_NAME = re.compile(r"[^\s+\u2014]{1,255}")


class NoteError(ValueError):
    """Malformed or wrongly signed note; ``code`` is stable."""

    def __init__(self, message: str, *, code: str = "checkpoint_invalid") -> None:
        super().__init__(message)
        self.code = code


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, public_key: Ed25519PublicKey, sig_type: int = SIG_ED25519) -> bytes:
    raw = _raw(public_key)
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey, sig_type: int = SIG_ED25519) -> str:
    """The note verifier-key string ``<name>+<hex key hash>+<base64(type ‖ key)>``."""
    encoded = base64.b64encode(bytes([sig_type]) + _raw(public_key)).decode()
    return f"{name}+{key_hash(name, public_key, sig_type).hex()}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: Ed25519PublicKey
    sig_type: int

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public_key, self.sig_type)


def parse_verifier_key(text: str) -> Verifier:
    """Inverse of ``verifier_key``; ``NoteError`` (code ``verifier_key_invalid``) otherwise."""
    parts = text.strip().split("+", 2)  # base64 may hold "+"; names and hex do not
    bad = NoteError(
        "a verifier key is <name>+<8 hex digits>+<base64 of type and key>",
        code="verifier_key_invalid",
    )
    if len(parts) != 3 or not _NAME.fullmatch(parts[0]):
        raise bad
    try:
        blob = base64.b64decode(parts[2], validate=True)
        hash_ = bytes.fromhex(parts[1])
    except (binascii.Error, ValueError):
        raise bad from None
    if len(blob) != 33 or blob[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
        raise bad
    verifier = Verifier(parts[0], Ed25519PublicKey.from_public_bytes(blob[1:]), blob[0])
    if verifier.hash != hash_:
        raise bad
    return verifier


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    data: bytes  # after the key hash

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_hash + self.data).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


@dataclass(frozen=True)
class SignedNote:
    checkpoint: Checkpoint
    signatures: tuple[Signature, ...]

    def text(self) -> str:
        return self.checkpoint.body() + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: Iterable[Signature]) -> SignedNote:
        known = {(s.name, s.key_hash) for s in self.signatures}
        added = [s for s in extra if (s.name, s.key_hash) not in known]
        return SignedNote(self.checkpoint, (*self.signatures, *added))


def parse_signature_lines(text: str) -> list[Signature]:
    """Signature lines (``— name base64``), one a line, each ending in a newline."""
    if not text.endswith("\n"):
        raise NoteError("signature lines end with a newline")
    signatures = []
    for line in text[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or not _NAME.fullmatch(parts[1]):
            raise NoteError("a signature line is '— <name> <base64>'")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("a signature is standard base64") from None
        if len(blob) < 5:
            raise NoteError("a signature is a key hash and at least one byte")
        signatures.append(Signature(parts[1], blob[:4], blob[4:]))
    return signatures


def parse_note(text: str | bytes) -> SignedNote:
    """Split a checkpoint note into body and signatures; checks the shape, not the signatures."""
    if isinstance(text, bytes):
        if len(text) > MAX_NOTE_BYTES:
            raise NoteError("the checkpoint is too large")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a checkpoint is UTF-8 text") from None
    if len(text) > MAX_NOTE_BYTES or "\r" in text:
        raise NoteError("a checkpoint is at most 64 KiB of text with \\n line ends")
    body, sep, sigs = text.partition("\n\n")
    if not sep or not sigs:
        raise NoteError("a signed note is a body, an empty line and signature lines")
    lines = body.split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("a checkpoint body is origin, size and root hash, one a line")
    origin, size_text, root_text, *extensions = lines
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        raise NoteError("a checkpoint's size is a decimal number without leading zeros")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("a checkpoint's root hash is standard base64") from None
    if len(root) != HASH_SIZE:
        raise NoteError("a checkpoint's root hash is 32 bytes")
    checkpoint = Checkpoint(origin, int(size_text), root, tuple(extensions))
    return SignedNote(checkpoint, tuple(parse_signature_lines(sigs)))


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey, *, name: str | None = None) -> str:
    """The checkpoint as a note signed by ``key`` under ``name`` (the origin by default)."""
    name = name or checkpoint.origin
    signature = key.sign(checkpoint.body().encode())
    sig = Signature(name, key_hash(name, key.public_key), signature)
    return SignedNote(checkpoint, (sig,)).text()


def _verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_log_signature(
    note: SignedNote, keys: Sequence[Ed25519PublicKey], *, origin: str | None = None
) -> Ed25519PublicKey:
    """The log key (one of ``keys``, named by the checkpoint's origin) that signed ``note``.
    ``NoteError`` (``checkpoint_origin`` / ``checkpoint_unsigned``) otherwise."""
    checkpoint = note.checkpoint
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(
            f"the checkpoint is of log {checkpoint.origin!r}, not {origin!r}",
            code="checkpoint_origin",
        )
    message = checkpoint.body().encode()
    by_hash = {key_hash(checkpoint.origin, key): key for key in keys}
    for sig in note.signatures:
        key = by_hash.get(sig.key_hash)
        if sig.name == checkpoint.origin and key is not None and _verify(key, sig.data, message):
            return key
    raise NoteError(
        "the checkpoint carries no valid signature by a signing key of the keyring",
        code="checkpoint_unsigned",
    )


def cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint.body().encode()


def cosign(checkpoint: Checkpoint, key: SigningKey, *, name: str, timestamp: int) -> Signature:
    """A witness's cosignature/v1 line over ``checkpoint``."""
    signature = key.sign(cosigned_message(checkpoint, timestamp))
    kh = key_hash(name, key.public_key, SIG_COSIGNATURE_V1)
    return Signature(name, kh, struct.pack(">Q", timestamp) + signature)


def verify_cosignature(note: SignedNote, witness: Verifier) -> int | None:
    """The timestamp of ``witness``'s valid cosignature on ``note``, or None if it has none."""
    if witness.sig_type != SIG_COSIGNATURE_V1:
        return None
    for sig in note.signatures:
        if sig.name != witness.name or sig.key_hash != witness.hash or len(sig.data) != 72:
            continue
        (timestamp,) = struct.unpack(">Q", sig.data[:8])
        message = cosigned_message(note.checkpoint, timestamp)
        if _verify(witness.public_key, sig.data[8:], message):
            return int(timestamp)
    return None


def witness_quorum(note: SignedNote, witnesses: Sequence[Verifier], threshold: int) -> None:
    """``NoteError`` (``witness_quorum``) unless ``threshold`` of ``witnesses`` cosigned."""
    signed = [w.name for w in witnesses if verify_cosignature(note, w) is not None]
    if len(signed) < threshold:
        raise NoteError(
            f"the checkpoint carries {len(signed)} of the {threshold} witness cosignatures "
            f"required ({', '.join(signed) or 'none'})",
            code="witness_quorum",
        )
