from __future__ import annotations

from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"

    def ready(self) -> None:
        from sync import schema  # noqa: F401 - registers the OpenAPI auth extension
