"""The transparency part of a sync plan (docs/transparency.md): the newest checkpoint, the
inclusion proof of every manifest the plan hands out, and the consistency proof from the
checkpoint the client holds. Read only for a plan that is actually built (never on the
up-to-date 304 path)."""

from __future__ import annotations

import base64
import json
from typing import Any

from distribution.plans import Plan
from hashsync.errors import Conflict, InvalidInput
from hashsync_client.signing import manifest_sha256
from hashsync_client.tlog import ProofError
from transparency import selectors as log_selectors


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _sha(envelope: bytes) -> str:
    # The envelope was produced by this server; its payload is canonical JSON.
    outer = json.loads(envelope)
    return manifest_sha256(json.loads(base64.b64decode(outer["payload"])))


def plan_log(plan: Plan, *, log_size: int) -> dict[str, Any] | None:
    """``log_size``: the size of the checkpoint the client holds (0: none). None while the log
    is empty (a server that has signed nothing since it gained the log)."""
    checkpoint = log_selectors.checkpoint_latest()
    if checkpoint is None:
        return None
    size = checkpoint.size
    if log_size > size:
        raise Conflict(
            f"You hold a checkpoint of {log_size} leaves, but this log has {size}.",
            code="log_size_unknown",
            details={"log_size": size},
        )
    envelopes = [step.manifest for step in plan.steps]
    if plan.manifest is not None:
        envelopes.append(plan.manifest)
    shas = {_sha(envelope) for envelope in envelopes}
    indexes = log_selectors.leaves_by_manifest(shas)
    try:
        inclusion, consistency = log_selectors.proofs(
            inclusions=sorted(indexes.values()),
            size=size,
            consistency_from=log_size or None,
        )
    except ProofError as exc:  # only if the log and its checkpoint disagreed
        raise InvalidInput(str(exc), code=exc.code) from None

    def entry(envelope: bytes) -> dict[str, Any]:
        index = indexes.get(_sha(envelope))
        return {
            "log_index": index,
            "inclusion": _b64(inclusion[index]) if index is not None else None,
        }

    return {
        "checkpoint": log_selectors.checkpoint_served(checkpoint),
        "size": size,
        "manifest": entry(plan.manifest) if plan.manifest is not None else None,
        "steps": [entry(step.manifest) for step in plan.steps],
        "consistency": (
            {"from_size": log_size, "hashes": _b64(consistency)}
            if consistency is not None
            else None
        ),
    }
