"""Releases, feeds and what is published for them.

A release is a global version number assigned by the one serialised cutter
(``distribution.releases.release_cut``). Each feed keeps its current membership (``FeedEntry``)
and state digest, so a release costs O(changes * feeds), never O(list). Published artefacts
(delta and snapshot bundles) are content-addressed objects in bundle storage, written before
the release that references them commits.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from distribution.feeds import FeedFilter
from hashsync_client.algorithms import ALGORITHM_CHOICES
from hashsync_client.lthash import LTHASH_BYTES


class ReleaseState(models.Model):
    """The single row the cutter locks (SELECT … FOR UPDATE): it serialises release cuts
    across every worker and host, and remembers the last version handed out."""

    last_version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Release state (last version {self.last_version})"


class Release(models.Model):
    version = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    change_count = models.PositiveIntegerField()
    first_change_id = models.PositiveBigIntegerField()
    last_change_id = models.PositiveBigIntegerField()
    # How long the cutter took, in seconds, from holding the lock to writing this row (bundles,
    # feed states and manifests included). None for releases cut before it was recorded.
    cut_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"Release {self.version} ({self.change_count} changes)"


class FeedManager(models.Manager["Feed"]):
    def create(self, **kwargs: Any) -> Feed:
        """Every way a feed is created (the feed service, tests, benchmarks) decides
        ``carries_photodna`` from the filter by the one rule, ``FeedFilter.carries_photodna``."""
        feed = self.model(**kwargs)
        if "carries_photodna" not in kwargs:
            feed.carries_photodna = FeedFilter.of(feed).carries_photodna
        feed.save(force_insert=True, using=self.db)
        return feed


class Feed(models.Model):
    """A named filter over published entries. An empty list means "any".

    The filter is fixed once the feed exists: changing it would change the membership of the
    whole list at once (an O(list) event). Create a new feed instead, and retire the old one.
    """

    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True, default="")
    algorithms = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    age_groups = models.JSONField(default=list, blank=True)
    industry_classes = models.JSONField(default=list, blank=True)
    content_types = models.JSONField(default=list, blank=True)
    baseline_only = models.BooleanField(default=False)
    # The grading framework (hashlist.Framework slug) the feed delivers classes in, and the
    # classes of it the feed admits (empty: any). uk feeds are bundle format 1, every other
    # framework's format 2 (distribution.framework_grading).
    framework = models.SlugField(max_length=32, default="uk")
    classes = models.JSONField(default=list, blank=True)
    # The framework rule version the feed's published state reflects (0: not yet published).
    # A release regrades the feed when the framework has a newer one (distribution.regrade).
    framework_version = models.PositiveIntegerField(default=0)
    # Decided by the filter above when the feed is created (FeedManager.create); True unless
    # the feed's algorithms exclude PhotoDNA, so a feed created otherwise asks for the licence.
    carries_photodna = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the release that first published the feed (its membership over the whole list).
    populated_at = models.DateTimeField(null=True, blank=True)
    # Current published state: the release it reflects, its size, its LtHash state.
    version = models.PositiveBigIntegerField(default=0)
    entry_count = models.PositiveBigIntegerField(default=0)
    lthash = models.BinaryField(default=bytes(LTHASH_BYTES))

    objects = FeedManager()

    class Meta:
        permissions = [("manage_feed", "Can create and retire feeds")]

    def __str__(self) -> str:
        return self.name


class FeedEntry(models.Model):
    """One hash currently in a feed, with the grading code members receive."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="entries")
    algorithm = models.CharField(max_length=16, choices=ALGORITHM_CHOICES)
    value = models.BinaryField(max_length=1024)
    grading = models.PositiveSmallIntegerField()
    entry_id = models.BigIntegerField()

    class Meta:
        constraints = [
            # Also serves the snapshot writer's ordered scan of one feed. On PostgreSQL its
            # index also INCLUDEs grading, so that scan is index-only: migration 0002, by hand
            # because Django would drop the whole constraint on SQLite. Keep the INCLUDE if
            # this constraint is ever re-created.
            models.UniqueConstraint(
                fields=["feed", "algorithm", "value"], name="feed_entry_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} hash in feed {self.feed_id}"


class FeedVersion(models.Model):
    """What a feed looks like at a release in which it changed (or was first published)."""

    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveBigIntegerField()
    previous_version = models.PositiveBigIntegerField(null=True, blank=True)
    entry_count = models.PositiveBigIntegerField()
    state_digest = models.CharField(max_length=64)
    delta_sha256 = models.CharField(max_length=64, blank=True, default="")
    delta_size = models.PositiveBigIntegerField(null=True, blank=True)
    delta_records = models.PositiveBigIntegerField(null=True, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True, default="")
    snapshot_size = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feed", "version"], name="feed_version_unique"),
        ]
        indexes = [
            # Serves "the latest snapshot of a feed at or before version N".
            models.Index(
                fields=["feed", "version"],
                condition=~Q(snapshot_sha256=""),
                name="feed_version_snapshot_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feed_id}@{self.version}"


class Manifest(models.Model):
    """A signed manifest (DSSE envelope). A feed gets a new one at every version it changes,
    when a snapshot is added, and when it is re-signed before expiry; each names the sha256
    of the one before it, so the history of a feed's manifests is a chain."""

    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="manifests")
    version = models.PositiveBigIntegerField()
    envelope = models.BinaryField()
    # SHA-256 of the signed payload (not of the envelope): what the next manifest of the feed
    # names as ``previous_manifest_sha256``.
    sha256 = models.CharField(max_length=64, unique=True)
    previous_sha256 = models.CharField(max_length=64, blank=True, default="")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["feed", "-id"], name="manifest_feed_latest_idx")]

    def __str__(self) -> str:
        return f"Manifest of {self.feed_id}@{self.version}"


class Keyring(models.Model):
    """A signed keyring version (DSSE envelope, signed by root keys kept offline)."""

    version = models.PositiveIntegerField(unique=True)
    envelope = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"Keyring v{self.version}"


class BundleObject(models.Model):
    """Index of content-addressed objects in bundle storage (what was written, and its size)."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8)  # "delta" | "snapshot"
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"
