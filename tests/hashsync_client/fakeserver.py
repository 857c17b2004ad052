"""A fake hashsync server for the client tests: the member sync API of docs/sync-api.md on a
real HTTP server on 127.0.0.1 (random port), serving real bundles (``write_bundle``), LtHash16
digests, keyrings and manifests signed with real Ed25519 keys, in the server's exact shapes
(``distribution/plans.py``, ``sync/apis.py``, ``distribution/releases.py``'s
``manifest_payload``). Tests control every byte, so they can also make it lie.

No Django: the client must work against any server that follows the contract.

SYNTHETIC DATA ONLY: every hash value here is random bytes (``synthetic_entries``).
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import string
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    BundleHeader,
    Op,
    Record,
    read_bundle,
    write_bundle,
)
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import (
    DeltaRef,
    SigningKey,
    SigningKeyEntry,
    SnapshotRef,
    build_keyring,
    generate_key,
    manifest_payload,
    manifest_sha256,
    parse_timestamp,
    sign_keyring,
    sign_manifest,
)

Key = tuple[str, bytes]  # (algorithm, value)
Entries = dict[Key, int]  # key -> grading code

_KEEP = object()  # sign(): the honest previous_manifest_sha256
_BASE62 = string.digits + string.ascii_letters


def make_token() -> str:
    """A well-formed member token (hsk_ + 40 base62 + base62 CRC-32), like members/tokens.py."""
    body = "".join(secrets.choice(_BASE62) for _ in range(40))
    number = zlib.crc32(body.encode("ascii"))
    check = []
    for _ in range(6):
        number, rest = divmod(number, 62)
        check.append(_BASE62[rest])
    return "hsk_" + body + "".join(reversed(check))


def synthetic_entries(
    count: int,
    *,
    seed: int,
    algorithms: tuple[str, ...] = ("md5", "sha1", "sha256", "pdq"),
) -> Entries:
    """``count`` SYNTHETIC entries: random values of the right length, random gradings."""
    rng = np.random.default_rng(seed)
    entries: Entries = {}
    while len(entries) < count:
        algorithm = algorithms[int(rng.integers(len(algorithms)))]
        value = rng.bytes(ALGORITHM_LENGTHS[algorithm])
        entries[(algorithm, value)] = int(rng.integers(630))
    return entries


def read_bundle_header(data: bytes) -> BundleHeader:
    header, _ = read_bundle(io.BytesIO(data))
    return header


def digest_of(entries: Entries) -> str:
    state = LtHash16()
    state.add(element(a, v, g) for (a, v), g in entries.items())
    return state.hexdigest()


def _sorted_records(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (ALGORITHM_IDS[r.algorithm], r.value))


def build_bundle(kind: str, feed: str, start: int, end: int, records: list[Record]) -> bytes:
    out = io.BytesIO()
    write_bundle(
        out,
        kind=kind,
        feed=feed,
        from_version=start,
        to_version=end,
        records=_sorted_records(records),
    )
    return out.getvalue()


@dataclass
class BundleRef:
    sha256: str
    size: int
    records: int


@dataclass
class FeedVersion:
    version: int
    previous: int | None
    entries: Entries
    delta: BundleRef | None
    snapshot: BundleRef | None
    digest: str  # of ``entries``, computed once: acks compare with it


@dataclass
class SignedManifest:
    version: int
    payload: dict[str, Any]
    envelope: bytes
    sha256: str


@dataclass
class Feed:
    name: str
    versions: list[FeedVersion] = field(default_factory=list)
    manifests: list[SignedManifest] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What a hook sends instead of the honest answer. ``length`` overrides Content-Length
    (None: the body's length; -1: no Content-Length, close the connection at the end)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    trickle: float | None = None  # send the body one byte per this many seconds


Hook = Callable[[Request], Reply | None]


def json_reply(status: int, data: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(data).encode(), headers=dict(headers))


def error_reply(status: int, code: str, message: str = "error", **headers: str) -> Reply:
    body = {"error": {"code": code, "message": message, "details": {}, "request_id": "test"}}
    return json_reply(status, body, **headers)


class FakeHashsync:
    """The server. ``publish`` cuts a feed version; ``hooks`` intercept requests."""

    def __init__(self, *, poll_interval: int = 0, manifest_ttl: timedelta | None = None) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.root = generate_key()
        self.online = generate_key()
        self.manifest_ttl = manifest_ttl or timedelta(hours=72)
        self.poll_interval = poll_interval
        self.token = make_token()
        self.keyrings: list[bytes] = []
        self.issue_keyring(root_keys=[self.root], signers=[self.root], online=[self.online])
        self.feeds: dict[str, Feed] = {}
        self.bundles: dict[str, bytes] = {}
        self.acks: list[tuple[str, int, str]] = []
        self.requests: list[Request] = []
        self.hooks: list[Hook] = []
        self.redirect_bundles_to: str | None = None
        self._lock = threading.Lock()
        self.closing = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> FakeHashsync:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()

    # --- publishing -----------------------------------------------------------------------

    def issue_keyring(
        self,
        *,
        root_keys: list[SigningKey],
        signers: list[SigningKey],
        online: list[SigningKey],
        valid_from: datetime | None = None,
        expires: datetime | None = None,
    ) -> bytes:
        start = valid_from or self.now - timedelta(days=30)
        keyring = build_keyring(
            version=len(self.keyrings) + 1,
            issued_at=start,
            expires_at=expires or self.now + timedelta(days=365),
            root_keys=root_keys,
            root_threshold=1,
            signing_keys=[
                SigningKeyEntry.of(k, valid_from=start, valid_until=self.now + timedelta(days=90))
                for k in online
            ],
        )
        envelope = sign_keyring(keyring, signers)
        self.keyrings.append(envelope)
        return envelope

    def feed(self, name: str) -> Feed:
        return self.feeds.setdefault(name, Feed(name))

    def entries(self, name: str) -> Entries:
        feed = self.feeds[name]
        return dict(feed.versions[-1].entries) if feed.versions else {}

    def publish(
        self,
        name: str,
        entries: Entries,
        *,
        version: int | None = None,
        snapshot: bool | None = None,
        state_digest: str | None = None,
    ) -> int:
        """Cut a version of ``name`` holding exactly ``entries``: its delta from the previous
        version, a snapshot (always for the first), and a signed manifest. ``state_digest``
        lets a test sign a wrong digest."""
        feed = self.feed(name)
        previous = feed.versions[-1] if feed.versions else None
        number = version or (previous.version + 1 if previous else 1)
        delta = None
        if previous is not None:
            records = [
                Record(a, v, Op.UPSERT, g)
                for (a, v), g in entries.items()
                if previous.entries.get((a, v)) != g
            ] + [
                Record(a, v, Op.RETRACTED, 0) for (a, v) in previous.entries.keys() - entries.keys()
            ]
            delta = self._store(build_bundle("delta", name, previous.version, number, records))
        snap = None
        if snapshot or (snapshot is None and previous is None):
            records = [Record(a, v, Op.UPSERT, g) for (a, v), g in entries.items()]
            snap = self._store(build_bundle("snapshot", name, 0, number, records))
        feed.versions.append(
            FeedVersion(
                number,
                previous.version if previous else None,
                dict(entries),
                delta,
                snap,
                digest_of(entries),
            )
        )
        self.sign(name, state_digest=state_digest)
        return number

    def _store(self, data: bytes) -> BundleRef:
        sha = hashlib.sha256(data).hexdigest()
        self.bundles[sha] = data
        return BundleRef(sha, len(data), read_bundle_header(data).record_count)

    def manifest_payload(
        self,
        name: str,
        *,
        issued_at: datetime | None = None,
        expires_at: datetime | None = None,
        state_digest: str | None = None,
        version: FeedVersion | None = None,
    ) -> dict[str, Any]:
        """The manifest distribution/releases.py would sign, laid out by the core's
        ``manifest_payload``."""
        feed = self.feeds[name]
        latest = version or feed.versions[-1]
        snapshot = next(
            (v for v in reversed(feed.versions) if v.snapshot and v.version <= latest.version),
            None,
        )
        issued = issued_at or self.now
        return manifest_payload(
            feed=name,
            version=latest.version,
            previous_manifest_sha256=feed.manifests[-1].sha256 if feed.manifests else None,
            issued_at=issued,
            expires_at=expires_at or issued + self.manifest_ttl,
            entry_count=len(latest.entries),
            state_digest=state_digest or latest.digest,
            delta=(
                DeltaRef(
                    from_version=latest.previous or 0,
                    sha256=latest.delta.sha256,
                    size=latest.delta.size,
                    records=latest.delta.records,
                )
                if latest.delta
                else None
            ),
            snapshot=(
                SnapshotRef(
                    version=snapshot.version,
                    sha256=snapshot.snapshot.sha256,
                    size=snapshot.snapshot.size,
                )
                if snapshot and snapshot.snapshot
                else None
            ),
        )

    def sign(
        self,
        name: str,
        *,
        key: SigningKey | None = None,
        issued_at: datetime | None = None,
        expires_at: datetime | None = None,
        state_digest: str | None = None,
        previous: str | object | None = _KEEP,
    ) -> SignedManifest:
        """Sign and publish the feed's next manifest (a re-signing if the version is unchanged).
        Like the real server, each manifest of a feed is issued after the one it supersedes;
        ``previous`` lets a test sign a broken history link."""
        feed = self.feeds[name]
        if issued_at is None and feed.manifests:
            last = max(parse_timestamp(m.payload["issued_at"]) for m in feed.manifests)
            issued_at = max(self.now, last + timedelta(seconds=1))
        payload = self.manifest_payload(
            name, issued_at=issued_at, expires_at=expires_at, state_digest=state_digest
        )
        if previous is not _KEEP:
            payload["previous_manifest_sha256"] = previous
        signed = SignedManifest(
            payload["version"],
            payload,
            sign_manifest(payload, key or self.online),
            manifest_sha256(payload),
        )
        self.feeds[name].manifests.append(signed)
        return signed

    # --- the API ----------------------------------------------------------------------------

    def plan(self, name: str, from_version: int) -> dict[str, Any] | Reply:
        """The logic of distribution/plans.py's plan_build."""
        feed = self.feeds[name]
        base = {
            "feed": name,
            "from_version": from_version,
            "poll_interval_seconds": self.poll_interval,
            "keyrings": [json.loads(k) for k in self.keyrings],
        }
        if not feed.manifests:
            return {**base, "version": 0, "status": "up_to_date", "manifest": None, "steps": []}
        top = feed.manifests[-1]
        current = top.version
        if from_version > current:
            return error_reply(409, "version_unknown", "discard your copy")
        envelope = json.loads(top.envelope)
        if from_version == current:
            return {
                **base,
                "version": current,
                "status": "up_to_date",
                "manifest": envelope,
                "steps": [],
            }
        by_version = {v.version: v for v in feed.versions}
        chain = self._delta_chain(feed, from_version, current)
        snapshot = top.payload["snapshot"]
        delta_bytes = sum(v.delta.size for v in chain or [] if v.delta)
        use_snapshot = chain is None or (snapshot is not None and delta_bytes > snapshot["size"])
        steps: list[tuple[str, int, int, str, int, int | None]] = []
        if use_snapshot:
            start = snapshot["version"]
            steps.append(("snapshot", 0, start, snapshot["sha256"], snapshot["size"], None))
            chain = self._delta_chain(feed, start, current) if start < current else []
        for fv in chain or []:
            assert fv.delta is not None
            steps.append(
                (
                    "delta",
                    fv.previous or 0,
                    fv.version,
                    fv.delta.sha256,
                    fv.delta.size,
                    fv.delta.records,
                )
            )
        newest: dict[int, bytes] = {}
        for signed in feed.manifests:
            newest[signed.version] = signed.envelope
        newest[current] = top.envelope
        assert all(end in by_version for _, _, end, *_ in steps)
        return {
            **base,
            "version": current,
            "status": "snapshot" if use_snapshot else "deltas",
            "manifest": envelope,
            "steps": [
                {
                    "kind": kind,
                    "from_version": start,
                    "to_version": end,
                    "sha256": sha,
                    "size": size,
                    "records": records,
                    "url": f"/api/v1/sync/bundles/{sha}/",
                    "manifest": json.loads(newest[end]),
                }
                for kind, start, end, sha, size, records in steps
            ],
        }

    @staticmethod
    def _delta_chain(feed: Feed, start: int, end: int) -> list[FeedVersion] | None:
        chain = [v for v in feed.versions if start < v.version <= end]
        if not chain or chain[-1].version != end:
            return None
        position = start
        for fv in chain:
            if fv.delta is None or (fv.previous or 0) != position:
                return None
            position = fv.version
        return chain

    def plan_etag(self, name: str, from_version: int) -> str:
        feed = self.feeds.get(name)
        sha = feed.manifests[-1].sha256 if feed and feed.manifests else "-"
        return '"' + hashlib.sha256(f"{sha}:{from_version}".encode()).hexdigest()[:40] + '"'

    def feed_list(self) -> dict[str, Any]:
        feeds: list[dict[str, Any]] = []
        for name, feed in sorted(self.feeds.items()):
            top = feed.manifests[-1] if feed.manifests else None
            feeds.append(
                {
                    "name": name,
                    "description": "synthetic test feed",
                    "algorithms": [],
                    "version": top.version if top else 0,
                    "entry_count": top.payload["entry_count"] if top else 0,
                    "state_digest": top.payload["state_digest"] if top else None,
                    "manifest_sha256": top.sha256 if top else None,
                    "published": top is not None,
                }
            )
        return {"poll_interval_seconds": self.poll_interval, "feeds": feeds}

    def answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            hooks = list(self.hooks)
        for hook in hooks:
            reply = hook(request)
            if reply is not None:
                return reply
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return error_reply(401, "authentication_failed", "bad token")
        parts = [p for p in request.path.split("/") if p]
        if parts[:3] != ["api", "v1", "sync"]:
            return error_reply(404, "not_found")
        rest = parts[3:]
        if request.method == "GET" and rest == ["feeds"]:
            return json_reply(200, self.feed_list())
        if len(rest) == 3 and rest[0] == "feeds" and rest[1] in self.feeds:
            name = rest[1]
            if request.method == "GET" and rest[2] == "plan":
                from_version = int(request.query.get("from_version", "x"))
                etag = self.plan_etag(name, from_version)
                if request.headers.get("if-none-match") == etag:
                    return Reply(304, b"", headers={"ETag": etag})
                plan = self.plan(name, from_version)
                if isinstance(plan, Reply):
                    return plan
                return json_reply(200, plan, ETag=etag, **{"Cache-Control": "private, no-cache"})
            if request.method == "POST" and rest[2] == "ack":
                data = json.loads(request.body)
                feed = self.feeds[name]
                known = {v.version: v.digest for v in feed.versions}
                if data["version"] not in known:
                    return error_reply(400, "invalid_input", "no such version")
                self.acks.append((name, data["version"], data["state_digest"]))
                if known[data["version"]] == data["state_digest"]:
                    return json_reply(200, {"status": "ok", "version": data["version"]})
                return json_reply(
                    200,
                    {"status": "mismatch", "version": data["version"], "message": "take snapshot"},
                )
        if request.method == "GET" and len(rest) == 2 and rest[0] == "bundles":
            sha = rest[1]
            if sha not in self.bundles:
                return error_reply(404, "not_found")
            if self.redirect_bundles_to:
                return Reply(302, b"", headers={"Location": f"{self.redirect_bundles_to}{sha}"})
            return Reply(
                200,
                self.bundles[sha],
                content_type="application/octet-stream",
                headers={"ETag": f'"{sha}"'},
            )
        return error_reply(404, "not_found")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY each response
            # waits for a delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=url.path,
                    query={k: v[-1] for k, v in parse_qs(url.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server.answer(request)
                self.send_response(reply.status)
                if reply.status != 304:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.length == -1:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    announced = len(reply.body) if reply.length is None else reply.length
                    self.send_header("Content-Length", str(announced))
                    if reply.length is not None and reply.length != len(reply.body):
                        self.send_header("Connection", "close")
                        self.close_connection = True
                self.end_headers()
                if self.command != "HEAD" and reply.body and reply.trickle:
                    self._trickle(reply.body, reply.trickle)
                elif self.command != "HEAD" and reply.body:
                    self.wfile.write(reply.body)
                self.wfile.flush()

            def _trickle(self, body: bytes, interval: float) -> None:
                # Stops when the client hangs up, or when the server is shut down.
                for index in range(len(body)):
                    try:
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                    if server.closing.wait(interval):
                        return

            do_GET = _handle
            do_POST = _handle

        return Handler


class StaticHost:
    """A second origin (another port) that serves bundles and records what it was sent: a
    stand-in for S3 presigned URLs behind a redirect."""

    def __init__(self, bundles: dict[str, bytes]) -> None:
        self.bundles = bundles
        self.requests: list[dict[str, str]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                host.requests.append({k.lower(): v for k, v in self.headers.items()})
                data = host.bundles.get(self.path.rsplit("/", 1)[-1])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/objects/"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
