"""The key management commands (``keys_create_root``, ``keys_issue_signing``,
``keys_rotate_root``) and the server's online signing key.

Root keys live "offline": in the test's own ``tmp_path``, never under ``settings.VAR_DIR`` or
bundle storage. The keyring is always created through the commands before anything could
trigger the development bootstrap (whose throw-away root in var/ is the documented exception
to "no root private key on the server").
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from distribution import keys, releases, selectors, services
from distribution.keys import DEVELOPMENT_ROOT, SigningUnavailable
from distribution.models import Feed, Keyring, Release
from hashsync_client.signing import (
    SignatureError,
    SigningKey,
    generate_key,
    load_private_key,
    parse_keyring_unverified,
    verify_keyring_chain,
    write_private_key,
)
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    """The operator's offline media: outside VAR_DIR and bundle storage."""
    directory = tmp_path / "offline"
    directory.mkdir()
    assert not directory.is_relative_to(settings.VAR_DIR)
    return directory


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def create_root(offline: Path, name: str) -> tuple[Path, SigningKey]:
    path = offline / f"{name}.key"
    run("keys_create_root", "--out", str(path))
    return path, load_private_key(path)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def online_key_path() -> Path:
    return Path(settings.HASHSYNC_SIGNING_KEY_PATH)


def development_root() -> Path:
    return Path(settings.VAR_DIR) / "keys" / DEVELOPMENT_ROOT


def signer_keyids(envelope: bytes) -> set[str]:
    return {s["keyid"] for s in json.loads(envelope)["signatures"]}


def listed_signing_keyids() -> set[str]:
    keyring = keys.current_keyring()
    assert keyring is not None
    return {entry.keyid for entry in keyring.signing_keys}


# --- keys_create_root ---------------------------------------------------------------------------


def test_create_root_writes_a_private_file_and_prints_its_key_id(offline):
    path = offline / "root.key"

    output = run("keys_create_root", "--out", str(path))

    assert mode_of(path) == 0o600
    key = load_private_key(path)
    assert key.keyid in output
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE KEY" not in output
    assert not Keyring.objects.exists()  # nothing is stored on the server


def test_create_root_takes_a_scripted_passphrase_without_a_prompt(offline, monkeypatch):
    # A scripted ceremony (scripts/prod-check.py) gives the passphrase in the same variable
    # keys_issue_signing reads it from; nothing may prompt.
    monkeypatch.setenv("HASHSYNC_ROOT_KEY_PASSWORD", "a synthetic passphrase")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("prompted"))
    path = offline / "root.key"

    output = run("keys_create_root", "--out", str(path), "--encrypt")

    key = load_private_key(path, password=b"a synthetic passphrase")
    assert key.keyid in output
    assert "synthetic passphrase" not in output
    with pytest.raises(ValueError):
        load_private_key(path)


def test_create_root_refuses_a_short_scripted_passphrase(offline, monkeypatch):
    monkeypatch.setenv("HASHSYNC_ROOT_KEY_PASSWORD", "short")
    with pytest.raises(CommandError, match="shorter than 12"):
        run("keys_create_root", "--out", str(offline / "root.key"), "--encrypt")
    assert not (offline / "root.key").exists()


def test_create_root_refuses_to_overwrite_an_existing_file(offline):
    path, key = create_root(offline, "root")
    before = path.read_bytes()

    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("keys_create_root", "--out", str(path))

    assert path.read_bytes() == before
    assert load_private_key(path).keyid == key.keyid


def test_create_root_refuses_to_overwrite_any_existing_file(offline):
    path = offline / "notes.txt"
    path.write_text("not a key")
    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("keys_create_root", "--out", str(path))
    assert path.read_text() == "not a key"


def test_create_root_in_a_missing_directory_is_a_command_error(offline):
    path = offline / "no-such-directory" / "root.key"
    with pytest.raises(CommandError, match="no-such-directory"):
        run("keys_create_root", "--out", str(path))
    assert not path.exists()


def test_two_roots_are_different_keys(offline):
    _, first = create_root(offline, "a")
    _, second = create_root(offline, "b")
    assert first.keyid != second.keyid


# --- keys_issue_signing -------------------------------------------------------------------------


def test_issue_signing_stores_keyring_v1_and_installs_the_online_key(offline):
    root_path, root = create_root(offline, "root")

    output = run("keys_issue_signing", "--root-key", str(root_path))

    [row] = Keyring.objects.all()
    assert row.version == 1
    keyring = verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={root.keyid}, now=timezone.now()
    )
    assert keyring.root_keyids == {root.keyid}
    assert signer_keyids(bytes(row.envelope)) == {root.keyid}
    assert mode_of(online_key_path()) == 0o600
    online = keys.online_signing_key()
    assert [entry.keyid for entry in keyring.signing_keys] == [online.keyid]
    assert online.keyid != root.keyid
    assert online.keyid in output
    assert not development_root().exists()
    [event] = AuditEvent.objects.filter(action="keyring.issue")
    assert event.object_id == "1"
    assert event.after["signing_keys"] == [online.keyid]


def test_second_issue_lists_both_keys_and_replaces_the_online_key(offline):
    root_path, root = create_root(offline, "root")
    run("keys_issue_signing", "--root-key", str(root_path))
    first = keys.online_signing_key()

    run("keys_issue_signing", "--root-key", str(root_path))

    assert list(Keyring.objects.values_list("version", flat=True)) == [1, 2]
    second = keys.online_signing_key()
    assert second.keyid != first.keyid
    assert load_private_key(online_key_path()).keyid == second.keyid
    assert mode_of(online_key_path()) == 0o600
    keyring = verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={root.keyid}, now=timezone.now()
    )
    assert keyring.version == 2
    assert {entry.keyid for entry in keyring.signing_keys} == {first.keyid, second.keyid}


def test_issue_signing_takes_the_lifetimes_it_is_given(offline):
    root_path, _ = create_root(offline, "root")
    run(
        "keys_issue_signing",
        "--root-key",
        str(root_path),
        "--valid-days",
        "7",
        "--keyring-days",
        "30",
    )
    keyring = keys.current_keyring()
    assert keyring is not None
    [entry] = keyring.signing_keys
    assert entry.valid_until - entry.valid_from == dt.timedelta(days=7)
    assert keyring.expires_at - keyring.issued_at == dt.timedelta(days=30)


# --- keys_rotate_root ---------------------------------------------------------------------------


def test_rotate_root_is_signed_by_both_roots_and_clients_pinning_the_old_root_follow_it(offline):
    a_path, a = create_root(offline, "a")
    b_path, b = create_root(offline, "b")
    run("keys_issue_signing", "--root-key", str(a_path))
    online = keys.online_signing_key()

    output = run("keys_rotate_root", "--old-root", str(a_path), "--new-root", str(b_path))

    rotated = Keyring.objects.get(version=2)
    assert signer_keyids(bytes(rotated.envelope)) == {a.keyid, b.keyid}
    assert b.keyid in output
    keyring = verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={a.keyid}, now=timezone.now()
    )
    assert keyring.version == 2
    assert keyring.root_keyids == {b.keyid}
    # The online key is kept, and the server still signs with it.
    assert {entry.keyid for entry in keyring.signing_keys} == {online.keyid}
    assert keys.online_signing_key().keyid == online.keyid
    # The chain is anchored at A: pinning only B (without A's vouching) is not enough.
    with pytest.raises(SignatureError) as refused:
        verify_keyring_chain(
            selectors.keyring_envelopes(), pinned_root_keyids={b.keyid}, now=timezone.now()
        )
    assert refused.value.code == "untrusted_root"
    assert AuditEvent.objects.filter(action="keyring.rotate_root", object_id="2").count() == 1


def test_after_rotation_the_new_root_issues_keys_and_the_old_one_cannot(offline):
    a_path, a = create_root(offline, "a")
    b_path, b = create_root(offline, "b")
    run("keys_issue_signing", "--root-key", str(a_path))
    run("keys_rotate_root", "--old-root", str(a_path), "--new-root", str(b_path))
    online = online_key_path().read_bytes()

    with pytest.raises(CommandError, match=f"Nothing was stored.*{b.keyid}"):
        run("keys_issue_signing", "--root-key", str(a_path))

    assert Keyring.objects.count() == 2
    assert online_key_path().read_bytes() == online
    run("keys_issue_signing", "--root-key", str(b_path))
    keyring = verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={a.keyid}, now=timezone.now()
    )
    assert (keyring.version, keyring.root_keyids) == (3, {b.keyid})


def test_rotation_signed_only_by_new_roots_is_refused_and_nothing_is_stored(offline):
    a_path, a = create_root(offline, "a")
    _, b = create_root(offline, "b")
    _, c = create_root(offline, "c")
    run("keys_issue_signing", "--root-key", str(a_path))
    stored = selectors.keyring_envelopes()
    before = AuditEvent.objects.count()

    with pytest.raises(SignatureError) as refused, transaction.atomic():
        keys.keyring_issue(root_keys=[b], new_root_keys=[c])

    assert refused.value.code == "signature_threshold"
    assert selectors.keyring_envelopes() == stored
    assert AuditEvent.objects.count() == before
    assert verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={a.keyid}, now=timezone.now()
    ).root_keyids == {a.keyid}


def test_rotate_root_command_with_the_wrong_old_root_is_a_command_error(offline):
    a_path, a = create_root(offline, "a")
    b_path, _ = create_root(offline, "b")
    c_path, _ = create_root(offline, "c")
    run("keys_issue_signing", "--root-key", str(a_path))

    with pytest.raises(CommandError, match=f"Nothing was stored.*{a.keyid}"):
        run("keys_rotate_root", "--old-root", str(b_path), "--new-root", str(c_path))

    assert Keyring.objects.count() == 1


# --- bad root key files -------------------------------------------------------------------------


def _ec_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_key_pem() -> bytes:
    return generate_key().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _encrypted_key_pem() -> bytes:
    return generate_key().private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"synthetic-passphrase"),
    )


BAD_KEY_FILES = {
    "random-bytes": lambda: secrets.token_bytes(64),
    "empty": lambda: b"",
    "text": lambda: b"this is not a key\n",
    "pem-with-garbage": lambda: (
        b"-----BEGIN PRIVATE KEY-----\n"
        + base64.b64encode(secrets.token_bytes(48))
        + b"\n-----END PRIVATE KEY-----\n"
    ),
    "ec-key": _ec_key_pem,
    "public-key": _public_key_pem,
    "encrypted-without-passphrase": _encrypted_key_pem,
}


@pytest.mark.parametrize("command", ["keys_issue_signing", "keys_rotate_root"])
@pytest.mark.parametrize("content", list(BAD_KEY_FILES))
def test_garbage_root_key_file_is_a_clear_command_error(offline, command, content):
    bad = offline / "bad.key"
    bad.write_bytes(BAD_KEY_FILES[content]())
    bad.chmod(0o600)
    good_path, _ = create_root(offline, "good")
    args = (
        ["--root-key", str(bad)]
        if command == "keys_issue_signing"
        else ["--old-root", str(bad), "--new-root", str(good_path)]
    )

    with pytest.raises(CommandError) as refused:
        run(command, *args)

    message = str(refused.value)
    assert f"Cannot read root key {bad}" in message
    for line in bad.read_bytes().splitlines():  # the file's contents are not echoed
        text = line.decode("ascii", errors="ignore")
        assert len(text) < 8 or "PRIVATE KEY" in text or text not in message
    assert not Keyring.objects.exists()
    assert not online_key_path().exists()


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_unreadable_root_key_path_is_a_command_error(offline, where):
    path = offline / where
    if where == "directory":
        path.mkdir()
    with pytest.raises(CommandError, match=f"Cannot read root key {path}"):
        run("keys_issue_signing", "--root-key", str(path))
    assert not Keyring.objects.exists()


def test_issue_signing_with_a_root_that_is_not_the_keyrings_is_a_command_error(offline):
    a_path, a = create_root(offline, "a")
    other_path, _ = create_root(offline, "other")
    run("keys_issue_signing", "--root-key", str(a_path))
    online = online_key_path().read_bytes()
    before = AuditEvent.objects.count()

    with pytest.raises(CommandError, match=f"Nothing was stored.*{a.keyid}"):
        run("keys_issue_signing", "--root-key", str(other_path))

    assert Keyring.objects.count() == 1
    assert AuditEvent.objects.count() == before
    assert online_key_path().read_bytes() == online


# --- the root private key never reaches the server ----------------------------------------------


def _secret_forms(key: SigningKey) -> list[bytes]:
    """Every form in which the private key could plausibly be written down."""
    raw = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    der = key.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = b"".join(pem.splitlines()[1:-1])  # the base64 between the PEM armour lines
    return [
        raw,
        der,
        pem,
        body,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        base64.b64encode(der),
    ]


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return str(value).encode()


def _database_values() -> Iterator[tuple[str, bytes]]:
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields]
        for row in model._default_manager.values_list(*fields):
            for field, value in zip(fields, row, strict=True):
                if value is not None:
                    yield f"{model._meta.label}.{field}", _as_bytes(value)


def _files_under(*roots: Path) -> Iterator[tuple[str, bytes]]:
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                yield str(path), path.read_bytes()


def _leaks(forms: list[bytes], places: Iterator[tuple[str, bytes]]) -> list[str]:
    return [where for where, data in places if any(form in data for form in forms)]


def test_root_private_keys_are_never_stored_on_the_server(
    offline, caplog, analyst, reviewer, member_admin
):
    caplog.set_level("DEBUG")
    a_path, a = create_root(offline, "a")
    b_path, b = create_root(offline, "b")
    outputs = [
        run("keys_issue_signing", "--root-key", str(a_path)),
        run("keys_issue_signing", "--root-key", str(a_path)),
        run("keys_rotate_root", "--old-root", str(a_path), "--new-root", str(b_path)),
        run("keys_issue_signing", "--root-key", str(b_path)),
    ]
    # Publish something, so manifests, bundles and audit events exist to be searched.
    approved_entry(analyst, reviewer)
    services.feed_create(actor=member_admin, name="everything")
    assert releases.release_cut() is not None
    assert not development_root().exists()  # the documented exception was not triggered
    forms = _secret_forms(a) + _secret_forms(b)
    bundles = Path(settings.STORAGES["bundles"]["OPTIONS"]["location"])
    assert any(bundles.rglob("*")), "the release wrote no bundle; the file scan would be empty"

    # The scan finds a key where one is (the offline files), so an empty result means something.
    assert len(_leaks(forms, _files_under(offline))) == 2
    assert _leaks(forms, _database_values()) == []
    assert _leaks(forms, _files_under(Path(settings.VAR_DIR), bundles)) == []
    assert _leaks(forms, iter(("stdout", out.encode()) for out in outputs)) == []
    assert _leaks(forms, iter(("log", r.getMessage().encode()) for r in caplog.records)) == []


# --- the online signing key ---------------------------------------------------------------------


def test_production_without_a_key_file_refuses_to_sign_and_generates_nothing(settings):
    settings.PRODUCTION = True

    with pytest.raises(SigningUnavailable) as refused:
        keys.online_signing_key()

    assert refused.value.code == "signing_unavailable"
    assert refused.value.http_status == 503
    assert str(online_key_path()) in refused.value.message
    assert not Keyring.objects.exists()
    assert not online_key_path().exists()
    assert not development_root().exists()
    assert not Path(settings.VAR_DIR).exists() or not any(Path(settings.VAR_DIR).rglob("*"))


def test_production_refuses_the_development_bootstrap(settings):
    settings.PRODUCTION = True
    with pytest.raises(SigningUnavailable):
        keys.ensure_development_keys()
    assert not Keyring.objects.exists()
    assert not development_root().exists()


def test_production_release_cut_without_a_key_publishes_nothing(settings, member_admin):
    settings.PRODUCTION = True
    services.feed_create(actor=member_admin, name="waiting")

    with pytest.raises(SigningUnavailable):
        releases.release_cut()

    assert not Release.objects.exists()
    assert Feed.objects.get(name="waiting").populated_at is None
    assert not Keyring.objects.exists()


def test_production_with_a_keyring_but_no_key_file_refuses_to_sign(settings, offline):
    root_path, _ = create_root(offline, "root")
    run("keys_issue_signing", "--root-key", str(root_path))
    online_key_path().unlink()
    settings.PRODUCTION = True

    with pytest.raises(SigningUnavailable, match="No online signing key"):
        keys.online_signing_key()

    assert not online_key_path().exists()


def test_expired_keyring_makes_signing_unavailable(offline):
    root_path, _ = create_root(offline, "root")
    run("keys_issue_signing", "--root-key", str(root_path), "--keyring-days", "1")
    keyring = keys.current_keyring()
    assert keyring is not None
    assert keys.online_signing_key(now=keyring.expires_at - dt.timedelta(seconds=1))

    with pytest.raises(SigningUnavailable, match="has expired") as refused:
        keys.online_signing_key(now=keyring.expires_at)

    assert refused.value.code == "signing_unavailable"


@pytest.mark.parametrize("when", ["before", "after"])
def test_signing_key_outside_its_validity_window_makes_signing_unavailable(offline, when):
    root_path, _ = create_root(offline, "root")
    run("keys_issue_signing", "--root-key", str(root_path), "--valid-days", "1")
    keyring = keys.current_keyring()
    assert keyring is not None
    [entry] = keyring.signing_keys
    assert keys.online_signing_key(now=entry.valid_from).keyid == entry.keyid
    moment = entry.valid_from - dt.timedelta(seconds=1) if when == "before" else entry.valid_until
    assert not keyring.is_expired(moment)  # it is the key's window, not the keyring, that ends

    with pytest.raises(SigningUnavailable, match="not valid now") as refused:
        keys.online_signing_key(now=moment)

    assert refused.value.code == "signing_unavailable"


def test_online_key_not_listed_in_the_keyring_makes_signing_unavailable(offline):
    root_path, _ = create_root(offline, "root")
    run("keys_issue_signing", "--root-key", str(root_path))
    online_key_path().unlink()
    write_private_key(online_key_path(), generate_key())  # never issued by the root

    with pytest.raises(SigningUnavailable, match="never issued"):
        keys.online_signing_key()


def test_keyring_envelopes_parse_to_consecutive_versions(offline):
    root_path, _ = create_root(offline, "root")
    for _ in range(3):
        run("keys_issue_signing", "--root-key", str(root_path))
    versions = [parse_keyring_unverified(e).version for e in selectors.keyring_envelopes()]
    assert versions == [1, 2, 3]


@pytest.mark.parametrize(
    "options",
    [
        ["--threshold", "2"],  # more root signatures than root keys
        ["--valid-days", "0"],
        ["--keyring-days", "0"],
        ["--valid-days", "-3"],
    ],
)
def test_impossible_issue_options_are_a_command_error(offline, options):
    root_path, _ = create_root(offline, "root")
    with pytest.raises(CommandError, match="Nothing was stored"):
        run("keys_issue_signing", "--root-key", str(root_path), *options)
    assert not Keyring.objects.exists()
    assert not online_key_path().exists()


# --- the development bootstrap (its throw-away root lives in this test's own var/) -------------


def test_development_bootstrap_key_signs_even_when_a_second_ticks_over(monkeypatch):
    """Keyrings hold whole seconds: a key issued at 12:00:00.999 is valid from 12:00:00. The
    bootstrap runs inside ``online_signing_key``; a check against a "now" taken before it
    (12:00:00.999) of a key issued after the tick (valid from 12:00:01) would refuse it."""
    start = timezone.now().replace(microsecond=999_999)
    calls = iter([start])

    class Clock:
        @staticmethod
        def now() -> dt.datetime:
            return next(calls, start + dt.timedelta(microseconds=2))

    monkeypatch.setattr(keys, "timezone", Clock)

    key = keys.online_signing_key()

    assert development_root().exists()
    assert key.keyid in listed_signing_keyids()


# --- keys_show ----------------------------------------------------------------------------------


def test_keys_show_names_the_root_to_pin_even_after_rotation_and_the_init_command(offline):
    a_path, a = create_root(offline, "a")
    b_path, b = create_root(offline, "b")
    run("keys_issue_signing", "--root-key", str(a_path))
    run("keys_rotate_root", "--old-root", str(a_path), "--new-root", str(b_path))

    output = run("keys_show", "--server", "https://hotline.example/")
    shown = json.loads(run("keys_show", "--json", "--server", "https://hotline.example/"))

    # Clients walk the chain from keyring v1, so new members pin A, not the current root B.
    assert shown["pin"] == {"root_keyids": [a.keyid], "root_threshold": 1}
    assert shown["current_keyring"]["root_keyids"] == [b.keyid]
    assert shown["client_init"] == (
        f"hashsync-client init --server https://hotline.example/ --root-keyid {a.keyid} "
        "--token-file /etc/hashsync/token"
    )
    assert shown["client_init"] in output and a.keyid in output
    # What it prints verifies: the pinned root leads to the current keyring.
    assert verify_keyring_chain(
        selectors.keyring_envelopes(), pinned_root_keyids={a.keyid}, now=timezone.now()
    ).root_keyids == {b.keyid}


def test_keys_show_without_a_keyring_says_how_to_make_one():
    with pytest.raises(CommandError, match="keys_create_root"):
        run("keys_show")


def test_keys_show_prints_no_private_key_material(offline):
    a_path, _ = create_root(offline, "a")
    run("keys_issue_signing", "--root-key", str(a_path))

    output = run("keys_show") + run("keys_show", "--json")

    assert "PRIVATE" not in output
    assert a_path.read_text().strip() not in output
