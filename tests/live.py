"""For the end-to-end tests that run every part for real: a member's ``hashsync-client``
console script in its own process, and the newest version the worker published."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from distribution import keys
from distribution.models import FeedVersion

CLIENT = str(Path(sys.executable).parent / "hashsync-client")


class ClientProcess:
    """One member machine: its own config and store in ``home``, its token in the
    environment (never on a command line), pinned to the server's root keys."""

    def __init__(self, server: str, token: str, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HASHSYNC_TOKEN": token,
            "HASHSYNC_CLIENT_CONFIG": str(home / "client.json"),
        }
        init = [CLIENT, "init", "--server", server, "--store", str(home / "store.sqlite3")]
        keyring = keys.current_keyring()
        assert keyring is not None
        for keyid in sorted(keyring.root_keyids):
            init += ["--root-keyid", keyid]
        subprocess.run(init, env=self.env, check=True, capture_output=True, timeout=60)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLIENT, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=120
        )


def newest_version(feed: str, after: int) -> int | None:
    """The newest version of ``feed`` above ``after``, if one is published."""
    return (
        FeedVersion.objects.filter(feed__name=feed, version__gt=after)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
