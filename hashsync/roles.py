"""The four staff roles, as Django groups with permissions.

This mapping is the single definition; the migration and ``ensure_roles`` apply it, so adding a
permission to a role is one line here plus a migration that calls ``sync_roles`` again.
"""

from __future__ import annotations

from typing import Any

ANALYST = "analyst"
REVIEWER = "reviewer"
MEMBER_ADMIN = "member_admin"
AUDITOR = "auditor"

_ANALYST_PERMS = [
    "hashlist.view_entry",
    "hashlist.view_proposal",
    "hashlist.propose_change",
    "hashlist.view_importbatch",
    "distribution.view_feed",
    "distribution.view_release",
    # Member disputes land in the analysts' queue.
    "members.view_feedback",
    "members.resolve_feedback",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ANALYST: _ANALYST_PERMS,
    # A reviewer is a senior analyst: proposes too, and reviews other people's proposals.
    REVIEWER: [*_ANALYST_PERMS, "hashlist.review_proposal"],
    # Member administrators manage what is distributed (feeds; members and tokens with the
    # members app) but see nothing of internal curation.
    MEMBER_ADMIN: [
        "distribution.view_feed",
        "distribution.manage_feed",
        "distribution.view_release",
        "members.view_member",
        "members.manage_member",
    ],
    AUDITOR: [
        "hashlist.view_entry",
        "hashlist.view_proposal",
        "hashlist.view_importbatch",
        "hashlist.view_change",
        "audit.view_auditevent",
        "distribution.view_feed",
        "distribution.view_release",
        # Who held what, when: members, their acks, and disputes.
        "members.view_member",
        "members.view_ack",
        "members.view_feedback",
        # The transparency log's page: size, checkpoint, witnesses, inclusion checks.
        "transparency.view_log",
    ],
}
ROLES = tuple(ROLE_PERMISSIONS)


def sync_roles(apps: Any = None) -> None:
    """Create or update the role groups so each has exactly its permissions. Idempotent.

    In a migration, permissions of apps not migrated yet are skipped; the later migration that
    depends on those apps calls this again."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = []
        for name in names:
            app_label, codename = name.split(".")
            perm = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)


def ensure_roles() -> None:
    """For code paths where migrations' data may have been flushed (transactional tests)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():
        create_permissions(config, verbosity=0)
    sync_roles()
