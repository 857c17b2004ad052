"""Configuration from the environment: the typed readers fail loudly on values they cannot
interpret, and production mode refuses to start without its secrets and services.

The production checks run ``django.setup()`` in a subprocess, because settings are read once
per process. No connection is made at setup, so the PostgreSQL and Redis URLs need not answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hashsync.env import env_bool, env_choice, env_int, env_list, env_optional, env_str

ROOT = Path(__file__).resolve().parents[2]
# The interpreter running the tests (.venv/bin/python under `make test`), so CI venvs work too.
PYTHON = sys.executable

# --- env_bool -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_env_bool_reads_the_accepted_spellings(raw, expected):
    assert env_bool("FLAG", not expected, environ={"FLAG": raw}) is expected


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_returns_the_default_when_unset(default):
    assert env_bool("FLAG", default, environ={}) is default


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "yes please", "enabled"])
def test_env_bool_refuses_anything_else_and_names_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="HASHSYNC_SOME_FLAG"):
        env_bool("HASHSYNC_SOME_FLAG", False, environ={"HASHSYNC_SOME_FLAG": raw})


# --- env_int ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("42", 42), (" 7 ", 7), ("-3", -3), ("0", 0)])
def test_env_int_reads_integers(raw, expected):
    assert env_int("N", 99, environ={"N": raw}) == expected


@pytest.mark.parametrize("environ", [{}, {"N": ""}, {"N": "   "}])
def test_env_int_returns_the_default_when_unset_or_empty(environ):
    assert env_int("N", 99, environ=environ) == 99


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10", "12 monkeys"])
def test_env_int_refuses_non_integers_and_names_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="HASHSYNC_WORKERS"):
        env_int("HASHSYNC_WORKERS", 1, environ={"HASHSYNC_WORKERS": raw})


def test_env_int_enforces_its_bounds_and_names_the_variable():
    assert env_int("N", 1, minimum=1, maximum=10, environ={"N": "10"}) == 10
    assert env_int("N", 1, minimum=1, maximum=10, environ={"N": "1"}) == 1
    with pytest.raises(ImproperlyConfigured, match=r"HASHSYNC_LIMIT must be >= 1"):
        env_int("HASHSYNC_LIMIT", 5, minimum=1, environ={"HASHSYNC_LIMIT": "0"})
    with pytest.raises(ImproperlyConfigured, match=r"HASHSYNC_LIMIT must be <= 10"):
        env_int("HASHSYNC_LIMIT", 5, maximum=10, environ={"HASHSYNC_LIMIT": "11"})


def test_env_int_checks_the_default_against_its_bounds_too():
    with pytest.raises(ImproperlyConfigured, match="HASHSYNC_LIMIT"):
        env_int("HASHSYNC_LIMIT", 0, minimum=1, environ={})


# --- env_list -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.example.org", ["a.example.org"]),
        ("a.example.org, b.example.org", ["a.example.org", "b.example.org"]),
        (" a ,, b , ", ["a", "b"]),
        ("", []),
        (" , ", []),
    ],
)
def test_env_list_splits_on_commas_and_drops_blanks(raw, expected):
    assert env_list("HOSTS", ["default"], environ={"HOSTS": raw}) == expected


def test_env_list_returns_a_copy_of_the_default_when_unset():
    default = ["localhost"]
    value = env_list("HOSTS", default, environ={})
    assert value == ["localhost"]
    value.append("changed")
    assert default == ["localhost"]


# --- env_choice ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("production", "production"), (" Production ", "production")]
)
def test_env_choice_reads_a_choice_in_any_case(raw, expected):
    choices = ("development", "production")
    assert env_choice("MODE", "development", choices, environ={"MODE": raw}) == expected


def test_env_choice_returns_the_default_when_unset():
    assert env_choice("MODE", "development", ("development", "production"), environ={}) == (
        "development"
    )


@pytest.mark.parametrize("raw", ["staging", "prod", "", "development,production"])
def test_env_choice_refuses_anything_else_and_names_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="HASHSYNC_MODE") as caught:
        env_choice(
            "HASHSYNC_MODE",
            "development",
            ("development", "production"),
            environ={"HASHSYNC_MODE": raw},
        )
    assert "development, production" in str(caught.value)


# --- env_str / env_optional ---------------------------------------------------------------------


def test_env_str_requires_a_value_when_it_has_no_default():
    assert env_str("NAME", environ={"NAME": "x"}) == "x"
    assert env_str("NAME", "fallback", environ={}) == "fallback"
    with pytest.raises(ImproperlyConfigured, match="HASHSYNC_REQUIRED_THING"):
        env_str("HASHSYNC_REQUIRED_THING", environ={})


@pytest.mark.parametrize(
    ("environ", "expected"), [({}, None), ({"X": "  "}, None), ({"X": " v "}, "v")]
)
def test_env_optional_treats_blank_as_unset(environ, expected):
    assert env_optional("X", environ=environ) == expected


# --- production refuses to start ----------------------------------------------------------------

PRODUCTION_ENV = {
    "HASHSYNC_ENV": "production",
    "SECRET_KEY": "synthetic-test-secret-key-" + "k" * 40,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
    "HASHSYNC_SIGNING_KEY_PATH": "/run/secrets/hashsync-test-signing.key",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "ALLOWED_HOSTS": "hashsync.example.org",
    "HASHSYNC_CACHE_URL": "redis://127.0.0.1:6379/14",
    "HASHSYNC_CLIENT_IP_HEADER": "HTTP_X_REAL_IP",
}
REQUIRED_IN_PRODUCTION = [
    "SECRET_KEY",
    "DATABASE_URL",
    "HASHSYNC_SIGNING_KEY_PATH",
    "CELERY_BROKER_URL",
    "ALLOWED_HOSTS",
    "HASHSYNC_CACHE_URL",
    "HASHSYNC_CLIENT_IP_HEADER",
]
# Variables the runner's own environment might set that would change the outcome.
CONTROLLED = {
    *PRODUCTION_ENV,
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "HASHSYNC_VAR_DIR",
    "HASHSYNC_STAFF_BASIC_AUTH",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    # Set while a browser test's Playwright lives in this worker (tests/browser/conftest.py);
    # a deploy check in a child that inherited it fails with async.E001.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}

SHOW_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
    "s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE)"
)


def _setup(
    overrides: dict[str, str],
    *,
    drop: tuple[str, ...] = (),
    code: str = SHOW_SETTINGS,
    base: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(PRODUCTION_ENV if base is None else base)
    env.update(overrides)
    for name in drop:
        env.pop(name, None)
    env["DJANGO_SETTINGS_MODULE"] = "hashsync.settings"
    return subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_starts_when_everything_is_set():
    result = _setup({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "False",
        "['hashsync.example.org']",
        "True",
    ]


@pytest.mark.parametrize("name", REQUIRED_IN_PRODUCTION)
def test_production_refuses_to_start_without(name):
    result = _setup({}, drop=(name,))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


@pytest.mark.parametrize("name", REQUIRED_IN_PRODUCTION)
def test_production_treats_a_blank_value_as_missing(name):
    result = _setup({name: "   "})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_production_refuses_an_sqlite_database():
    result = _setup({"DATABASE_URL": "sqlite:////tmp/hashsync-should-not-exist.sqlite3"})
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_production_refuses_a_short_secret_key_without_printing_it():
    short = "synthetic-short-key"
    result = _setup({"SECRET_KEY": short})
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 32 characters" in result.stderr
    assert short not in result.stderr


def test_production_refuses_debug():
    result = _setup({"DEBUG": "1"})
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


@pytest.mark.parametrize(("name", "value"), [("HASHSYNC_ENV", "staging"), ("DEBUG", "perhaps")])
def test_a_value_that_cannot_be_read_stops_the_process(name, value):
    result = _setup({name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_development_starts_with_nothing_set(tmp_path):
    result = _setup(
        {"HASHSYNC_ENV": "development", "HASHSYNC_VAR_DIR": str(tmp_path)},
        drop=tuple(REQUIRED_IN_PRODUCTION),
        base={},
    )
    assert result.returncode == 0, result.stderr
    debug, engine, eager, *_ = result.stdout.split()
    assert (debug, engine, eager) == ("True", "django.db.backends.sqlite3", "True")
    # The generated development secret lives in the var directory, private to its owner.
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o077 == 0


# --- HTTP Basic on the staff API: the embedded demo and tests only -----------------------------

SHOW_BASIC = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.HASHSYNC_STAFF_BASIC_AUTH)"
)


def test_production_refuses_to_start_with_http_basic_for_staff():
    result = _setup({"HASHSYNC_STAFF_BASIC_AUTH": "1"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "HASHSYNC_STAFF_BASIC_AUTH must be off" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [(None, "True"), ("0", "False"), ("1", "True")])
def test_development_has_http_basic_unless_turned_off(tmp_path, value, expected):
    overrides = {"HASHSYNC_ENV": "development", "HASHSYNC_VAR_DIR": str(tmp_path)}
    if value is not None:
        overrides["HASHSYNC_STAFF_BASIC_AUTH"] = value
    result = _setup(overrides, drop=tuple(REQUIRED_IN_PRODUCTION), base={}, code=SHOW_BASIC)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_production_has_no_http_basic_by_default():
    result = _setup({}, code=SHOW_BASIC)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_manifest_expiry_alert_must_come_after_re_signing_is_due():
    result = _setup(
        {
            "HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS": "24",
            "HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS": "24",
        }
    )
    assert result.returncode != 0
    assert "HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS must be less than" in result.stderr


LOG_A_LINE = (
    "import django, logging; django.setup(); "
    "logging.getLogger('hashsync.check').warning('hello %s', 'there')"
)


def test_production_logs_json_lines_by_default_and_plain_on_request():
    result = _setup({}, code=LOG_A_LINE)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "hashsync.check",
        "hello there",
    )

    result = _setup({"HASHSYNC_LOG_FORMAT": "plain"}, code=LOG_A_LINE)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("WARNING hashsync.check [-] hello there")


SHOW_DEPLOY_CHECK = (
    "import django; django.setup(); from django.core.management import call_command; "
    "call_command('check', deploy=True, fail_level='WARNING')"
)


def test_production_defaults_pass_the_deploy_check():
    # make prod-check runs `check --deploy --fail-level WARNING` against the real processes;
    # the defaults alone must already pass it (HSTS with subdomains and preload, SSL redirect).
    result = _setup({}, code=SHOW_DEPLOY_CHECK)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout + result.stderr


SHOW_REDIRECTS = (
    "import django; django.setup(); from django.test import RequestFactory; "
    "from django.middleware.security import SecurityMiddleware; "
    "m = SecurityMiddleware(lambda r: None); f = RequestFactory(); "
    "print(*[getattr(m.process_request(f.get(p, HTTP_HOST='hashsync.example.org', **h)), "
    "'status_code', None) for p, h in [('/login/', {}), ('/healthz', {}), ('/readyz', {}), "
    "('/login/', {'HTTP_X_FORWARDED_PROTO': 'https'})]])"
)


def test_production_redirects_plain_http_except_probes_and_requests_through_the_proxy():
    result = _setup({}, code=SHOW_REDIRECTS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["301", "None", "None", "None"]


def test_production_ssl_redirect_and_hsts_scope_can_be_turned_off():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    off = {
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "0",
        "SECURE_HSTS_PRELOAD": "0",
    }
    result = _setup(off, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]
