"""The ``hashsync-client`` command: init, sync, status, export, lookup, verify, exit codes,
and where the token may (and may not) come from."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashsync_client.cli import main
from hashsync_client.config import load_config
from hashsync_client.lookup import file_digests
from tests.hashsync_client.conftest import FEED
from tests.hashsync_client.fakeserver import FakeHashsync, synthetic_entries


@pytest.fixture(autouse=True)
def _cli_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HASHSYNC_TOKEN", raising=False)
    yield
    # main() gives the client's logger a handler on this test's stderr: take it away again.
    package = logging.getLogger("hashsync_client")
    package.handlers.clear()
    package.setLevel(logging.NOTSET)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "etc" / "config.json"


def init(server: FakeHashsync, config_path: Path, tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "--config",
            str(config_path),
            "init",
            "--server",
            server.url,
            "--root-keyid",
            server.root.keyid.upper(),
            "--store",
            str(tmp_path / "data" / "store.sqlite3"),
            *extra,
        ]
    )


def test_init_writes_a_private_configuration_without_the_token(
    server, config_path, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HASHSYNC_TOKEN", server.token)

    assert init(server, config_path, tmp_path) == 0

    text = config_path.read_text()
    assert server.token not in text
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = load_config(config_path)
    assert config.root_keyids == (server.root.keyid,)
    assert config.token_env == "HASHSYNC_TOKEN"
    assert "API token: found" in capsys.readouterr().out


def test_init_refuses_a_token_on_the_command_line(server, config_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        init(server, config_path, tmp_path, "--token", server.token)

    assert exit_info.value.code == 2
    assert "shell history" in capsys.readouterr().err
    assert not config_path.exists()


def test_init_refuses_to_overwrite_without_force(server, config_path, tmp_path):
    assert init(server, config_path, tmp_path) == 0
    assert init(server, config_path, tmp_path) == 2
    assert init(server, config_path, tmp_path, "--force") == 0


def test_init_refuses_a_malformed_root_fingerprint(server, config_path, tmp_path, capsys):
    code = main(
        ["--config", str(config_path), "init", "--server", server.url, "--root-keyid", "abc"]
    )

    assert code == 2
    assert "64 hex digits" in capsys.readouterr().err


def test_sync_status_export_lookup_verify_through_the_command(
    server, config_path, tmp_path, monkeypatch, capsys
):
    token_file = tmp_path / "token"
    token_file.write_text(server.token + "\n")
    token_file.chmod(0o600)
    listed = tmp_path / "synthetic-listed.bin"
    listed.write_bytes(b"synthetic file for the cli test")
    entries = synthetic_entries(30, seed=1)
    entries[("md5", file_digests(listed)["md5"])] = 5
    server.publish(FEED, entries)
    assert init(server, config_path, tmp_path, "--token-file", str(token_file)) == 0
    capsys.readouterr()
    run = ["--config", str(config_path)]

    assert main([*run, "sync", "--no-progress"]) == 0
    assert f"{FEED}: updated v0 -> v1" in capsys.readouterr().out

    assert main([*run, "status", "--json", "--check"]) == 0
    (status,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status["version"] == 1 and status["stale"] is False

    output = tmp_path / "out" / "list.jsonl"
    assert main([*run, "export", "--format", "jsonl", "-o", str(output)]) == 0
    assert len(output.read_text().splitlines()) == len(entries)

    assert main([*run, "lookup", str(listed)]) == 0
    matched = capsys.readouterr().out
    assert "MATCH" in matched
    assert "baseline=not assessed" in matched and "None" not in matched
    assert main([*run, "lookup", "--values", "00" * 16]) == 1
    assert main([*run, "lookup", "--values", "nonsense"]) == 2

    assert main([*run, "verify"]) == 0
    assert server.token not in capsys.readouterr().err

    assert main([*run, "verify", "--json"]) == 0
    (check,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert check["feed"] == FEED and check["ok"] is True

    assert main([*run, "sync", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["feeds"][0]["status"] == "up_to_date"


def test_sync_without_a_token_is_a_configuration_error(server, config_path, tmp_path, capsys):
    assert init(server, config_path, tmp_path) == 0
    capsys.readouterr()

    assert main(["--config", str(config_path), "sync"]) == 2
    assert "HASHSYNC_TOKEN is not set" in capsys.readouterr().err


def test_a_failed_sync_exits_1(server, config_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHSYNC_TOKEN", "hsk_" + "x" * 46)  # well-formed, not the server's
    assert init(server, config_path, tmp_path) == 0

    assert main(["--config", str(config_path), "sync", "--retries", "0"]) == 1
    assert "authentication_failed" in capsys.readouterr().out


def test_status_check_fails_when_nothing_was_synced(server, config_path, tmp_path):
    assert init(server, config_path, tmp_path) == 0

    assert main(["--config", str(config_path), "status", "--check"]) == 1


def test_a_group_readable_token_file_is_warned_about(server, config_path, tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    token_file.chmod(0o644)
    assert init(server, config_path, tmp_path, "--token-file", str(token_file)) == 0

    config = load_config(config_path)
    with caplog.at_level(logging.WARNING):
        assert config.read_token() == server.token

    assert "chmod 600" in caplog.text
    assert server.token not in caplog.text


def test_missing_configuration_says_to_run_init(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.json"), "status"]) == 2
    assert "hashsync-client init" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [None, "init", "sync", "watch", "status", "export", "lookup", "verify", "forget"]
)
def test_every_command_has_help_with_a_description_examples_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"] if command else ["--help"])

    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: hashsync-client" in text
    assert "examples:\n  hashsync-client " in text
    assert "exit status:" in text and "3  lookup refused" in text and "4  a feed" in text
