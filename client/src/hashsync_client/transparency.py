"""The member client's side of the transparency log (docs/transparency.md): before anything
of a plan is applied, its checkpoint must be signed by an online key of the verified keyring
(and cosigned by the required witnesses), must extend the checkpoint we hold, and must include
every manifest the plan hands out. A log that does not extend ours is a fork: both signed
checkpoints are written to a file that proves it to anyone (``LogForked``)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.errors import BadResponse, LogForked, LogInvalid
from hashsync_client.signing import load_public_key_b64, public_key_b64
from hashsync_client.tlog import (
    HASH_SIZE,
    NoteError,
    ProofError,
    SignedNote,
    Verifier,
    leaf_hash,
    manifest_leaf,
    parse_note,
    verifier_key,
    verify_consistency,
    verify_inclusion,
    verify_log_signature,
    witness_quorum,
)

MAX_PROOF_HASHES = 128


@dataclass(frozen=True)
class Held:
    """The checkpoint this client accepted last, and the log keys that signed it."""

    note: SignedNote
    text: str
    keys: tuple[Ed25519PublicKey, ...]


@dataclass(frozen=True)
class WitnessPolicy:
    witnesses: tuple[Verifier, ...] = ()
    threshold: int = 0


def proof_hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_HASHES:
        raise BadResponse(f"{where} must be a list of at most {MAX_PROOF_HASHES} hashes")
    out = []
    for item in value:
        try:
            raw = base64.b64decode(item, validate=True) if isinstance(item, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != HASH_SIZE:
            raise BadResponse(f"{where} holds something that is not a base64 SHA-256")
        out.append(raw)
    return out


def _index(entry: Any, where: str) -> tuple[int, list[bytes]]:
    if not isinstance(entry, dict):
        raise LogInvalid(f"{where}: the log gives no inclusion proof for this manifest")
    index = entry.get("log_index")
    if type(index) is not int or index < 0:
        raise LogInvalid(f"{where}: the manifest is not in the log (omitted from the tree)")
    return index, proof_hashes(entry.get("inclusion"), f"{where}.inclusion")


def verify_plan_log(
    feed: str,
    log: Any,
    *,
    manifests: Sequence[dict[str, Any]],
    step_manifests: Sequence[dict[str, Any]],
    signing_keys: Sequence[Ed25519PublicKey],
    held: Held | None,
    witnesses: WitnessPolicy,
    fork_dir: Path,
    now: datetime,
) -> tuple[SignedNote, str]:
    """The plan's checkpoint (and its text), once every check passed. ``manifests``: the plan's
    newest manifest (zero or one); ``step_manifests``: one per step, in order."""
    where = f"{feed}: log"
    if log is None:
        raise LogInvalid(f"{where}: the server sent no checkpoint, but we hold one of its log")
    if not isinstance(log, dict) or not isinstance(log.get("checkpoint"), str):
        raise BadResponse(f"{where} is not an object with a checkpoint")
    text = log["checkpoint"]
    try:
        note = parse_note(text)
        origin = held.note.checkpoint.origin if held else None
        verify_log_signature(note, signing_keys, origin=origin)
        if witnesses.threshold:
            witness_quorum(note, witnesses.witnesses, witnesses.threshold)
    except NoteError as exc:
        raise LogInvalid(f"{where}: {exc}", code=exc.code) from None
    checkpoint = note.checkpoint
    if log.get("size") != checkpoint.size:
        raise BadResponse(f"{where}: size disagrees with the signed checkpoint")
    if held is not None:
        consistency = log.get("consistency")
        proof: list[bytes] = []
        old = held.note.checkpoint
        if old.size < checkpoint.size:
            if not isinstance(consistency, dict) or consistency.get("from_size") != old.size:
                raise LogInvalid(f"{where}: no consistency proof from the size we hold")
            proof = proof_hashes(consistency.get("hashes"), f"{where}.consistency")
        try:
            verify_consistency(
                old.size, checkpoint.size, proof, old.root_hash, checkpoint.root_hash
            )
        except ProofError:
            path = write_fork_proof(fork_dir, held.text, text, proof, now=now)
            raise LogForked(
                f"{where}: the server's log of {checkpoint.size} leaves does not extend the "
                f"{old.size} we hold: it shows members different histories. Both signed "
                f"checkpoints are kept in {path}; send it to the hotline.",
                proof_path=str(path),
            ) from None
    pairs = [(m, log.get("manifest"), "manifest") for m in manifests]
    entries = log.get("steps") if step_manifests else []
    if not isinstance(entries, list) or len(entries) != len(step_manifests):
        raise LogInvalid(f"{where}: the log does not prove each step's manifest")
    proved = enumerate(zip(step_manifests, entries, strict=True))
    pairs += [(m, e, f"steps[{i}]") for i, (m, e) in proved]
    for manifest, entry, label in pairs:
        index, inclusion = _index(entry, f"{where}.{label}")
        try:
            verify_inclusion(
                leaf_hash(manifest_leaf(manifest)),
                index,
                checkpoint.size,
                inclusion,
                checkpoint.root_hash,
            )
        except ProofError as exc:
            raise LogInvalid(
                f"{where}.{label}: the manifest of version {manifest['version']} is not in the "
                f"signed log ({exc})",
                code="inclusion_invalid",
            ) from None
    return note, text


def write_fork_proof(
    directory: Path, held: str, served: str, proof: Sequence[bytes], *, now: datetime
) -> Path:
    """Both signed checkpoints (and the proof that failed) in one JSON file, 0600."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {
        "kind": "hashsync-log-fork/v1",
        "detected_at": now.isoformat(),
        "held_checkpoint": held,
        "served_checkpoint": served,
        "consistency_proof": [base64.b64encode(h).decode() for h in proof],
        "explanation": "Two checkpoints signed by the same log that no consistency proof links: "
        "the log showed two different histories (docs/transparency.md, 'Forks').",
    }
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    fd, name = tempfile.mkstemp(prefix=f"fork-{stamp}-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=2)
        handle.write("\n")
    return Path(name)


def keys_to_text(keys: Sequence[Ed25519PublicKey]) -> str:
    return ",".join(public_key_b64(k) for k in keys)


def keys_from_text(text: str) -> tuple[Ed25519PublicKey, ...]:
    return tuple(load_public_key_b64(k) for k in text.split(",") if k)


def compare_checkpoints(
    held: Held,
    other_text: str,
    *,
    consistency: Callable[[int, int], list[bytes]],
    fork_dir: Path,
    now: datetime,
) -> str:
    """Another member's checkpoint against ours (``verify-checkpoint``): both signed by the
    log, and the smaller extends into the larger by a consistency proof fetched from the server
    (``consistency(from_size, size)``). Returns what was found; ``LogForked`` with a proof file
    when the two cannot both be true, ``LogInvalid`` when the other one is not the log's."""
    try:
        other = parse_note(other_text)
        verify_log_signature(other, held.keys, origin=held.note.checkpoint.origin)
    except NoteError as exc:
        raise LogInvalid(f"that checkpoint: {exc}", code=exc.code) from None
    ours, theirs = held.note.checkpoint, other.checkpoint
    small, large = (ours, theirs) if ours.size <= theirs.size else (theirs, ours)
    proof = consistency(small.size, large.size) if 0 < small.size < large.size else []
    try:
        verify_consistency(small.size, large.size, proof, small.root_hash, large.root_hash)
    except ProofError:
        path = write_fork_proof(fork_dir, held.text, other_text, proof, now=now)
        raise LogForked(
            f"the log signed both our checkpoint ({ours.size} leaves) and that one "
            f"({theirs.size} leaves), and neither extends the other: the log forked. Both "
            f"are kept in {path}; send it to the hotline.",
            proof_path=str(path),
        ) from None
    return (
        f"consistent: the log of {large.size} leaves extends the one of {small.size} "
        f"({'ours' if small is ours else 'theirs'} is older or the same)"
    )


def log_verifier_keys(held: Held) -> list[str]:
    """The note verifier keys of the log keys we trust, for configuring a witness."""
    return [verifier_key(held.note.checkpoint.origin, key) for key in held.keys]
