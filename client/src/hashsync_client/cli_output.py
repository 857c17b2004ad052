"""What ``hashsync-client`` prints: help texts (with examples and exit codes) and the human
and JSON forms of each command's answer. Kept apart from ``cli`` (parsing and dispatch)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hashsync_client.format import Grading
from hashsync_client.lookup import Match, Query
from hashsync_client.sync import SyncReport

logger = logging.getLogger("hashsync_client")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_WITHDRAWN = 0, 1, 2, 3, 4
EXIT_FORKED = 5

EXIT_CODES = """\
exit status:
  0  success; lookup: at least one item matched
  1  a sync failed; status --check: a feed is stale, behind or failing; verify: the local
     list does not hash to its signed digest; lookup: nothing matched (like grep)
  2  usage or configuration error; lookup: an item is not a hash value or unreadable
  3  lookup refused: no local store, a feed never synced, not confirmed current within
     lookup_max_age_seconds (--max-age), or failing verification -- never "no match"
  4  a feed is no longer offered by the server (entitlement or licence revoked, feed retired):
     lookup of it is refused; sync reports the withdrawal with this status, and status --check
     until the feed is acknowledged with `hashsync-client forget FEED`
  5  the server's transparency log forked (it shows different histories, or rolled back):
     sync stopped; both signed checkpoints are kept in a fork proof file (its path is
     printed); verify-checkpoint: another member's checkpoint and ours cannot both be true
  130  interrupted
"""

DESCRIPTION = """\
Pull the signed hashsync hash lists this member is entitled to, verify every signature,
size and digest, apply them to a local store, and look files or hash values up in it.
"""

EXAMPLES = """\
examples:
  hashsync-client init --server https://hashsync.example/ --root-keyid <64 hex>
  export HASHSYNC_TOKEN=hsk_...      # or --token-file PATH at init
  hashsync-client sync               # once (cron), or: hashsync-client watch (a service)
  hashsync-client status --check     # for monitoring
  hashsync-client lookup upload.jpg  # exit 0 = match, 1 = no match, 3/4 = refused
"""

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (one-line help, description, examples)
    "init": (
        "write the configuration: server, token source, pinned root keys",
        "Write the configuration file (mode 0600). It names where the token is read from, "
        "never the token itself. The root key id is printed by the server at start and by "
        "its operators' key listing.",
        "  hashsync-client init --server https://hashsync.example/ --root-keyid <64 hex> \\\n"
        "      --token-file /etc/hashsync/token",
    ),
    "sync": (
        "bring every entitled feed up to date, once",
        "Bring every feed the server offers (or --feed) to its newest verified version. A "
        "feed the server no longer offers is withdrawn: it stops answering lookups and its "
        "rows are deleted (kept, unused, with --keep-withdrawn).",
        "  hashsync-client sync\n  hashsync-client sync --feed md5-sha1-category-a --json",
    ),
    "watch": (
        "keep syncing as a service (stops on SIGTERM)",
        "Sync, wait, repeat, paced by the server's poll interval; backs off on failures.",
        "  hashsync-client watch --interval 60",
    ),
    "status": (
        "per feed: version held, last check with the server, server's version, stale?",
        "Per feed held: the version and digest, when a verified sync last confirmed it "
        "current, when the server last answered and which version it announced, and why "
        "it is not current (stale, behind, failing, withdrawn).",
        "  hashsync-client status\n  hashsync-client status --check --json",
    ),
    "export": (
        "write the local list as CSV, JSONL or te",
        "Write the feeds held (never a withdrawn one) in CSV, JSON Lines or threatexchange format.",
        "  hashsync-client export --format te -o hashes.te",
    ),
    "lookup": (
        "match files or hash values against the list",
        "Look files (MD5, SHA-1, SHA-256, PDQ) or hash values up in the feeds held. Refuses "
        "(exit 3 or 4) rather than answer from a list it cannot vouch for.",
        "  hashsync-client lookup upload.jpg\n"
        "  hashsync-client lookup --values <md5, sha1, sha256 or pdq hex> --json\n"
        "  find uploads -type f | hashsync-client lookup --files -",
    ),
    "forget": (
        "drop a withdrawn feed's record, acknowledging the withdrawal",
        "Delete what is left of a feed the server withdrew: its record (so status --check no "
        "longer exits 4) and any rows kept. Refused for a feed the server still offers.",
        "  hashsync-client forget photodna-all",
    ),
    "checkpoint": (
        "print the transparency log checkpoint this client accepted last",
        "Print the signed log checkpoint held (docs/transparency.md), to compare with other "
        "members: give it to them for `verify-checkpoint`. --log-keys prints the log's note "
        "verifier keys instead (for configuring a witness).",
        "  hashsync-client checkpoint > ours.checkpoint",
    ),
    "verify-checkpoint": (
        "check another member's log checkpoint against ours",
        "Check that another member's checkpoint was signed by the log and that one of it and "
        "ours extends the other (a consistency proof fetched from the server). If not, the log "
        "showed us different histories: exit 5 and a fork proof file.",
        "  hashsync-client verify-checkpoint theirs.checkpoint",
    ),
    "witness": (
        "run a transparency log witness (C2SP tlog-witness)",
        "Answer POST /add-checkpoint from the log: cosign each checkpoint that extends the one "
        "cosigned before, refuse any other. Keeps its own state file. --init creates the "
        "witness key and prints its verifier key (give it to the hotline and to members who "
        "require this witness). Needs no server configuration or token.",
        "  hashsync-client witness --init --name w1.example --key w1.key\n"
        "  hashsync-client witness --name w1.example --key w1.key --state w1.json \\\n"
        "      --log-key 'hashsync.example/log+1a2b3c4d+AQ…' --listen 127.0.0.1:8400",
    ),
    "verify": (
        "recompute each feed's digest from the local list",
        "Recompute each feed's state digest from its rows and compare it with the signed one; "
        "a mismatch makes the next sync take the snapshot.",
        "  hashsync-client verify --json",
    ),
}


def epilog(command: str | None = None) -> str:
    examples = EXAMPLES if command is None else f"examples:\n{COMMANDS[command][2]}\n"
    return f"{examples}\n{EXIT_CODES}"


def _word(value: object) -> str:
    if value is None:
        return "not assessed"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value) or "none"


def grading_text(grading: Grading) -> str:
    """A grading for people: ``baseline=not assessed``, never a raw Python ``None``."""
    return " ".join(f"{key}={_word(value)}" for key, value in grading._asdict().items())


def print_report(report: SyncReport, *, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        print(json.dumps(report.as_json()), file=out)
        return
    for result in report.results:
        change = (
            f"v{result.version}"
            if result.version == result.previous_version
            else f"v{result.previous_version} -> v{result.version}"
        )
        if result.status == "withdrawn":
            line = f"{result.feed}: WITHDRAWN by the server: {result.note}; lookups refuse it"
        else:
            digest = (result.state_digest or "")[:16]
            line = f"{result.feed}: {result.status} {change} digest {digest}"
        if result.error is not None:
            line += f" [{result.error.code}] {result.error}"
        print(line, file=out)
    if report.error is not None:
        print(f"sync failed: [{report.error.code}] {report.error}", file=out)


def status_line(item: Any) -> str:
    if item.withdrawn_at:
        state = f"WITHDRAWN by the server at {item.withdrawn_at}: answers no lookup"
    elif item.stale:
        state = "NOT CURRENT: " + "; ".join(item.stale_reasons)
    else:
        state = "current"
    server = (
        f"server at v{item.server_version} when last asked {item.server_seen_at}"
        if item.server_seen_at
        else "server never asked"
    )
    return (
        f"{item.feed}: version {item.version}, {item.entry_count} entries, "
        f"synced {item.synced_at or 'never'}, confirmed current {item.checked_at or 'never'}, "
        f"{server}, digest {item.state_digest}, graded in {_framework_label(item)}, {state}"
    )


def _framework_label(item: Any) -> str:
    version = getattr(item, "framework_version", None)
    slug = getattr(item, "framework", "uk")
    return slug if version is None else f"{slug} v{version}"


def print_query(query: Query) -> None:
    if query.error:
        print(f"error     {query.label}: {query.error}")
        return
    if not query.matches:
        print(f"no match  {query.label}")
    for match in query.matches:
        print(f"MATCH     {query.label}  {_match_text(match)}")
    for note in query.notes:
        print(f"          note: {note}")


def _match_text(match: Match) -> str:
    near = f" distance={match.distance}" if match.algorithm == "pdq" else ""
    framework = match.framework + (
        f" v{match.framework_version}" if match.framework_version is not None else ""
    )
    return (
        f"{match.algorithm}{near}  feed={match.feed}  {framework} class={match.klass}  "
        f"{grading_text(match.grading)}"
    )


def print_checks(checks: Sequence[Any], *, as_json: bool) -> None:
    for check in checks:
        if as_json:
            print(json.dumps(check.__dict__))
            continue
        verdict = "ok" if check.ok else "MISMATCH (run sync: the next plan takes the snapshot)"
        digest = check.recomputed_digest
        print(f"{check.feed}: {check.entry_count} entries, digest {digest}: {verdict}")


def setup_logging(command: str, *, verbose: int, quiet: bool) -> None:
    # watch is a service: what it does goes to the journal. Each -v is one level more.
    base = 1 if command == "watch" else 0
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = levels[min(base + verbose, 2)]
    if quiet:
        level = logging.ERROR
    fmt = (
        "%(asctime)s %(levelname)s %(message)s"
        if command == "watch"
        else "%(levelname)s: %(message)s"
    )
    # Our own logger only: the root logger belongs to whoever embeds us (or to pytest).
    for handler in [h for h in logger.handlers if getattr(h, "hashsync_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.hashsync_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    # httpx logs every request at INFO; the URLs hold no secrets, but they are noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
