"""Collecting witness cosignatures (C2SP tlog-witness) for the newest checkpoint.

For each witness of HASHSYNC_TLOG_WITNESSES: send ``add-checkpoint`` with the size it cosigned
last and the consistency proof from there; a 409 tells us its real size (we retry once from
it); a 200 carries its cosignature line, which we verify against its key before storing.
Slow I/O: run by a Celery task after commit, never inside a publishing transaction.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from hashsync_client.tlog import (
    SIG_COSIGNATURE_V1,
    NoteError,
    Verifier,
    parse_note,
    parse_signature_lines,
    parse_verifier_key,
    verify_cosignature,
)
from hashsync_client.witness import add_checkpoint_body
from transparency import selectors
from transparency.models import Checkpoint, Cosignature, Witness

logger = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True)
class ConfiguredWitness:
    url: str
    verifier: Verifier
    key_text: str


def configured_witnesses() -> list[ConfiguredWitness]:
    """HASHSYNC_TLOG_WITNESSES parsed; a malformed entry is an error (a check at start-up)."""
    found = []
    for item in settings.HASHSYNC_TLOG_WITNESSES:
        parts = item.split()
        if len(parts) != 2 or not parts[0].startswith(("https://", "http://")):
            raise ValueError(f"HASHSYNC_TLOG_WITNESSES: {item!r} is not '<URL> <verifier key>'")
        verifier = parse_verifier_key(parts[1])
        if verifier.sig_type != SIG_COSIGNATURE_V1:
            raise ValueError(f"HASHSYNC_TLOG_WITNESSES: {verifier.name} is not a witness key")
        found.append(ConfiguredWitness(parts[0], verifier, parts[1]))
    return found


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - an operator-configured witness URL
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    timeout = settings.HASHSYNC_TLOG_WITNESS_TIMEOUT_SECONDS
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(MAX_ANSWER_BYTES)


def _fail(witness: Witness, message: str) -> None:
    logger.warning("witness %s: %s", witness.name, message)
    witness.last_error = message[:500]
    witness.last_error_at = timezone.now()
    witness.save(update_fields=["last_error", "last_error_at"])


def cosign_one(configured: ConfiguredWitness, checkpoint: Checkpoint) -> bool:
    """Ask one witness to cosign ``checkpoint``; True once a valid cosignature is stored."""
    witness, _ = Witness.objects.update_or_create(
        name=configured.verifier.name,
        defaults={"url": configured.url, "verifier_key": configured.key_text},
    )
    if Cosignature.objects.filter(checkpoint=checkpoint, witness=witness).exists():
        return True  # already done
    note = parse_note(checkpoint.note)
    for _ in range(2):  # a 409 tells us the witness's size: one retry from there
        old = witness.size
        if old > checkpoint.size:
            _fail(witness, f"holds size {old}, larger than the log's {checkpoint.size}")
            return False
        proof: list[bytes] = []
        if 0 < old < checkpoint.size:
            _, consistency = selectors.proofs(
                inclusions=[], size=checkpoint.size, consistency_from=old
            )
            proof = consistency or []
        try:
            status, answer = _post(configured.url, add_checkpoint_body(old, proof, checkpoint.note))
        except OSError as exc:
            _fail(witness, f"unreachable: {exc}")
            return False
        if status == 409 and answer.strip().isdigit():
            witness.size = int(answer.strip())
            witness.save(update_fields=["size"])
            continue
        if status != 200:
            _fail(witness, f"answered {status}: {answer[:200].decode('utf-8', 'replace')}")
            return False
        try:
            lines = parse_signature_lines(answer.decode("utf-8"))
        except (NoteError, UnicodeDecodeError):
            _fail(witness, "answered 200 without a signature line")
            return False
        cosigned = note.with_signatures(lines)
        timestamp = verify_cosignature(cosigned, configured.verifier)
        if timestamp is None:
            _fail(witness, "its cosignature does not verify with its configured key")
            return False
        line = next(s for s in lines if s.name == witness.name).line()
        with transaction.atomic():
            Cosignature.objects.create(
                checkpoint=checkpoint, witness=witness, line=line, timestamp=timestamp
            )
            witness.size = checkpoint.size
            witness.last_cosigned_at = timezone.now()
            witness.last_error = ""
            witness.save(update_fields=["size", "last_cosigned_at", "last_error"])
            audit_record(
                actor=None,
                action="tlog.cosigned",
                object_type="checkpoint",
                object_id=checkpoint.size,
                after={"witness": witness.name, "timestamp": timestamp},
            )
        return True
    _fail(witness, "kept answering 409")
    return False


def cosign_latest() -> int:
    """Ask every configured witness to cosign the newest checkpoint; how many did."""
    checkpoint = selectors.checkpoint_latest()
    if checkpoint is None:
        return 0
    return sum(cosign_one(w, checkpoint) for w in configured_witnesses())
