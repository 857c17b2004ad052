"""hashsync member client: sync, verify, apply and look up a hashsync hash list.

The modules ``algorithms``, ``format``, ``lthash`` and ``signing`` are the protocol itself (hash
algorithm registry, bundle codec, state digest, signatures). They have no Django in them; the
server imports them from here, so both sides run the very same code.

The client proper (``HashsyncClient``, the ``hashsync-client`` command) is imported lazily, so
the server importing the protocol modules does not load the HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from hashsync_client.api import HashsyncClient
    from hashsync_client.config import Config

__all__ = ["Config", "HashsyncClient", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "HashsyncClient":
        from hashsync_client.api import HashsyncClient

        return HashsyncClient
    if name == "Config":
        from hashsync_client.config import Config

        return Config
    raise AttributeError(f"module 'hashsync_client' has no attribute {name!r}")
