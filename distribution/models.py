"""Releases, feeds, bundles and signing keys (see the releases issue)."""
