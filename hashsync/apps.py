from __future__ import annotations

from django.apps import AppConfig


class HashsyncConfig(AppConfig):
    name = "hashsync"
    verbose_name = "hashsync"
