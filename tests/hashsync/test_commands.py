from __future__ import annotations

import json
import socket

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from audit.verify import verify_chain
from distribution import keys, releases
from distribution.models import Feed
from hashlist.models import Entry, Hash, Proposal, ProposalStatus
from members import tokens
from members.models import ApiToken

pytestmark = pytest.mark.django_db


def test_create_user_gives_the_role_and_reads_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEW_USER_PW", "a-long-synthetic-passphrase-42")
    call_command("create_user", "carol", role="reviewer", password_env="NEW_USER_PW")
    user = get_user_model().objects.get(username="carol")
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert user.check_password("a-long-synthetic-passphrase-42")
    assert user.has_perm("hashlist.review_proposal")
    event = AuditEvent.objects.get(action="user.create")
    assert event.after == {"username": "carol", "role": "reviewer"}
    assert "passphrase" not in json.dumps(event.after)


def test_create_user_refuses_a_missing_password_variable(monkeypatch):
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(CommandError, match="NOPE_PW"):
        call_command("create_user", "dave", role="analyst", password_env="NOPE_PW")
    assert not get_user_model().objects.filter(username="dave").exists()


def test_create_user_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("WEAK_PW", "password")
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_user", "erin", role="analyst", password_env="WEAK_PW")


def test_create_user_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        call_command("create_user", "frank", role="superhero", password_env="X")


def test_create_user_refuses_an_existing_username(monkeypatch, analyst):
    monkeypatch.setenv("PW", "a-long-synthetic-passphrase-42")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", analyst.username, role="analyst", password_env="PW")


def test_seed_demo_creates_users_and_a_synthetic_list_through_review(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", entries=20, pending=2)
    out = capsys.readouterr().out
    logins = json.loads((tmp_path / "demo-logins.json").read_text())
    assert (tmp_path / "demo-logins.json").stat().st_mode & 0o077 == 0
    token = logins.pop("demo-member-token")
    for username, password in logins.items():
        assert f"{username:<13} {password}" in out
        assert get_user_model().objects.get(username=username).check_password(password)
    # The demo member's sync token works, and only its digest is stored.
    assert f"Bearer {token}" in out
    # The root key a member's client pins, and the exact init command, are in the banner.
    first = keys.first_keyring()
    assert first is not None
    [root] = first.root_keyids
    assert f"Root key members pin: {root}" in out
    assert f"init --server http://127.0.0.1:8000/ --root-keyid {root} --token-env" in out
    demo_token = ApiToken.objects.get(client__member__name="demo-member")
    assert demo_token.digest == tokens.digest(token)
    assert not ApiToken.objects.filter(digest=token).exists()
    assert Entry.objects.filter(source="synthetic-demo").count() == 20
    assert Proposal.objects.filter(status=ProposalStatus.PENDING).count() == 2
    approved = Proposal.objects.filter(status=ProposalStatus.APPROVED)
    assert all(p.reviewer_id != p.author_id for p in approved)
    assert verify_chain().ok
    # The demo feeds are published by the history's releases, each with a signed manifest.
    assert releases.release_cut() is None  # nothing approved is left unreleased
    feeds = Feed.objects.order_by("name")
    assert [f.name for f in feeds] == ["all", "md5-sha1-category-a", "pdq-baseline", "photodna-all"]
    assert all(f.version > 0 and f.manifests.exists() for f in feeds)
    everything = Feed.objects.get(name="all")
    # A feed's entry_count counts its records (one per hash), as members receive them.
    published = Hash.objects.filter(entry__status="active").count()
    assert everything.entry_count == published == everything.entries.count()


def test_seed_demo_is_idempotent_and_keeps_passwords(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", entries=20, pending=0)
    first = (tmp_path / "demo-logins.json").read_text()
    call_command("seed_demo", entries=20, pending=0)
    assert (tmp_path / "demo-logins.json").read_text() == first
    assert Entry.objects.filter(source="synthetic-demo").count() == 20


def test_seed_demo_refuses_a_busy_port_before_printing_the_banner(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"Port {port} .* in use.*PORT={port + 1}"):
            call_command("seed_demo", check_port=True, url=f"http://127.0.0.1:{port}/")
    assert "starting at" not in capsys.readouterr().out


def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")


def test_audit_verify_reports_an_intact_chain(analyst, reviewer, capsys):
    from tests.factories import approved_entry

    approved_entry(analyst, reviewer)
    call_command("audit_verify")
    assert "Audit chain intact" in capsys.readouterr().out
