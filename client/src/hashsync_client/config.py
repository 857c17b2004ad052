"""The client's configuration file and where the API token comes from.

The configuration is a small JSON file written by ``hashsync-client init``. It never holds the
token: only the name of the environment variable or the path of the file to read it from, so
the configuration can be shown, copied and backed up freely and the token never lands in
shell history (``docs/sync-api.md``: "Never put a token in a URL or on a command line").
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hashsync_client.errors import ConfigError
from hashsync_client.tlog.note import SIG_COSIGNATURE_V1, NoteError, parse_verifier_key
from hashsync_client.transparency import WitnessPolicy

logger = logging.getLogger(__name__)

CONFIG_ENV = "HASHSYNC_CLIENT_CONFIG"
DEFAULT_TOKEN_ENV = "HASHSYNC_TOKEN"  # noqa: S105 - a variable name, not a secret
_KEYID_RE = re.compile(r"[0-9a-f]{64}")
_FEED_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A token goes into an HTTP header: printable ASCII only, so it cannot smuggle a header in.
_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,512}")


def default_config_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "hashsync-client" / "config.json"


def default_store_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "hashsync-client" / "hashsync.sqlite3"


def normalise_keyid(text: str) -> str:
    keyid = text.strip().lower()
    if not _KEYID_RE.fullmatch(keyid):
        raise ConfigError(
            "a root key fingerprint is 64 hex digits: the SHA-256 of the raw Ed25519 public key "
            "(docs/signing.md)"
        )
    return keyid


def check_feed_name(name: str) -> str:
    if not _FEED_RE.fullmatch(name):
        raise ConfigError("a feed name is 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return name


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Config:
    """Everything ``sync``, ``watch``, ``status``, ``export`` and ``lookup`` need."""

    server_url: str
    root_keyids: tuple[str, ...]
    root_threshold: int = 1
    token_env: str | None = DEFAULT_TOKEN_ENV
    token_file: str | None = None
    store_path: str = field(default_factory=lambda: str(default_store_path()))
    ca_bundle: str | None = None
    # None: every feed the server offers; otherwise only these.
    feeds: tuple[str, ...] | None = None
    # watch: seconds between syncs; the server's poll_interval_seconds is the floor, so the
    # default (1) means "as often as the server allows": the server drives the pacing, and a
    # change reaches this client within one announced interval of its release.
    interval_seconds: int = 1
    # status: a feed not confirmed current by the server for this long is "stale".
    stale_after_seconds: int = 3600
    # Hard caps on what a (possibly hostile) server can make us download or store.
    max_bundle_bytes: int = 4 << 30
    max_entries: int = 100_000_000
    # Per request: no single wait for bytes may exceed it, and no JSON request may take longer
    # in all (a server trickling one byte a second is cut off here, not after minutes).
    timeout_seconds: float = 30.0
    # A bundle download may take timeout_seconds plus its signed size at this rate, no longer.
    min_download_bytes_per_second: int = 64 << 10
    # A whole sync (every feed, every retry) ends after this long; the next sync resumes.
    sync_deadline_seconds: int = 6 * 3600
    # A newest manifest valid for longer than this (expires_at - issued_at) is refused: a
    # long-lived manifest signed by a key since retired must not keep a client "current".
    max_manifest_lifetime_seconds: int = 31 * 86_400
    # lookup refuses to answer from a feed not confirmed current by a verified sync for longer.
    lookup_max_age_seconds: int = 86_400
    # A feed the server no longer offers: keep its rows (never consulted) instead of deleting.
    keep_withdrawn: bool = False
    # Plain http only for loopback addresses unless this is set (a test rig, never production).
    allow_insecure_http: bool = False
    # Honour HTTPS_PROXY / NO_PROXY / SSL_CERT_FILE from the environment.
    use_env_proxy: bool = True
    # Transparency (docs/transparency.md): accept a log checkpoint only when at least
    # witness_threshold of these witnesses (note verifier keys, name+hash+key) cosigned it.
    witnesses: tuple[str, ...] = ()
    witness_threshold: int = 0

    def __post_init__(self) -> None:
        url = urlsplit(self.server_url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ConfigError("server URL must be an https:// URL, e.g. https://hashsync.example/")
        if url.username or url.password:
            raise ConfigError("server URL must not carry credentials; use the token source")
        if url.query or url.fragment:
            raise ConfigError("server URL must not have a query or fragment")
        if (
            url.scheme == "http"
            and not self.allow_insecure_http
            and not is_loopback_host(url.hostname)
        ):
            raise ConfigError(
                "plain http:// is refused except for loopback addresses: the token and the "
                "list would cross the network unencrypted (use https://)"
            )
        if not self.root_keyids:
            raise ConfigError("at least one pinned root key fingerprint is required")
        object.__setattr__(
            self, "root_keyids", tuple(sorted({normalise_keyid(k) for k in self.root_keyids}))
        )
        if type(self.root_threshold) is not int or not (
            1 <= self.root_threshold <= len(self.root_keyids)
        ):
            raise ConfigError("root threshold must be between 1 and the number of pinned keys")
        if bool(self.token_env) == bool(self.token_file):
            raise ConfigError("give exactly one token source: an environment variable or a file")
        if self.token_env and not _ENV_NAME_RE.fullmatch(self.token_env):
            raise ConfigError("token environment variable name is not a valid name")
        if self.feeds is not None:
            object.__setattr__(self, "feeds", tuple(check_feed_name(f) for f in self.feeds))
        for name in (
            "interval_seconds",
            "stale_after_seconds",
            "max_bundle_bytes",
            "max_entries",
            "min_download_bytes_per_second",
            "sync_deadline_seconds",
            "max_manifest_lifetime_seconds",
            "lookup_max_age_seconds",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{name} must be a positive integer")
        if not isinstance(self.timeout_seconds, int | float) or self.timeout_seconds <= 0:
            raise ConfigError("timeout_seconds must be a positive number")
        object.__setattr__(self, "witnesses", tuple(self.witnesses))
        self.witness_policy()  # refuses malformed keys now, not at the first sync
        if type(self.witness_threshold) is not int or not (
            0 <= self.witness_threshold <= len(self.witnesses)
        ):
            raise ConfigError("witness_threshold must be between 0 and the number of witnesses")

    def witness_policy(self) -> WitnessPolicy:
        try:
            verifiers = tuple(parse_verifier_key(k) for k in self.witnesses)
        except NoteError as exc:
            raise ConfigError(f"witnesses: {exc}") from None
        if any(v.sig_type != SIG_COSIGNATURE_V1 for v in verifiers):
            raise ConfigError("witnesses: a witness key is a cosignature/v1 key (type 0x04)")
        return WitnessPolicy(verifiers, self.witness_threshold)

    @property
    def api_base(self) -> str:
        """The sync API's base URL, ``…/api/v1/``, whether or not the server URL named it."""
        base = self.server_url if self.server_url.endswith("/") else self.server_url + "/"
        return base if base.endswith("/api/v1/") else base + "api/v1/"

    def read_token(self) -> str:
        """The API token from its source. ``ConfigError`` (never showing the token) if absent."""
        if self.token_file:
            path = Path(os.path.expandvars(self.token_file)).expanduser()
            try:
                mode = path.stat().st_mode
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
                raise ConfigError(f"cannot read the token file {path}: {reason}") from None
            if mode & 0o077:
                logger.warning(
                    "token file %s is readable by group or others (mode %o); chmod 600 it",
                    path,
                    mode & 0o777,
                )
            token = text.strip()
            where = f"the token file {path}"
        else:
            assert self.token_env is not None
            token = os.environ.get(self.token_env, "").strip()
            where = f"the environment variable {self.token_env}"
            if not token:
                raise ConfigError(f"no API token: {where} is not set")
        if not _TOKEN_RE.fullmatch(token):
            raise ConfigError(f"the API token in {where} is malformed (printable ASCII expected)")
        if not token.startswith("hsk_"):
            logger.warning(
                "the API token in %s does not start with hsk_; is it the right one?", where
            )
        return token

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["root_keyids"] = list(self.root_keyids)
        data["feeds"] = list(self.feeds) if self.feeds is not None else None
        data["witnesses"] = list(self.witnesses)
        return data

    @classmethod
    def from_json(cls, data: Any, *, where: str = "configuration") -> Config:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
        values = dict(data)
        try:
            if "root_keyids" in values:
                values["root_keyids"] = tuple(values["root_keyids"])
            if values.get("feeds") is not None:
                values["feeds"] = tuple(values["feeds"])
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def load_config(path: Path | None = None) -> Config:
    target = path or default_config_path()
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration at {target}; run `hashsync-client init` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the configuration {target}: {exc}") from None
    return Config.from_json(data, where=str(target))


def save_config(config: Config, path: Path | None = None, *, overwrite: bool = False) -> Path:
    """Write atomically with mode 0600 (it names where the token is, which is worth hiding)."""
    target = path or default_config_path()
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n"
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
