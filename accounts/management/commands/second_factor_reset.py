"""Reset the second factor of someone who lost both their phone and their recovery codes.

Their authenticator and recovery codes are deleted and their personal API tokens revoked; at
their next sign-in they set up a new authenticator. The reset is on the audit trail with the
administrator who did it (``--by``, an active superuser other than the person) and the reason.
Use this rather than deleting devices in the Django admin, which leaves no trace.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.second_factor import second_factor_reset
from hashsync.errors import DomainError


class Command(BaseCommand):
    help = (
        "Reset a person's second factor (lost phone and recovery codes): deletes their "
        "authenticator and recovery codes, revokes their API tokens, and records who did it "
        "and why on the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="whose second factor to reset")
        parser.add_argument(
            "--by", required=True, help="your username: an active superuser, not the person"
        )
        parser.add_argument(
            "--reason", required=True, help="why, e.g. the ticket number (kept on the trail)"
        )

    def handle(self, *args: Any, username: str, by: str, reason: str, **options: Any) -> None:
        actor = get_user_model().objects.filter(username=by).first()
        if actor is None:
            raise CommandError(f"--by: there is no user named {by!r}.")
        try:
            revoked = second_factor_reset(actor=actor, username=username, reason=reason)
        except DomainError as error:
            raise CommandError(error.message) from None
        tokens = f"{revoked} API token{'s' if revoked != 1 else ''} revoked"
        self.stdout.write(
            f"Second factor of {username} reset ({tokens}). At their next sign-in they set up "
            "a new authenticator app. Recorded on the audit trail as staff.second_factor_reset."
        )
