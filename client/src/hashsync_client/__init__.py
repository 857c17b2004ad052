"""hashsync member client: sync, verify, apply and look up a hashsync hash list.

The modules ``algorithms``, ``format``, ``lthash`` and ``signing`` are the protocol itself (hash
algorithm registry, bundle codec, state digest, signatures). They have no Django in them; the
server imports them from here, so both sides run the very same code.
"""

__version__ = "0.1.0"
