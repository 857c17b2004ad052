"""The Celery application. Without CELERY_BROKER_URL (the embedded default) tasks run
in-process; with it, workers and beat run them (see deploy/)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")

app = Celery("hashsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
