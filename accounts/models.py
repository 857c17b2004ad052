"""Staff personal API tokens: the staff API's credential for scripts and tools in production,
where HTTP Basic is off (``accounts.authentication``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffTokenStatus(models.TextChoices):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class StaffToken(models.Model):
    """A staff user's personal API token: it acts with exactly its owner's role. Only the
    SHA-256 digest is stored (the token is shown once, when it is created); ``prefix``
    (``hsp_`` + 8 characters) tells tokens apart in lists and on the audit trail. It always
    expires: a forgotten token must not stay good for ever."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tokens"
    )
    # A label its owner chooses ("import script on build-3"), to recognise it in the list.
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # accounts.selectors.staff_tokens_for: one user's tokens, newest first.
            models.Index(fields=["user", "-created_at"], name="stafftoken_user_newest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="stafftoken_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"staff token {self.prefix}… ({self.name})"
