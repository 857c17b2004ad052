"""``python -m hashsync_client``: the same as the ``hashsync-client`` command."""

from __future__ import annotations

import sys

from hashsync_client.cli import main

# Guarded, so that importing this module does not run the command.
if __name__ == "__main__":
    sys.exit(main())
