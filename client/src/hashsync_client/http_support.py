"""What ``http.SyncApi`` needs besides requests: TLS contexts, ``Retry-After`` parsing, and
making server-supplied text safe to log."""

from __future__ import annotations

import email.utils
import functools
import os
import re
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from hashsync_client.errors import ConfigError

# A hostile or confused server must not be able to park the client for days with one header.
MAX_RETRY_AFTER = 3600.0
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), clamped
    to 0..``MAX_RETRY_AFTER``; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text[:12]))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def clean(text: str, limit: int = 300) -> str:
    """A server-supplied message made safe to print on one line of a log."""
    return _CONTROL_RE.sub(" ", text)[:limit].strip()


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # One context per trust store per process: building one (loading the CA bundle) costs
    # ~0.1 s, more than a whole up-to-date poll.
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def ssl_context(ca_bundle: str | None = None, *, trust_env: bool = True) -> ssl.SSLContext:
    """Verification always on: the configured CA bundle (file or directory), else
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when the environment is trusted, else certifi's."""
    cafile = capath = None
    if ca_bundle:
        path = Path(ca_bundle).expanduser()
        cafile, capath = (None, str(path)) if path.is_dir() else (str(path), None)
    elif trust_env and os.environ.get("SSL_CERT_FILE"):
        cafile = os.environ["SSL_CERT_FILE"]
    elif trust_env and os.environ.get("SSL_CERT_DIR"):
        capath = os.environ["SSL_CERT_DIR"]
    try:
        return _ssl_context(cafile, capath)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA certificates ({cafile or capath}): {exc}") from None


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def describe(exc: httpx.HTTPError) -> str:
    text = clean(str(exc), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
