"""Seeds a fault test's private database (run by ``tests.faults.stack`` in its own process,
with the embedded settings pointed at that database): signing keys, an analyst and a reviewer
with personal API tokens, the feed ``md5-all`` released once, and member ``acme`` entitled to
it with one sync client. Prints one JSON line with the tokens and the root key ids."""

from __future__ import annotations

import json
import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")
    import django

    django.setup()

    from accounts.services import staff_token_create
    from distribution import keys, releases
    from distribution.models import Feed
    from hashsync.roles import ANALYST, MEMBER_ADMIN, REVIEWER, ensure_roles
    from tests.factories import member_with_token, staff_user

    ensure_roles()
    keys.ensure_development_keys()
    analyst = staff_user(ANALYST, second_factor=True)
    reviewer = staff_user(REVIEWER)
    admin = staff_user(MEMBER_ADMIN)
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    releases.release_cut()
    _, token = member_with_token(admin, feeds=("md5-all",))
    keyring = keys.current_keyring()
    assert keyring is not None
    print(
        json.dumps(
            {
                "token": token,
                "analyst_token": staff_token_create(actor=analyst, name="faults")[1],
                "reviewer_token": staff_token_create(actor=reviewer, name="faults")[1],
                "root_keyids": sorted(keyring.root_keyids),
            }
        )
    )


if __name__ == "__main__":
    main()
