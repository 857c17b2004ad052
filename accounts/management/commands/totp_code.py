"""Print the current authenticator code of a demo user: development only.

Someone trying the embedded demo without a phone can still go through the second-factor set-up
and sign-in: this prints what their authenticator app would show for the device being set up
(or the one in use). It refuses to run in production, where it would defeat the second factor.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Development only: print a user's current TOTP code (for trying the demo without a phone)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: object, **options: str) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "totp_code is for the embedded demo; it refuses to run in production."
            )
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        # The device being set up first (that is what the QR code on the page holds).
        device = TOTPDevice.objects.filter(user=user).order_by("confirmed", "-pk").first()
        if device is None:
            raise CommandError(
                "This user has no authenticator set up or pending: open Account → Second factor "
                "in the web application first (signing in as a reviewer takes you there)."
            )
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        remaining = device.step - int(totp.time - device.t0) % device.step
        code = str(totp.token()).zfill(device.digits)
        state = "being set up" if not device.confirmed else "in use"
        self.stdout.write(f"{code}   (device {state}; valid for {remaining} more seconds)")
