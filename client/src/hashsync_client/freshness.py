"""Whether a feed held locally can vouch for an answer: the one rule ``status`` reports and
``lookup`` enforces (with its own, longer, age).

A feed is fit when a verified sync confirmed it current within the allowed age, its manifest
has not expired, its last sync did not end in a refusal of what the server sent, its rows
still hash to the signed state digest, and the server still offers it. Anything else must be
said out loud: a lookup against it would answer "no match" for a list nobody can vouch for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from hashsync_client.errors import FeedWithdrawn, LookupRefused
from hashsync_client.store import FeedState, Store, parse_stamp


def feed_problems(state: FeedState, *, now: datetime, max_age: timedelta) -> list[str]:
    """Why ``state`` cannot vouch for an answer at ``now``; empty if it can."""
    if state.withdrawn_at is not None:
        return [f"withdrawn by the server at {state.withdrawn_at} ({state.withdrawn_reason})"]
    reasons = []
    checked = parse_stamp(state.checked_at)
    expires = parse_stamp(state.manifest_expires_at)
    if checked is None:
        reasons.append("never synced")
    elif now - checked > max_age:
        reasons.append(f"not confirmed current since {state.checked_at} (allowed: {max_age})")
    if state.version and (expires is None or expires <= now):
        reasons.append(f"manifest expired at {state.manifest_expires_at}")
    if state.verification_failed:
        reasons.append(f"the last sync refused what the server sent: {state.last_error}")
    if state.highest_manifest_version > state.version:
        reasons.append(f"version {state.highest_manifest_version} is signed but not applied")
    if state.version and not signed_digest_matches(state):
        reasons.append("the local list no longer hashes to the signed state digest (run sync)")
    return reasons


def signed_digest_matches(state: FeedState) -> bool:
    """Our list's digest is the one the manifest we hold signs (``verify`` resets the stored
    state to what the rows really hash to, so a list altered locally shows here)."""
    if state.manifest is None:
        return state.version == 0
    try:
        signed = json.loads(state.manifest).get("state_digest")
    except ValueError:
        return False
    return bool(signed == state.state_digest)


def check_lookup(
    store_path: Path,
    store: Store | None,
    feeds: Iterable[str] | None,
    *,
    now: datetime,
    max_age: timedelta,
) -> list[str]:
    """Raise ``LookupRefused`` (``FeedWithdrawn`` for a feed the server withdrew) unless every
    feed a lookup of ``feeds`` (None: all held) would consult is fit to answer. Returns the
    withdrawn feeds a lookup of all feeds leaves out, for the caller to say so."""
    if store is None or not store_path.exists():
        raise LookupRefused(
            f"no local store at {store_path}: run `hashsync-client sync` first, or check "
            "store_path in the configuration",
            code="no_store",
        )
    held = {state.name: state for state in store.feeds()}
    wanted = sorted(held) if feeds is None else sorted(set(feeds))
    withdrawn = [name for name in wanted if name in held and held[name].withdrawn_at]
    consulted = [name for name in wanted if name in held and not held[name].withdrawn_at]
    if feeds is not None and withdrawn:
        raise FeedWithdrawn(_withdrawn_message(held[withdrawn[0]]))
    if feeds is not None and len(consulted) < len(wanted):
        missing = ", ".join(name for name in wanted if name not in held)
        raise LookupRefused(f"never synced here: {missing}", code="never_synced")
    if not consulted:
        if withdrawn:
            raise FeedWithdrawn(_withdrawn_message(held[withdrawn[0]]))
        raise LookupRefused(
            f"the local store {store_path} holds no feed yet: run `hashsync-client sync`",
            code="never_synced",
        )
    for name in consulted:
        problems = feed_problems(held[name], now=now, max_age=max_age)
        if problems:
            code = "never_synced" if problems == ["never synced"] else "list_not_usable"
            raise LookupRefused(f"{name}: {'; '.join(problems)}", code=code)
    return withdrawn


def _withdrawn_message(state: FeedState) -> str:
    return (
        f"{state.name} is no longer offered by the server (since {state.withdrawn_at}: "
        f"{state.withdrawn_reason}); its data answers no lookup"
    )
