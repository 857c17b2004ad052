from __future__ import annotations

from django.apps import AppConfig


class HashlistConfig(AppConfig):
    name = "hashlist"
