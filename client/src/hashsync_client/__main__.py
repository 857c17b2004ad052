"""``python -m hashsync_client``: the same as the ``hashsync-client`` command."""

from __future__ import annotations

import sys

from hashsync_client.cli import main

# Guarded: the digest process (multiprocessing "spawn") imports the main module again.
if __name__ == "__main__":
    sys.exit(main())
