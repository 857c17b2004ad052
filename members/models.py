"""Member organisations, licences, entitlements and API tokens (see the sync API issue)."""
