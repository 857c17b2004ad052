"""Member organisations, their licences, entitlements, sync clients and API tokens, and what
each client reported holding.

A member (a company) has sync clients (its machines); each API token belongs to one client, so
acks and downloads say which machine holds what. Entitlements say which feeds a member may
receive; a PhotoDNA licence is additionally required for any feed that can carry PhotoDNA
hashes (``members.selectors.entitlements_in_force`` is the one place that decides).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from distribution.models import Feed
from hashsync.validation import MAX_LABEL


class MemberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Member(models.Model):
    name = models.SlugField(max_length=64, unique=True, help_text="Short stable identifier.")
    display_name = models.CharField(max_length=MAX_LABEL)
    status = models.CharField(
        max_length=12, choices=MemberStatus.choices, default=MemberStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True, default="")

    class Meta:
        permissions = [("manage_member", "Can manage member organisations and their tokens")]

    def __str__(self) -> str:
        return self.name


class ContactRole(models.TextChoices):
    TECHNICAL = "technical", "Technical"
    LEGAL = "legal", "Legal"
    TRUST_SAFETY = "trust_safety", "Trust and safety"


class Contact(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=MAX_LABEL)
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=ContactRole.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "email", "role"], name="contact_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.role}) of {self.member_id}"


class LicenceKind(models.TextChoices):
    PHOTODNA = "photodna", "Microsoft PhotoDNA"


class Licence(models.Model):
    """A licence the member holds (checked on every request that hands out data)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="licences")
    kind = models.CharField(max_length=16, choices=LicenceKind.choices)
    reference = models.CharField(max_length=MAX_LABEL, blank=True, default="")
    valid_until = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="licence_unique_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} licence of {self.member_id}"


class Entitlement(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="entitlements")
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="entitlements")
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "feed"], name="entitlement_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → feed {self.feed_id}"


class SyncClient(models.Model):
    """One machine (or deployment) of a member that syncs; tokens are issued to it."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="clients")
    name = models.SlugField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the client acked a state digest that is not the server's: administrators look.
    digest_mismatch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "name"], name="sync_client_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.name}"

    @property
    def audit_label(self) -> str:
        """How audit events name this client as their actor (never by its token): the
        auditors' hash-holders find the bundles served to it by this label."""
        return f"member:{self.member.name}/{self.name}"


class TokenScope(models.TextChoices):
    SYNC = "sync", "Sync feeds"
    LOOKUP = "lookup", "Look up hashes"
    FEEDBACK = "feedback", "Report false positives"


class ApiToken(models.Model):
    """A member API token. Only its SHA-256 digest is stored (the token is shown once); the
    prefix (``hsk_`` + 8 characters) tells tokens apart in lists and logs."""

    client = models.ForeignKey(SyncClient, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.prefix}… of client {self.client_id}"

    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class Holding(models.Model):
    """The latest version and digest each client acked for each feed (the current view);
    ``Ack`` keeps the history."""

    client = models.ForeignKey(SyncClient, on_delete=models.CASCADE, related_name="holdings")
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveBigIntegerField()
    state_digest = models.CharField(max_length=64)
    digest_matches = models.BooleanField()
    acked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "feed"], name="holding_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} holds {self.feed_id}@{self.version}"


class Ack(models.Model):
    """Every ack, append-only: what a client said it held, and when. Serves the auditors'
    "who held hash X at time T" (``members.selectors.hash_holders``)."""

    client = models.ForeignKey(SyncClient, on_delete=models.PROTECT, related_name="acks")
    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveBigIntegerField()
    state_digest = models.CharField(max_length=64)
    digest_matches = models.BooleanField()
    acked_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Serve the holders query: a feed's acks in time order, and one client's.
            models.Index(fields=["feed", "acked_at"], name="ack_feed_time_idx"),
            models.Index(fields=["client", "feed", "acked_at"], name="ack_client_time_idx"),
        ]

    def __str__(self) -> str:
        return f"ack {self.client_id} {self.feed_id}@{self.version}"


class FeedbackKind(models.TextChoices):
    FALSE_POSITIVE = "false_positive", "False positive"


class FeedbackStatus(models.TextChoices):
    OPEN = "open", "Open"
    UPHELD = "upheld", "Upheld (entry will be corrected)"
    DISMISSED = "dismissed", "Dismissed"


class Feedback(models.Model):
    """A member's dispute of a listed hash; lands in the analysts' queue."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="feedback")
    client = models.ForeignKey(SyncClient, on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey("hashlist.Entry", on_delete=models.PROTECT, related_name="+")
    algorithm = models.CharField(max_length=16)
    value = models.BinaryField(max_length=1024)
    kind = models.CharField(max_length=16, choices=FeedbackKind.choices)
    reason = models.TextField()
    status = models.CharField(
        max_length=12, choices=FeedbackStatus.choices, default=FeedbackStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    resolution = models.TextField(blank=True, default="")

    class Meta:
        permissions = [("resolve_feedback", "Can resolve member feedback")]
        constraints = [
            # One open dispute per member and entry: the analysts' queue cannot be flooded.
            models.UniqueConstraint(
                fields=["member", "entry"],
                condition=Q(status="open"),
                name="feedback_one_open_per_entry",
            ),
        ]
        indexes = [
            # Serves the analysts' queue of open disputes.
            models.Index(fields=["id"], condition=Q(status="open"), name="feedback_open_idx"),
        ]

    def __str__(self) -> str:
        return f"feedback {self.pk} on entry {self.entry_id}"
