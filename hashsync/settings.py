"""hashsync settings: one module, read from the environment.

Two modes, chosen by ``HASHSYNC_ENV``:

* ``development`` (the default): the embedded set-up needs nothing installed — an SQLite file,
  bundle storage in a local directory, Celery tasks run in-process, a generated secret key.
* ``production``: every secret and every external service must be named explicitly; the
  process refuses to start when one is missing instead of silently using a development value.

Every variable is documented in ``deploy/.env.example``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hashsync.env import env_bool, env_choice, env_int, env_list, env_optional, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

HASHSYNC_ENV = env_choice("HASHSYNC_ENV", "development", ("development", "production"))
PRODUCTION = HASHSYNC_ENV == "production"

# Mutable state of the embedded default (SQLite file, local bundle storage, generated keys).
VAR_DIR = Path(env_str("HASHSYNC_VAR_DIR", str(BASE_DIR / "var"))).resolve()


def _required_in_production(name: str, development_default: str) -> str:
    value = env_optional(name)
    if value is None:
        if PRODUCTION:
            raise ImproperlyConfigured(
                f"{name} must be set when HASHSYNC_ENV=production (see deploy/.env.example)."
            )
        return development_default
    return value


def _development_secret_key() -> str:
    # A per-checkout random key, kept in var/ so sessions survive restarts of `make run`.
    # Never used in production: there SECRET_KEY must come from the environment.
    import secrets

    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _required_in_production("SECRET_KEY", "") or _development_secret_key()
if PRODUCTION and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters in production.")

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when HASHSYNC_ENV=production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when HASHSYNC_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "hashsync.api.csrf_failure"

# --- Database -------------------------------------------------------------------------------
_database_url = _required_in_production("DATABASE_URL", f"sqlite:///{VAR_DIR / 'hashsync.sqlite3'}")
try:
    _database = dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from None
if PRODUCTION and _database["ENGINE"].endswith("sqlite3"):
    raise ImproperlyConfigured(
        "DATABASE_URL must point at PostgreSQL when HASHSYNC_ENV=production."
    )
if _database["ENGINE"].endswith("sqlite3"):
    Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A busy SQLite file waits for the writer instead of failing at once; WAL lets readers
    # proceed during a long bulk import.
    _database["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL;",
        # Take the write lock when a transaction starts, so concurrent writers queue up
        # instead of failing on lock upgrade (the audit chain relies on serialised appends).
        "transaction_mode": "IMMEDIATE",
    }
    _database["CONN_MAX_AGE"] = 0
else:
    # A persistent connection (DB_CONN_MAX_AGE) that the server closed meanwhile (a restart, a
    # failover) is replaced before a request uses it, instead of failing that request. It
    # costs a "SELECT 1" per request that uses the database: a round trip and ~0.05-0.1 ms of
    # CPU, 2-10% of the P4 poll's throughput in back-to-back runs.
    _database["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", True)
    if env_bool("DB_PREPARED_STATEMENTS", True):
        # psycopg prepares the statements of cursors that bind parameters server-side: only
        # the sync poll's token query does (sync.auth; Django's own cursors bind
        # client-side and never prepare). PostgreSQL then plans that query once per
        # connection instead of on every poll: 0.48 -> 0.16 ms of its CPU per poll, 970 ->
        # 1,240 polls/s (P4, docs/benchmarks.md). Off behind a pooler in transaction mode.
        _database.setdefault("OPTIONS", {})["prepare_threshold"] = 0
_database["TEST"] = {"NAME": env_optional("TEST_DATABASE_NAME")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Applications ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # The rendered API documentation's scripts and styles, served by the application (no CDN).
    "drf_spectacular_sidecar",
    "drf_spectacular",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_htmx",
    "hashsync",
    "audit",
    "accounts",
    "hashlist",
    "members",
    "distribution",
    "transparency",
    "sync",
    "web",
]

MIDDLEWARE = [
    "hashsync.middleware.RequestIdMiddleware",
    # Requests by route and status class, and their latency (/metrics).
    "hashsync.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The up-to-date poll (304), answered with the same checks before the middleware it does
    # not need; anything else goes on (sync.poll, P4 in docs/benchmarks.md).
    "sync.poll.UpToDatePollMiddleware",
    # The pages' assets are served by the application itself (no CDN, no separate web server).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    # A session is good only once its second factor is checked, and only for so long.
    "accounts.middleware.SignInPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # A page view that meets a database, cache or broker outage answers the 503 page
    # (hashsync.outages); API views answer JSON through hashsync.api.exception_handler.
    "hashsync.outages.OutageMiddleware",
    # Last: turns a lockout noticed anywhere in the request into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hashsync.urls"
WSGI_APPLICATION = "hashsync.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context_processors.web",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out account or address before any password is checked, on
# every path that accepts a password (the login form, the re-confirmation form, HTTP Basic).
# Then Django's ModelBackend, except that a username with NUL (HTTP Basic) is "no such user",
# not a 500.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "hashsync.auth_backends.ModelBackend",
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Development and tests serve assets straight from the source folders; production serves what
# `collectstatic` gathered (deploy/).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- Storage (uploads and, later, bundles) ---------------------------------------------------
MEDIA_ROOT = Path(env_str("HASHSYNC_MEDIA_ROOT", str(VAR_DIR / "media")))
# Bundles are immutable, content-addressed objects: a local directory by default, or S3
# (django-storages + boto3; members then download through short-lived presigned URLs).
HASHSYNC_BUNDLE_STORAGE = env_choice("HASHSYNC_BUNDLE_STORAGE", "local", ("local", "s3"))
if HASHSYNC_BUNDLE_STORAGE == "s3":
    _bundles: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("HASHSYNC_S3_BUCKET"),
            "endpoint_url": env_optional("HASHSYNC_S3_ENDPOINT_URL"),
            "region_name": env_optional("HASHSYNC_S3_REGION"),
            "location": env_str("HASHSYNC_S3_PREFIX", "bundles"),
            "default_acl": None,
            "file_overwrite": True,  # content-addressed: same name, same bytes
            "querystring_auth": True,
            "querystring_expire": env_int("HASHSYNC_S3_URL_EXPIRY", 300, minimum=10, maximum=3600),
            "signature_version": "s3v4",
            "addressing_style": env_choice(
                "HASHSYNC_S3_ADDRESSING", "auto", ("auto", "path", "virtual")
            ),
        },
    }
else:
    _bundles = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("HASHSYNC_BUNDLE_ROOT", str(VAR_DIR / "bundles"))},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "bundles": _bundles,
}
# Uploads larger than this are written to a temporary file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HASHSYNC_MAX_JSON_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)

# --- Bulk import ----------------------------------------------------------------------------
HASHSYNC_IMPORT_MAX_BYTES = env_int("HASHSYNC_IMPORT_MAX_BYTES", 1024 * 1024 * 1024, minimum=1)
# An approved import is applied, and released, as one unit: the release that carries a 1M-row
# import peaked at 5.4 GiB (docs/benchmarks.md, P6 approval). Raise it only with the memory.
HASHSYNC_IMPORT_MAX_ROWS = env_int("HASHSYNC_IMPORT_MAX_ROWS", 1_000_000, minimum=1)
# Applying an approved import is one transaction (hashlist.imports.apply): at 1,000-3,000 rows/s
# on 2 busy cores, 5M rows need up to ~85 minutes, more than the general task limit.
HASHSYNC_IMPORT_APPLY_TIME_LIMIT = env_int("HASHSYNC_IMPORT_APPLY_TIME_LIMIT", 4 * 3600, minimum=60)
# A longer line is a line-level error, skipped without being read whole into memory.
HASHSYNC_IMPORT_MAX_LINE_BYTES = env_int("HASHSYNC_IMPORT_MAX_LINE_BYTES", 64 * 1024, minimum=1024)

# --- Signing and releases -------------------------------------------------------------------
HASHSYNC_SIGNING_KEY_PATH = Path(
    _required_in_production("HASHSYNC_SIGNING_KEY_PATH", str(VAR_DIR / "keys" / "signing.key"))
)
# Manifests expire (freeze protection: clients refuse expired ones); beat re-signs unchanged
# feeds when less than HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS remain.
HASHSYNC_MANIFEST_TTL_HOURS = env_int("HASHSYNC_MANIFEST_TTL_HOURS", 72, minimum=1)
HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS = env_int(
    "HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS", 24, minimum=1
)
if HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS >= HASHSYNC_MANIFEST_TTL_HOURS:
    raise ImproperlyConfigured(
        "HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS must be less than HASHSYNC_MANIFEST_TTL_HOURS."
    )
# /readyz fails (and the ManifestNearExpiry alert fires) while a published feed's newest
# manifest expires within this many hours: beat's re-signing, which starts
# HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS before expiry, has not run for that long. 0: only
# once a manifest has expired.
HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS = env_int(
    "HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS", 12, minimum=0
)
if HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS >= HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS:
    raise ImproperlyConfigured(
        "HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS must be less than "
        "HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS (else /readyz fails before re-signing is due)."
    )
# Seconds between an approval and the release cut it triggers (approvals in that window share
# one release).
HASHSYNC_RELEASE_DEBOUNCE_SECONDS = env_int("HASHSYNC_RELEASE_DEBOUNCE_SECONDS", 1, minimum=0)
# Changes taken by one cut at most; a larger backlog is cut in several consecutive releases.
HASHSYNC_RELEASE_MAX_CHANGES = env_int("HASHSYNC_RELEASE_MAX_CHANGES", 200_000, minimum=1)

# --- Transparency log (docs/transparency.md) ----------------------------------------------
# The log's name, the first line of every checkpoint and the key name its signatures carry.
# Clients remember it from the first checkpoint they accept and refuse any other: choose it
# once (a host name and path of the hotline's) and never change it.
HASHSYNC_TLOG_ORIGIN = env_str("HASHSYNC_TLOG_ORIGIN", "hashsync.localhost/log")
# Witnesses asked to cosign each new checkpoint (C2SP tlog-witness), comma-separated, each
# "<add-checkpoint URL> <witness verifier key>" (the key `hashsync-client witness --init`
# prints). Empty: no witnesses.
HASHSYNC_TLOG_WITNESSES = env_list("HASHSYNC_TLOG_WITNESSES", [])
# Seconds a witness may take to answer.
HASHSYNC_TLOG_WITNESS_TIMEOUT_SECONDS = env_int(
    "HASHSYNC_TLOG_WITNESS_TIMEOUT_SECONDS", 10, minimum=1, maximum=300
)

# --- Sync API (docs/sync-api.md) -------------------------------------------------------------
# The minimum interval between two polls of one feed's plan by one sync client; announced to
# clients, enforced with 429 + Retry-After. Short by default so an approval reaches a watching
# client within seconds (P7); the up-to-date poll is a cheap conditional request.
HASHSYNC_POLL_INTERVAL_SECONDS = env_int(
    "HASHSYNC_POLL_INTERVAL_SECONDS", 5, minimum=0, maximum=86400
)
# Bad tokens from one address: after this many in the window, 429 for the rest of the window.
HASHSYNC_AUTH_FAILURE_LIMIT = env_int("HASHSYNC_AUTH_FAILURE_LIMIT", 20, minimum=1)
HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS = env_int(
    "HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS", 300, minimum=1
)
# Behind a reverse proxy, the header (as in request.META, e.g. HTTP_X_REAL_IP) that carries the
# client's address; unset means REMOTE_ADDR. Only set it if the proxy always overwrites it.
HASHSYNC_CLIENT_IP_HEADER = env_optional("HASHSYNC_CLIENT_IP_HEADER")
if PRODUCTION and not HASHSYNC_CLIENT_IP_HEADER:
    # Behind a proxy every request would come from the proxy's address, and twenty junk
    # tokens from anyone would lock every member out: make the operator say where it is.
    raise ImproperlyConfigured(
        "HASHSYNC_CLIENT_IP_HEADER must be set when HASHSYNC_ENV=production: the request.META "
        "key with the client's address (HTTP_X_REAL_IP behind deploy/nginx.conf), or "
        "REMOTE_ADDR when clients connect directly."
    )
HASHSYNC_LOOKUP_MAX_HASHES = env_int("HASHSYNC_LOOKUP_MAX_HASHES", 1000, minimum=1, maximum=10000)
# sync/match/: the PDQ Hamming distance a request gets unless it asks (Meta's recommended 31),
# and the most it may ask. Up to 32 the exact index answers from about 3,000 buckets; above, by
# a full scan of the feed (exact too, but about N/3,000 times the work: docs/matching.md).
HASHSYNC_MATCH_DEFAULT_THRESHOLD = 31
HASHSYNC_MATCH_MAX_THRESHOLD = env_int("HASHSYNC_MATCH_MAX_THRESHOLD", 31, minimum=0, maximum=256)
# Node-local directory of the matcher's index files (one per feed snapshot, memory-mapped by
# every web process of the node, so they share one copy and a restart maps it in seconds;
# docs/matching.md). Empty: each process builds its index in its own memory.
HASHSYNC_MATCH_INDEX_DIR = env_str("HASHSYNC_MATCH_INDEX_DIR", str(VAR_DIR / "match-index"))
# Per sync client and minute (0: no limit): acks, lookups and feedback together; and bundle
# downloads with StopNCII pages (a replayed page token too). Each may write an audit event; a
# member must not be able to flood the chain.
HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = env_int("HASHSYNC_MEMBER_REQUESTS_PER_MINUTE", 120, minimum=0)
HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE = env_int(
    "HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE", 600, minimum=0
)
# A far-behind client gets the snapshot rather than more than this many deltas.
HASHSYNC_PLAN_MAX_DELTAS = env_int("HASHSYNC_PLAN_MAX_DELTAS", 200, minimum=1, maximum=10000)

# Member events (plans, bundles, acks, lookups) go to one of this many audit lanes, each with
# its own head-row lock: client id mod N picks it (docs/audit.md, "Lanes and anchors"). Raising
# it later is safe; lanes that stop receiving events keep verifying.
HASHSYNC_AUDIT_LANES = env_int("HASHSYNC_AUDIT_LANES", 16, minimum=1, maximum=1024)
# How often beat anchors every member lane's head on the staff lane (lane 0), so a truncated
# member lane is detectable against it.
HASHSYNC_AUDIT_ANCHOR_SECONDS = env_int("HASHSYNC_AUDIT_ANCHOR_SECONDS", 60, minimum=1)

# Pacing and bad-token counters must be shared by every web process: Redis in production.
_CACHE_URL = env_optional("HASHSYNC_CACHE_URL")
if PRODUCTION and not _CACHE_URL:
    raise ImproperlyConfigured(
        "HASHSYNC_CACHE_URL must be set when HASHSYNC_ENV=production (see deploy/.env.example)."
    )
# Seconds a cache operation may wait for Redis (connecting and each reply): while Redis is down
# or restarting, requests answer 503 or fall back (hashsync.outages) after this, not hang.
HASHSYNC_CACHE_TIMEOUT_SECONDS = env_int("HASHSYNC_CACHE_TIMEOUT_SECONDS", 2, minimum=1)
# Retry-After of the 503 answered while PostgreSQL, Redis or the broker is unreachable.
HASHSYNC_OUTAGE_RETRY_AFTER_SECONDS = env_int(
    "HASHSYNC_OUTAGE_RETRY_AFTER_SECONDS", 30, minimum=1, maximum=3600
)
CACHES = {
    "default": (
        {
            "BACKEND": "hashsync.cache.RedisCache",
            "LOCATION": _CACHE_URL,
            "OPTIONS": {
                "socket_connect_timeout": HASHSYNC_CACHE_TIMEOUT_SECONDS,
                "socket_timeout": HASHSYNC_CACHE_TIMEOUT_SECONDS,
            },
        }
        if _CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery ---------------------------------------------------------------------------------
# No broker configured means the embedded default: tasks run in-process, right after the
# transaction that enqueued them commits.
CELERY_BROKER_URL = _required_in_production("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # Eager tasks still build a producer to serialise their arguments; without a URL kombu
    # assumes an AMQP broker on localhost and warns on every task. Nothing is ever sent.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "hashsync")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300, minimum=1)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Fail fast when the broker is down at send time (the caller records the work in the database
# first, and a beat sweeper re-sends what was not delivered) instead of hanging a request.
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
# How often beat asks for a release cut whatever happened to the approvals' own messages.
HASHSYNC_RELEASE_SWEEP_SECONDS = env_int("HASHSYNC_RELEASE_SWEEP_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "import-sweep": {"task": "hashlist.import_sweep", "schedule": 120.0},
    # A safety net: approvals trigger cuts themselves; this takes anything a lost message left.
    # It is also what cuts an approval whose message never reached a broker that was down.
    "release-cut": {
        "task": "distribution.release_cut",
        "schedule": float(HASHSYNC_RELEASE_SWEEP_SECONDS),
    },
    "manifest-resign": {"task": "distribution.manifest_resign", "schedule": 3600.0},
    "snapshot-refresh": {"task": "distribution.snapshot_refresh", "schedule": 3600.0},
    "audit-anchor": {
        "task": "audit.anchor",
        "schedule": float(HASHSYNC_AUDIT_ANCHOR_SECONDS),
    },
}
# Redis redelivers a task whose worker died (acks_late) once it has been unacknowledged for
# visibility_timeout seconds; workers look for such tasks every restore interval x throttle
# seconds. (Beat's minute-by-minute release cut recovers a crashed cut sooner in any case.)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10, minimum=1),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10, minimum=1),
}

# --- Health and metrics (docs/operations.md, Monitoring) -------------------------------------
# /readyz runs its checks concurrently and reports any still running after this long as
# timed out (a broker that accepts connections and never answers must not hang the probe).
HASHSYNC_READYZ_TIMEOUT_SECONDS = env_int(
    "HASHSYNC_READYZ_TIMEOUT_SECONDS", 3, minimum=1, maximum=60
)
# /metrics needs "Authorization: Bearer <this>" when set (at least 24 characters; compare it
# with what Prometheus's scrape config sends). In production without it /metrics is a 404.
HASHSYNC_METRICS_TOKEN = env_optional("HASHSYNC_METRICS_TOKEN")
if HASHSYNC_METRICS_TOKEN is not None and len(HASHSYNC_METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("HASHSYNC_METRICS_TOKEN must be at least 24 characters.")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Basic first: DRF takes the 401 challenge (WWW-Authenticate) from the first class, so
    # a request without credentials gets 401, as HTTP clients expect, rather than 403. With
    # HTTP Basic off (HASHSYNC_STAFF_BASIC_AUTH) that class refuses Basic and challenges Bearer.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.StaffBasicAuthentication",
        "accounts.authentication.StaffTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Last: explains credentials the staff API does not take (a member token, say).
        "hashsync.authentication.StaffCredentialsHint",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hashsync.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "hashsync.parsers.JSONParser",  # DRF's, with deep nesting a 400 rather than a 500
    ],  # views that take uploads add MultiPartParser themselves
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hashsync API",
    "DESCRIPTION": "Curation, review and audit API of hashsync. Errors are JSON objects "
    '`{"error": {"code": ..., "message": ..., "details": ...}}` with a stable code.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for each choice set that several components share; without one, drf-spectacular
    # names it after a hash of its values (Kind604Enum), a name that changes with the choices.
    "ENUM_NAME_OVERRIDES": {
        "HoldingEvidenceEnum": "members.holders.EVIDENCE_VALUES",
        "MemberStatusEnum": "members.models.MemberStatus",
        "FeedbackKindEnum": "members.models.FeedbackKind",
        "FeedbackStatusEnum": "members.models.FeedbackStatus",
    },
    # The rendered documentation (/api/v1/docs/) loads every asset from this application.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Staff sign-in (docs/web.md) ------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "front"
# A session ends after this many minutes without a request, and in any case this many hours
# after the sign-in.
HASHSYNC_SESSION_IDLE_MINUTES = env_int("HASHSYNC_SESSION_IDLE_MINUTES", 30, minimum=1)
HASHSYNC_SESSION_MAX_HOURS = env_int("HASHSYNC_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = HASHSYNC_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True  # the idle clock restarts with every request
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Sensitive actions (tokens, second factor, entitlements, suspensions) ask for the password
# again when the last check is older than this.
HASHSYNC_REAUTH_MINUTES = env_int("HASHSYNC_REAUTH_MINUTES", 30, minimum=1)
# Staff personal API tokens (accounts.authentication): a token lives 90 days unless its owner
# chooses otherwise, and never longer than this.
HASHSYNC_STAFF_TOKEN_MAX_DAYS = env_int(
    "HASHSYNC_STAFF_TOKEN_MAX_DAYS", 365, minimum=1, maximum=3650
)
# HTTP Basic on the staff API: a bare password on every request, with no second factor. For the
# embedded demo and tests only; production takes personal tokens or the session.
HASHSYNC_STAFF_BASIC_AUTH = env_bool("HASHSYNC_STAFF_BASIC_AUTH", not PRODUCTION)
if PRODUCTION and HASHSYNC_STAFF_BASIC_AUTH:
    raise ImproperlyConfigured(
        "HASHSYNC_STAFF_BASIC_AUTH must be off when HASHSYNC_ENV=production: staff use personal "
        "API tokens or the web session there (docs/api.md, Authentication)."
    )
# Reviewers, member administrators and auditors always need a second factor; this makes
# analysts need one too.
HASHSYNC_SECOND_FACTOR_FOR_ALL = env_bool("HASHSYNC_SECOND_FACTOR_FOR_ALL", False)
OTP_TOTP_ISSUER = env_str("HASHSYNC_OTP_ISSUER", "hashsync")
# Lockout (django-axes): after this many failed passwords for one account, or from one client
# address, further attempts are refused for the cool-off time, whatever the password.
AXES_FAILURE_LIMIT = env_int("HASHSYNC_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("HASHSYNC_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
# An attempt during a lockout is refused unchecked and neither counts nor restarts the cool-off
# (axes' default restarts it): the page tells people how long to wait, and a retry with the
# right password must not make that longer. It also keeps the lockout on the trail once.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_USERNAME_CALLABLE = "accounts.lockout.client_username"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Axes' own log lines name the username typed, which may be a mistyped password: the audit
# trail records sign-in failures instead (accounts.signals).
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "csrfmiddlewaretoken"]

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
# Probes and the metrics scraper talk plain HTTP to the node itself: never redirect them to
# HTTPS, should SECURE_SSL_REDIRECT be turned on.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"
# Every script and stylesheet comes from the application itself, and no page has inline script
# or style, so the policy can be strict.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    # hashsync has a host name of its own (hashsync.example.org): nothing below it is served
    # over plain HTTP, so `check --deploy` is clean by default (make prod-check runs it).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    # A request that reached the application over plain HTTP (not through deploy/nginx.conf,
    # which sends X-Forwarded-Proto) is redirected to HTTPS before a token or password could
    # follow it. Probes that call a web node directly on its loopback port are exempt
    # (SECURE_REDIRECT_EXEMPT above).
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)

# --- Logging --------------------------------------------------------------------------------
# Request bodies and query strings are never logged: they may carry hash values or tokens.
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("debug", "info", "warning", "error")).upper()
# json: one JSON object per line with the request id, actor and sync client (hashsync.logs),
# for a log shipper; plain: one readable line. Default json in production, plain elsewhere.
HASHSYNC_LOG_FORMAT = env_choice(
    "HASHSYNC_LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "hashsync.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "hashsync.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": HASHSYNC_LOG_FORMAT,
            "filters": ["request_id"],
            "stream": sys.stderr,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # django.request logs the full path of failed requests; paths never carry hashes here,
        # but keep it at WARNING so 4xx noise does not drown real problems.
        "django.request": {"level": "ERROR"},
        # django-axes names the username typed (perhaps a mistyped password) in its lines;
        # accounts.signals logs sign-in failures and lockouts without it.
        "axes": {"level": "ERROR"},
        # With DEBUG on, Django logs every SQL statement with its parameters at DEBUG, and the
        # parameters of a lookup or a search are hash values: never, whatever LOG_LEVEL says.
        "django.db.backends": {"level": "INFO"},
        # In-process tasks (the embedded default) would log a "Task ... succeeded" line per
        # task into the server's console; a worker's own log keeps them.
        **({"celery.app.trace": {"level": "WARNING"}} if CELERY_TASK_ALWAYS_EAGER else {}),
    },
}
