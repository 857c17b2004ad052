"""A transparency-log witness (C2SP tlog-witness), run by ``hashsync-client witness``.

A witness keeps, per log, the newest checkpoint it cosigned. The log (the hashsync server)
sends it ``POST /add-checkpoint`` with the size it believes the witness holds, a consistency
proof from that size, and the new checkpoint::

    old <size>
    <base64 consistency proof hash, one a line>
    <empty line>
    <signed checkpoint note>

The witness checks the log's signature, that ``old`` is the size it holds (409 with its size,
``text/x.tlog.size``, when not: the log retries with the right proof), and that the proof shows
the new tree extends the one it holds (422 when not: a fork, which it never cosigns). Then it
stores the checkpoint *before* answering with its cosignature line (tlog-cosignature
``cosignature/v1``). Status codes: 400 malformed, 403 unknown key or bad signature, 404 unknown
log, 409 wrong old size (or a same-size checkpoint with a different root), 422 bad proof.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hashsync_client.signing.keys import SigningKey
from hashsync_client.tlog import (
    SIG_ED25519,
    NoteError,
    ProofError,
    Verifier,
    cosign,
    parse_note,
    verify_consistency,
    verify_log_signature,
)

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_PROOF_LINES = 128


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class WitnessState:
    """The newest cosigned checkpoint per log origin, in a JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.logs: dict[str, dict[str, Any]] = {}
        if path.exists():
            self.logs = json.loads(path.read_text(encoding="utf-8"))

    def held(self, origin: str) -> tuple[int, bytes | None]:
        entry = self.logs.get(origin)
        if entry is None:
            return 0, None
        return int(entry["size"]), base64.b64decode(entry["root"])

    def save(self, origin: str, size: int, root: bytes, note: str) -> None:
        self.logs[origin] = {"size": size, "root": base64.b64encode(root).decode(), "note": note}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".witness-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.logs, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class Witness:
    def __init__(
        self,
        *,
        name: str,
        key: SigningKey,
        logs: Sequence[Verifier],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.key = key
        self.logs: dict[str, list[Verifier]] = {}
        for verifier in logs:
            if verifier.sig_type != SIG_ED25519:
                raise ValueError("a log key is an Ed25519 note verifier key (type 0x01)")
            self.logs.setdefault(verifier.name, []).append(verifier)
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            old, proof, note_text = _parse_request(body)
            note = parse_note(note_text)
        except (NoteError, ValueError) as exc:
            return Answer(400, f"malformed add-checkpoint request: {exc}\n".encode())
        checkpoint = note.checkpoint
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            return Answer(404, b"unknown log\n")
        try:
            verify_log_signature(note, [v.public_key for v in keys])
        except NoteError:
            return Answer(403, b"the checkpoint is not signed by a known key of the log\n")
        if old > checkpoint.size:
            return Answer(400, b"old size is larger than the checkpoint\n")
        with self._lock:
            held_size, held_root = self.state.held(checkpoint.origin)
            if old != held_size:
                return Answer(409, f"{held_size}\n".encode(), "text/x.tlog.size")
            if held_root is not None:
                try:
                    verify_consistency(
                        held_size, checkpoint.size, proof, held_root, checkpoint.root_hash
                    )
                except ProofError:
                    logger.error(
                        "REFUSED a checkpoint of %s at size %d that does not extend the one at "
                        "%d this witness cosigned: the log forked",
                        checkpoint.origin,
                        checkpoint.size,
                        held_size,
                    )
                    status = 409 if held_size == checkpoint.size else 422
                    return Answer(status, b"the checkpoint does not extend the one held\n")
            elif proof:
                return Answer(422, b"no proof is needed from size 0\n")
            self.state.save(checkpoint.origin, checkpoint.size, checkpoint.root_hash, note_text)
        signature = cosign(checkpoint, self.key, name=self.name, timestamp=int(self.clock()))
        return Answer(200, signature.line().encode())


def _parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    if len(body) > MAX_REQUEST_BYTES:
        raise ValueError("too large")
    text = body.decode("utf-8")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0].split(" ")
    if len(first) != 2 or first[0] != "old" or not first[1].isdigit() or len(first[1]) > 19:
        raise ValueError("the first line is 'old <size>'")
    if (first[1].startswith("0") and first[1] != "0") or len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError("bad size or too many proof lines")
    proof = []
    for line in lines[1:]:
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a proof line is base64") from None
        if len(raw) != 32:
            raise ValueError("a proof hash is 32 bytes")
        proof.append(raw)
    return int(first[1]), proof, note


def serve(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering ``POST /add-checkpoint``; the caller runs ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.rstrip("/").split("?")[0] != "/add-checkpoint":
                answer = Answer(404, b"not found\n")
            elif not 0 < length <= MAX_REQUEST_BYTES:
                answer = Answer(400, b"a body of at most 64 KiB is required\n")
            else:
                answer = witness.add_checkpoint(self.rfile.read(length))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)


def add_checkpoint_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request a log sends (the server's collector and the tests build it with this)."""
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()
