"""Serializer fields shared by the APIs (moved to ``hashsync.validation``)."""

from __future__ import annotations

from hashsync.validation import QuietChoiceField

__all__ = ["QuietChoiceField"]
