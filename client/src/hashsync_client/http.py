"""The HTTP side of the member sync API (``docs/sync-api.md``), on httpx.

Defensive on purpose, because a member runs this against a network it does not control:

- TLS is verified (a CA bundle can be configured, never switched off); plain ``http://`` only
  for loopback addresses unless the configuration explicitly allows it.
- Every request has timeouts, and an overall deadline checked as bytes arrive (a JSON request
  ``timeout`` seconds, a bundle ``timeout`` plus its size at ``min_download_rate``, never past
  the sync's own deadline), so a server trickling one byte at a time is cut off. Every body is
  read with a hard cap, and a bundle is refused the moment more bytes arrive than its signed
  size (or the ``Content-Length`` announces more).
- Where JSON is expected, anything else (an HTML error page from a proxy or load balancer)
  is refused with a clear error rather than parsed.
- The token goes only to the configured server's origin: a bundle redirect (S3 presigned URL,
  CDN) is followed without the ``Authorization`` header. The token is never logged, and no
  hash-list value is ever put into a URL (bundles are addressed by their own SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from hashsync_client import __version__
from hashsync_client.config import is_loopback_host
from hashsync_client.errors import (
    ApiError,
    AuthError,
    BadResponse,
    ClientError,
    DeadlineExceeded,
    Interrupted,
    RetryLater,
    TransportError,
    VerificationError,
    VersionUnknown,
)
from hashsync_client.http_support import (
    clean,
    describe,
    is_json_type,
    origin,
    parse_retry_after,
    ssl_context,
)

logger = logging.getLogger(__name__)

# A plan carries up to a few hundred manifests of a few KiB each plus the keyring chain.
MAX_JSON_BYTES = 64 << 20
MAX_ERROR_BYTES = 64 << 10
MAX_REDIRECTS = 3
DOWNLOAD_CHUNK = 1 << 16
_FEED_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class JsonResponse:
    """A 2xx JSON answer (``data``), or a 304 (``not_modified``, ``data`` None)."""

    status: int
    data: Any
    etag: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class SyncApi:
    """One member sync client's view of the server. Not thread-safe; one per worker."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        transport: httpx.BaseTransport | None = None,
        min_download_rate: int = 64 << 10,
    ) -> None:
        self._timeout = timeout
        self._min_download_rate = min_download_rate
        # Set by the syncer: no request goes past it (time.monotonic() seconds).
        self.sync_deadline: float | None = None
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._origin = origin(self._base)
        self._allow_http = allow_insecure_http
        self._check_url(self._base)
        self._auth = {"Authorization": f"Bearer {token}"}
        self._client = httpx.Client(
            verify=ssl_context(ca_bundle, trust_env=trust_env),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            # Redirects are followed by hand in download(), which decides where the token goes.
            follow_redirects=False,
            trust_env=trust_env,
            transport=transport,
            headers={"User-Agent": f"hashsync-client/{__version__}"},
        )

    def __repr__(self) -> str:  # never the token
        return f"SyncApi({self._base!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations -----------------------------------------------------------------------

    def feeds(self) -> JsonResponse:
        return self._json("GET", "sync/feeds/", what="feed list")

    def plan(
        self, feed: str, from_version: int, *, etag: str | None = None, log_size: int = 0
    ) -> JsonResponse:
        headers = {"If-None-Match": etag} if etag else {}
        params = {"from_version": str(from_version)}
        if log_size:
            params["log_size"] = str(log_size)  # the size of the log checkpoint we hold
        return self._json(
            "GET",
            f"sync/feeds/{self._feed(feed)}/plan/",
            params=params,
            headers=headers,
            allow_not_modified=True,
            what=f"plan for {feed}",
        )

    def log_checkpoint(self) -> JsonResponse:
        return self._json("GET", "sync/log/checkpoint/", what="log checkpoint")

    def log_consistency(self, from_size: int, size: int) -> JsonResponse:
        return self._json(
            "GET",
            "sync/log/consistency/",
            params={"from_size": str(from_size), "size": str(size)},
            what="log consistency proof",
        )

    def ack(self, feed: str, version: int, state_digest: str) -> JsonResponse:
        return self._json(
            "POST",
            f"sync/feeds/{self._feed(feed)}/ack/",
            body={"version": version, "state_digest": state_digest},
            what=f"ack for {feed}",
        )

    def download(
        self,
        url: str,
        sink: BinaryIO,
        *,
        size: int,
        sha256: str,
        on_progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Write the bundle at ``url`` to ``sink``, refusing it unless it is exactly ``size``
        bytes with this ``sha256``. Never writes more than ``size`` bytes to ``sink``; on any
        error ``sink`` holds garbage and must be discarded."""
        target = urljoin(self._base, url)
        deadline = self._deadline(self._timeout + size / self._min_download_rate, "bundle download")
        for _ in range(MAX_REDIRECTS + 1):
            self._check_url(target)
            # "*/*" too: a server that negotiates (DRF) answers 406 to a lone octet-stream.
            headers = {
                "Accept": "application/octet-stream, */*;q=0.1",
                "Accept-Encoding": "identity",
            }
            if origin(target) == self._origin:
                headers.update(self._auth)
            try:
                with self._client.stream("GET", target, headers=headers) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("location")
                        if not location:
                            raise BadResponse("bundle download: redirect without a Location")
                        target = urljoin(target, location)
                        logger.debug("bundle download redirected to %s", origin(target)[1])
                        continue
                    if response.status_code != 200:
                        raw = self._read_capped(
                            response, MAX_ERROR_BYTES, "bundle download", deadline
                        )
                        self._raise_for(response, raw, "bundle download")
                    self._stream_bundle(response, sink, size, sha256, on_progress, stop, deadline)
                    return
            except httpx.HTTPError as exc:
                raise TransportError(f"bundle download failed: {describe(exc)}") from None
        raise BadResponse(f"bundle download: more than {MAX_REDIRECTS} redirects")

    # --- internals --------------------------------------------------------------------------

    def _deadline(self, seconds: float, what: str) -> float:
        """When this request must be done: ``seconds`` from now, never past the sync's end."""
        now = time.monotonic()
        if self.sync_deadline is not None and now >= self.sync_deadline:
            exc = DeadlineExceeded(f"{what}: the sync's overall deadline has passed")
            exc.retriable = False  # the whole sync is over; the next one starts afresh
            raise exc
        limit = now + seconds
        return limit if self.sync_deadline is None else min(limit, self.sync_deadline)

    @staticmethod
    def _check_deadline(deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"{what}: not complete within its overall deadline")

    @staticmethod
    def _feed(name: str) -> str:
        if not _FEED_RE.fullmatch(name):
            raise ClientError("not a valid feed name", code="invalid_feed")
        return name

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and (self._allow_http or is_loopback_host(parts.hostname or "")):
            return
        raise BadResponse(
            f"refusing to fetch a {parts.scheme or 'relative'}:// URL on "
            f"{parts.hostname or '?'}: only https (or http on loopback)"
        )

    def _stream_bundle(
        self,
        response: httpx.Response,
        sink: BinaryIO,
        size: int,
        sha256: str,
        on_progress: Callable[[int], None] | None,
        stop: threading.Event | None,
        deadline: float,
    ) -> None:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # We asked for identity; decoding it would put a decompressor in front of the cap.
            raise BadResponse(f"bundle download: unexpected Content-Encoding {encoding[:20]}")
        announced = response.headers.get("content-length")
        if announced is not None:
            if not announced.strip().isdigit():
                raise BadResponse("bundle download: malformed Content-Length")
            if int(announced) > size:
                raise VerificationError(
                    f"bundle is announced as {int(announced)} bytes, larger than the "
                    f"{size} signed in its manifest: refused before downloading",
                    code="bundle_too_large",
                )
        digest = hashlib.sha256()
        received = 0
        for chunk in response.iter_raw(DOWNLOAD_CHUNK):
            if stop is not None and stop.is_set():
                raise Interrupted("stopped during a bundle download")
            self._check_deadline(deadline, "bundle download")
            received += len(chunk)
            if received > size:
                raise VerificationError(
                    f"bundle is larger than the {size} bytes signed in its manifest: "
                    "download aborted",
                    code="bundle_too_large",
                )
            digest.update(chunk)
            sink.write(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
        if received < size:
            raise VerificationError(
                f"bundle is truncated: {received} of the {size} bytes signed in its manifest",
                code="bundle_truncated",
            )
        if digest.hexdigest() != sha256:
            raise VerificationError(
                "bundle SHA-256 differs from the one signed in its manifest (tampered or "
                "corrupted in transit)",
                code="bundle_sha256",
            )

    def _json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        allow_not_modified: bool = False,
    ) -> JsonResponse:
        all_headers = {"Accept": "application/json", **self._auth, **(headers or {})}
        deadline = self._deadline(self._timeout, what)
        try:
            with self._client.stream(
                method, self._base + path, params=params, headers=all_headers, json=body
            ) as response:
                etag = response.headers.get("etag")
                if response.status_code == 304 and allow_not_modified:
                    return JsonResponse(304, None, etag)
                ok = response.status_code in (200, 201)
                limit = MAX_JSON_BYTES if ok else MAX_ERROR_BYTES
                raw = self._read_capped(response, limit, what, deadline)
        except httpx.HTTPError as exc:
            raise TransportError(f"{what} failed: {describe(exc)}") from None
        if not ok:
            self._raise_for(response, raw, what)
        content_type = response.headers.get("content-type", "")
        if not is_json_type(content_type):
            raise BadResponse(
                f"{what}: expected JSON, got {clean(content_type, 60) or 'no content type'} "
                f"(HTTP {response.status_code}); an error page from a proxy, or a wrong server "
                "URL?"
            )
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadResponse(f"{what}: the response is not valid JSON") from None
        return JsonResponse(response.status_code, data, etag)

    @staticmethod
    def _read_capped(response: httpx.Response, limit: int, what: str, deadline: float) -> bytes:
        announced = response.headers.get("content-length", "")
        if announced.strip().isdigit() and int(announced) > limit:
            raise BadResponse(f"{what}: response of {int(announced)} bytes exceeds {limit}")
        buffer = bytearray()
        # iter_bytes decodes gzip; capping the decoded size also stops a compression bomb.
        for chunk in response.iter_bytes():
            SyncApi._check_deadline(deadline, what)
            buffer += chunk
            if len(buffer) > limit:
                raise BadResponse(f"{what}: response exceeds {limit} bytes")
        return bytes(buffer)

    @staticmethod
    def _raise_for(response: httpx.Response, raw: bytes, what: str) -> None:
        status = response.status_code
        code: str | None = None
        message = ""
        if is_json_type(response.headers.get("content-type", "")):
            try:
                error = json.loads(raw).get("error")
                code = str(error.get("code"))[:64] if isinstance(error, dict) else None
                message = clean(str(error.get("message", ""))) if isinstance(error, dict) else ""
            except (AttributeError, ValueError, UnicodeDecodeError, RecursionError):
                code = None
        if code is None:
            kind = clean(response.headers.get("content-type", ""), 60) or "no content type"
            description = f"{what}: HTTP {status} with a {kind} body, not a JSON error"
        else:
            description = f"{what}: HTTP {status} {code}" + (f": {message}" if message else "")
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RetryLater(description, code=code or "retry_later", retry_after=retry_after)
        if code is None or status >= 500:
            # Proxies and overloaded servers answer HTML; that usually passes.
            raise BadResponse(description, code="bad_response")
        if status in (401, 403):
            raise AuthError(description, code=code, status=status)
        if status == 409 and code == "version_unknown":
            raise VersionUnknown(description, code=code, status=status)
        raise ApiError(description, code=code, status=status)
