"""The auditors' view of the transparency log (docs/transparency.md "For auditors"): its size,
the latest signed checkpoint, the witnesses and when each last cosigned, and an inclusion check
of any manifest, whose proof is computed here and verified with the client's own code
(``hashsync_client.tlog.verify_inclusion``) against the signed checkpoint's root.

The manifest is asked for in a POST form (feed and version, or its SHA-256), so nothing about it
is in the page's address."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from distribution import selectors as distribution_selectors
from hashsync_client.tlog import (
    NoteError,
    ProofError,
    leaf_bytes,
    leaf_hash,
    parse_note,
    verify_inclusion,
)
from transparency import selectors
from transparency.models import Checkpoint, LogLeaf
from transparency.witnesses import configured_witnesses
from web.forms.transparency import InclusionForm
from web.pages import staff_page

VIEW = "transparency.view_log"


def _checkpoint(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    note = parse_note(checkpoint.note)
    origin = note.checkpoint.origin
    signer = next((s for s in note.signatures if s.name == origin), None)
    return {
        "size": checkpoint.size,
        "origin": origin,
        "root_hex": bytes(checkpoint.root_hash).hex(),
        "text": selectors.checkpoint_served(checkpoint),
        "signer": signer.name if signer else None,
        "key_id": signer.key_hash.hex() if signer else None,
        "created_at": checkpoint.created_at,
        "cosignatures": checkpoint.cosignatures.count(),
    }


def _witnesses(size: int) -> list[dict[str, Any]]:
    """Every witness the server is configured to ask, with what the log knows of it; one the
    server has not contacted yet has never cosigned."""
    known = {w.name: w for w in selectors.witnesses_list()}
    rows = []
    try:
        configured = configured_witnesses()
    except ValueError:
        configured = []  # a malformed setting is refused at start-up; show what is stored
    names = [c.verifier.name for c in configured] or list(known)
    urls = {c.verifier.name: c.url for c in configured}
    for name in names:
        w = known.get(name)
        rows.append(
            {
                "name": name,
                "url": urls.get(name) or (w.url if w else ""),
                "size": w.size if w else 0,
                "behind": size - w.size if w and w.size else 0,
                "last_cosigned_at": w.last_cosigned_at if w else None,
                "last_error": w.last_error if w else "",
                "last_error_at": w.last_error_at if w else None,
            }
        )
    return rows


def _verify(leaf: LogLeaf, checkpoint: Checkpoint) -> dict[str, Any]:
    """The inclusion proof of ``leaf`` in the tree the signed checkpoint names, checked as a
    member's client checks it."""
    signed = parse_note(checkpoint.note).checkpoint
    leaf_text = leaf_bytes(
        feed=leaf.feed_name,
        version=leaf.version,
        manifest_sha256=leaf.manifest_sha256,
        previous_sha256=leaf.previous_sha256,
    )
    result: dict[str, Any] = {
        "index": leaf.index,
        "feed": leaf.feed_name,
        "version": leaf.version,
        "manifest_sha256": leaf.manifest_sha256,
        "leaf_hash": leaf_hash(leaf_text).hex(),
        "size": signed.size,
        "proof": [],
    }
    try:
        inclusion, _ = selectors.proofs(inclusions=[leaf.index], size=signed.size)
        proof = inclusion[leaf.index]
        result["proof"] = [h.hex() for h in proof]
        verify_inclusion(leaf_hash(leaf_text), leaf.index, signed.size, proof, signed.root_hash)
    except ProofError as error:
        result.update(included=False, reason=str(error))
    else:
        result.update(included=True, reason="")
    return result


def _check(form: InclusionForm, checkpoint: Checkpoint | None) -> list[dict[str, Any]] | None:
    """The answers for the manifest(s) the form names (a feed's version may have been re-signed,
    so it can be several); a manifest without a leaf is "not included"."""
    data = form.cleaned_data
    if data["sha256"]:
        wanted = [data["sha256"]]
    else:
        feed = distribution_selectors.feed_get(name=data["feed"])
        if feed is None:
            form.add_error("feed", "There is no such feed.")
            return None
        wanted = list(
            distribution_selectors.manifests_newest_first(feed.pk)
            .filter(version=data["version"])
            .order_by("id")
            .values_list("sha256", flat=True)
        )
        if not wanted:
            form.add_error("version", f"Feed {feed.name} has no signed version {data['version']}.")
            return None
    answers = []
    for sha in wanted:
        leaf = selectors.leaf_of_manifest(sha)
        if leaf is None or checkpoint is None:
            answers.append(
                {
                    "manifest_sha256": sha,
                    "index": None,
                    "included": False,
                    "reason": "No leaf of the log commits to this manifest.",
                    "proof": [],
                }
            )
        else:
            answers.append(_verify(leaf, checkpoint))
    return answers


@staff_page(VIEW)
@require_http_methods(["GET", "HEAD", "POST"])
def log_page(request: HttpRequest) -> HttpResponse:
    latest = selectors.checkpoint_latest()
    feeds = list(distribution_selectors.feed_list().order_by("name").values_list("name", flat=True))
    answers = None
    status = 200
    if request.method == "POST":
        form = InclusionForm(request.POST, feeds=feeds)
        if form.is_valid():
            answers = _check(form, latest)
        if not form.is_valid():
            status = 400
    else:
        form = InclusionForm(feeds=feeds)
    try:
        checkpoint = _checkpoint(latest)
    except NoteError:  # a stored checkpoint the server cannot read: say so, never a 500
        checkpoint = {"unreadable": True, "size": latest.size if latest else 0}
    context = {
        "size": latest.size if latest else 0,
        "checkpoint": checkpoint,
        "witnesses": _witnesses(latest.size if latest else 0),
        "form": form,
        "answers": answers,
    }
    return render(request, "web/transparency/log.html", context, status=status)
