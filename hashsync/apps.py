from __future__ import annotations

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class HashsyncConfig(AppConfig):
    name = "hashsync"
    verbose_name = "hashsync"

    def ready(self) -> None:
        from hashsync.aggregates import register_sqlite_functions

        # The reports' percentiles (hashsync.aggregates.Percentile) on the embedded SQLite.
        connection_created.connect(register_sqlite_functions, dispatch_uid="hashsync-sqlite")
