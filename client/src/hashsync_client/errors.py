"""What can go wrong in the member client, as exceptions with a stable ``code``.

The split that matters to callers is ``retriable``: a network failure, a 5xx, a 429/503 or an
error page from a proxy may go away on its own, so ``watch`` backs off and tries again; a bad
token or a missing scope will not, so it is reported and the client stops asking. Refusals of
received data (signatures, sizes, digests) are ``VerificationError``: not retried within one
sync (the same server would send the same bytes), but the next sync starts afresh.

Messages never contain the API token or a hash-list value: they end up in logs and in the
member's monitoring.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class. ``str(error)`` is safe to log and show."""

    code = "client_error"
    retriable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(ClientError):
    """The configuration (file, token source, pins) is missing or wrong."""

    code = "config"


class TransportError(ClientError):
    """The request did not get an answer we can use: connection, timeout, 5xx."""

    code = "transport"
    retriable = True


class RetryLater(TransportError):
    """429 or 503: the server asked us to come back after ``retry_after`` seconds."""

    code = "retry_later"

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BadResponse(TransportError):
    """A response that is not what the contract says: not JSON (an HTML error page from a
    proxy), JSON of the wrong shape, an unexpected status. Retriable: proxies recover."""

    code = "bad_response"


class ApiError(ClientError):
    """A JSON error from the server that asking again will not fix (401, 403, 404, 400...)."""

    code = "api_error"

    def __init__(self, message: str, *, code: str | None = None, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


class AuthError(ApiError):
    """401/403: the token is wrong, expired, revoked, lacks a scope, or the member is
    suspended. Retrying cannot help; an operator must act."""

    code = "not_authenticated"


class VersionUnknown(ApiError):
    """409 ``version_unknown``: the server never published the version we say we hold."""

    code = "version_unknown"


class VerificationError(ClientError):
    """Received data is refused: signature, keyring chain, expiry, replay, size, SHA-256,
    bundle format, or a plan that contradicts its signed manifests."""

    code = "verification_failed"


class DeadlineExceeded(TransportError):
    """A request (or a whole sync) ran past its overall deadline: a server trickling bytes
    cannot hold the client longer than the configured time, however often a byte arrives."""

    code = "deadline_exceeded"


class ChainBroken(VerificationError):
    """A manifest's ``previous_manifest_sha256`` contradicts the manifests we hold or were
    given (docs/signing.md §4 check 10): the server's history forked or was rewritten."""

    code = "chain_broken"


class DigestMismatch(VerificationError):
    """After applying a bundle, our list's state digest is not the signed one."""

    code = "digest_mismatch"


class Interrupted(ClientError):
    """A stop was requested (SIGTERM) while applying or downloading; nothing was committed."""

    code = "interrupted"


class LookupRefused(ClientError):
    """The local list is not fit to answer: never synced (or no store at that path), not
    confirmed current for longer than the allowed age, or it failed its last verification.
    A lookup must not say "no match" from a list it cannot vouch for."""

    code = "list_not_usable"


class FeedWithdrawn(LookupRefused):
    """The server no longer offers a feed this lookup would consult (entitlement or licence
    revoked, feed retired): its data no longer answers lookups."""

    code = "feed_withdrawn"


class LogInvalid(VerificationError):
    """The transparency log's part of a plan is refused: a checkpoint not signed by a key of
    the keyring, a manifest the log does not include, a missing proof, too few witnesses."""

    code = "log_invalid"


class LogForked(VerificationError):
    """The server's log does not extend the checkpoint we hold (a split view, a rollback or a
    rewritten leaf). ``proof_path``: the file keeping both signed checkpoints. Stops the sync
    (exit status 5): the server is showing members different histories."""

    code = "log_forked"

    def __init__(self, message: str, *, proof_path: str | None = None) -> None:
        super().__init__(message)
        self.proof_path = proof_path
