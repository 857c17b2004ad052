"""``hashsync-client``: the command line over ``HashsyncClient``.

Exit status (``cli_output.EXIT_CODES``, also in ``--help``): 0 success; 1 a sync failed, a
feed is stale (``status --check``), the local list does not verify, or ``lookup`` matched
nothing (like grep: 0 means something matched); 2 usage or configuration errors; 3 a lookup
refused to answer from a list it cannot vouch for; 4 a feed the server no longer offers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from hashsync_client import __version__
from hashsync_client.api import HashsyncClient
from hashsync_client.cli_output import (
    COMMANDS,
    DESCRIPTION,
    EXIT_FAILED,
    EXIT_FORKED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    EXIT_WITHDRAWN,
    epilog,
    print_checks,
    print_query,
    print_report,
    setup_logging,
    status_line,
)
from hashsync_client.config import (
    DEFAULT_TOKEN_ENV,
    Config,
    check_feed_name,
    default_config_path,
    default_store_path,
    load_config,
    save_config,
)
from hashsync_client.errors import (
    ClientError,
    ConfigError,
    FeedWithdrawn,
    LogForked,
    LookupRefused,
)
from hashsync_client.export import FORMATS, private_output
from hashsync_client.lookup import PDQ_DEFAULT_DISTANCE
from hashsync_client.signing import (
    KeyFormatError,
    generate_key,
    load_private_key,
    write_private_key,
)
from hashsync_client.sync import SyncReport
from hashsync_client.tlog import SIG_COSIGNATURE_V1, NoteError, parse_verifier_key, verifier_key
from hashsync_client.transparency import log_verifier_keys
from hashsync_client.witness import Witness, WitnessState, serve

logger = logging.getLogger("hashsync_client")


class _RefuseTokenArgument(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(
            "refusing --token: a token on the command line lands in shell history and in the "
            "process list. Use --token-env NAME (default HASHSYNC_TOKEN) or --token-file PATH."
        )


def _feed(text: str) -> str:
    try:
        return check_feed_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashsync-client",
        description=DESCRIPTION,
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        help=f"configuration file (default: $HASHSYNC_CLIENT_CONFIG or {default_config_path()})",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        summary, description, _ = COMMANDS[name]
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    init = command("init")
    init.add_argument("--server", required=True, help="server URL, e.g. https://hashsync.example/")
    init.add_argument(
        "--root-keyid",
        action="append",
        required=True,
        metavar="HEX",
        help="pinned root key fingerprint (SHA-256 hex of the raw Ed25519 public key); repeat "
        "for a k-of-n root",
    )
    init.add_argument("--root-threshold", type=int, default=1, metavar="K")
    source = init.add_mutually_exclusive_group()
    source.add_argument(
        "--token-env",
        metavar="NAME",
        help=f"read the token from $NAME (default {DEFAULT_TOKEN_ENV})",
    )
    source.add_argument("--token-file", metavar="PATH", help="read the token from this file")
    init.add_argument("--token", nargs="?", action=_RefuseTokenArgument, help=argparse.SUPPRESS)
    init.add_argument(
        "--store", metavar="PATH", help=f"local store (default {default_store_path()})"
    )
    init.add_argument("--ca-bundle", metavar="PATH", help="CA certificates to verify the server")
    init.add_argument(
        "--feed", action="append", type=_feed, help="sync only this feed (repeatable)"
    )
    init.add_argument(
        "--interval",
        type=int,
        default=1,
        help="watch: seconds between syncs; never below the server's announced poll interval "
        "(default 1: as often as the server allows)",
    )
    init.add_argument(
        "--stale-after", type=int, default=3600, help="status: seconds until a feed is stale"
    )
    init.add_argument("--max-bundle-bytes", type=int, default=4 << 30)
    init.add_argument(
        "--allow-insecure-http", action="store_true", help="allow http:// to a non-loopback host"
    )
    init.add_argument("--force", action="store_true", help="replace an existing configuration")

    sync = command("sync")
    sync.add_argument("--feed", action="append", type=_feed, help="only this feed (repeatable)")
    _progress_options(sync)
    _keep_withdrawn_option(sync)
    sync.add_argument("--retries", type=int, default=3, help="retries of transient failures")
    sync.add_argument("--json", action="store_true", help="the report as one JSON object")

    watch = command("watch")
    watch.add_argument("--interval", type=int, help="seconds between syncs (default: config)")
    _progress_options(watch)
    _keep_withdrawn_option(watch)

    status = command("status")
    status.add_argument("--json", action="store_true", help="one JSON object per feed")
    status.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if any feed is stale, behind or failing; 4 if one was withdrawn",
    )

    export = command("export")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("-o", "--output", type=Path, help="file (mode 0600); default stdout")
    export.add_argument("--feed", action="append", type=_feed, help="only this feed")
    export.add_argument(
        "--te-all",
        action="store_true",
        help="te format: also write entries with no threatexchange type, under hashsync names",
    )

    lookup = command("lookup")
    lookup.add_argument("items", nargs="+", metavar="ITEM", help="file, hash value, or - (stdin)")
    kind = lookup.add_mutually_exclusive_group()
    kind.add_argument("--files", action="store_true", help="every ITEM is a file")
    kind.add_argument("--values", action="store_true", help="every ITEM is a hash value")
    lookup.add_argument("--feed", action="append", type=_feed, help="only this feed")
    lookup.add_argument(
        "--pdq-distance",
        type=int,
        default=PDQ_DEFAULT_DISTANCE,
        help=f"PDQ Hamming distance that still matches (default {PDQ_DEFAULT_DISTANCE})",
    )
    lookup.add_argument("--json", action="store_true", help="one JSON object per item")
    lookup.add_argument(
        "--max-age",
        type=int,
        metavar="SECONDS",
        help="refuse (exit 3) if a feed was not confirmed current by a verified sync within "
        "this long (default: lookup_max_age_seconds, 86400)",
    )

    verify = command("verify")
    verify.add_argument("--json", action="store_true", help="one JSON object per feed")

    checkpoint = command("checkpoint")
    checkpoint.add_argument(
        "--log-keys", action="store_true", help="print the log's note verifier keys instead"
    )

    verify_checkpoint = command("verify-checkpoint")
    verify_checkpoint.add_argument("file", type=Path, metavar="FILE", help="a signed checkpoint")

    witness = command("witness")
    witness.add_argument("--name", required=True, help="the witness's name, e.g. w1.example")
    witness.add_argument("--key", required=True, type=Path, help="its private key file (PEM)")
    witness.add_argument("--init", action="store_true", help="create the key, print its vkey")
    witness.add_argument("--state", type=Path, help="state file (the checkpoints cosigned)")
    witness.add_argument(
        "--log-key", action="append", default=[], metavar="VKEY", help="a log verifier key"
    )
    witness.add_argument("--listen", default="127.0.0.1:8400", metavar="HOST:PORT")

    forget = command("forget")
    forget.add_argument("feeds", nargs="+", type=_feed, metavar="FEED", help="a withdrawn feed")
    return parser


def _keep_withdrawn_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-withdrawn",
        action="store_true",
        default=None,
        help="keep the rows of a feed the server no longer offers (they answer no lookup); "
        "default: delete them (configuration: keep_withdrawn)",
    )


def _progress_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None)
    group.add_argument("--no-progress", dest="progress", action="store_false")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.command, verbose=args.verbose, quiet=args.quiet)
    try:
        if args.command == "init":
            return _init(args)
        if args.command == "witness":
            return _witness(args)
        config = load_config(args.config)
        if getattr(args, "keep_withdrawn", None):
            config = dataclasses.replace(config, keep_withdrawn=True)
        handler = _COMMANDS[args.command]
        with HashsyncClient(config, progress=getattr(args, "progress", False)) as client:
            return handler(client, args)
    except FeedWithdrawn as exc:
        print(f"hashsync-client: lookup refused: {exc}", file=sys.stderr)
        return EXIT_WITHDRAWN
    except LookupRefused as exc:
        print(f"hashsync-client: lookup refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as exc:
        print(f"hashsync-client: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LogForked as exc:
        print(f"hashsync-client: {exc}", file=sys.stderr)
        return EXIT_FORKED
    except ClientError as exc:
        print(f"hashsync-client: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _init(args: argparse.Namespace) -> int:
    config = Config(
        server_url=args.server,
        root_keyids=tuple(args.root_keyid),
        root_threshold=args.root_threshold,
        token_env=None if args.token_file else (args.token_env or DEFAULT_TOKEN_ENV),
        token_file=args.token_file,
        store_path=args.store or str(default_store_path()),
        ca_bundle=args.ca_bundle,
        feeds=tuple(args.feed) if args.feed else None,
        interval_seconds=args.interval,
        stale_after_seconds=args.stale_after,
        max_bundle_bytes=args.max_bundle_bytes,
        allow_insecure_http=args.allow_insecure_http,
    )
    path = save_config(config, args.config, overwrite=args.force)
    print(f"configuration written to {path}")
    print(f"local store: {config.store_path}")
    try:
        config.read_token()
        print("API token: found")
    except ConfigError as exc:
        print(f"API token: not available yet ({exc}); provide it before `sync`")
    return EXIT_OK


def _sync(client: HashsyncClient, args: argparse.Namespace) -> int:
    report = client.sync(args.feed, retries=args.retries)
    print_report(report, as_json=args.json)
    if isinstance(report.error, LogForked):
        return EXIT_FORKED
    if not report.ok:
        return EXIT_FAILED
    return EXIT_WITHDRAWN if report.withdrawn else EXIT_OK


def _watch(client: HashsyncClient, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after the current step (nothing half-applied)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def on_cycle(report: SyncReport) -> None:
        for result in report.results:
            if result.error is None:
                # Changes at INFO; "still up to date" only with -v (status --check monitors).
                logger.log(
                    logging.INFO if result.status == "updated" else logging.DEBUG,
                    "%s: %s at version %d (digest %s)",
                    result.feed,
                    result.status,
                    result.version,
                    (result.state_digest or "")[:16],
                )

    logger.info("hashsync-client %s watching %s", __version__, client.config.server_url)
    client.watch(stop=stop, interval=args.interval, on_cycle=on_cycle)
    logger.info("stopped")
    return EXIT_OK


def _status(client: HashsyncClient, args: argparse.Namespace) -> int:
    statuses = client.status()
    if args.json:
        for item in statuses:
            print(json.dumps({**item.__dict__, "stale_reasons": list(item.stale_reasons)}))
    else:
        if not statuses:
            print("no feeds held yet; run `hashsync-client sync`")
        for item in statuses:
            print(status_line(item))
            if item.last_error:
                print(f"  last error: {item.last_error}")
    if args.check and any(item.withdrawn_at for item in statuses):
        return EXIT_WITHDRAWN  # until acknowledged with `forget`
    failing = any(item.stale or item.last_error for item in statuses) or not statuses
    return EXIT_FAILED if args.check and failing else EXIT_OK


def _forget(client: HashsyncClient, args: argparse.Namespace) -> int:
    for name in args.feeds:
        client.forget(name)
        print(f"{name}: forgotten (its record and any rows kept are deleted)")
    return EXIT_OK


def _export(client: HashsyncClient, args: argparse.Namespace) -> int:
    if args.output is not None:
        with private_output(args.output) as out:
            summary = client.export(out, args.format, feeds=args.feed, te_all=args.te_all)
    else:
        summary = client.export(sys.stdout, args.format, feeds=args.feed, te_all=args.te_all)
    message = f"{summary.rows} rows written"
    if summary.skipped:
        message += f"; {summary.skipped} entries have no threatexchange type (see --te-all)"
    print(message, file=sys.stderr)
    return EXIT_OK


def _lookup_items(args: argparse.Namespace) -> tuple[list[Path], list[str]]:
    items: list[str] = []
    for item in args.items:
        if item == "-":
            items.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            items.append(item)
    files: list[Path] = []
    values: list[str] = []
    for item in items:
        if args.files or (not args.values and Path(item).is_file()):
            files.append(Path(item))
        else:
            values.append(item)
    return files, values


def _lookup(client: HashsyncClient, args: argparse.Namespace) -> int:
    if not 0 <= args.pdq_distance <= 256:
        raise ConfigError("--pdq-distance must be 0..256")
    files, values = _lookup_items(args)
    lookup = client.lookup(args.feed, pdq_distance=args.pdq_distance, max_age_seconds=args.max_age)
    for name in lookup.skipped_withdrawn:
        print(f"hashsync-client: {name} is withdrawn by the server: not consulted", file=sys.stderr)
    queries = lookup.files(files) + lookup.values(values)
    for query in queries:
        if args.json:
            print(json.dumps(query.as_json()))
        else:
            print_query(query)
    if any(query.error for query in queries):
        return EXIT_USAGE
    return EXIT_OK if any(query.matches for query in queries) else EXIT_FAILED


def _verify(client: HashsyncClient, args: argparse.Namespace) -> int:
    checks = client.verify_local()
    print_checks(checks, as_json=args.json)
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED


def _checkpoint(client: HashsyncClient, args: argparse.Namespace) -> int:
    held = client.checkpoint()
    if held is None:
        print("hashsync-client: no checkpoint held yet: sync first", file=sys.stderr)
        return EXIT_FAILED
    if args.log_keys:
        print("\n".join(log_verifier_keys(held)))
    else:
        sys.stdout.write(held.text)
    return EXIT_OK


def _verify_checkpoint(client: HashsyncClient, args: argparse.Namespace) -> int:
    try:
        other = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {args.file}: {exc}") from None
    print(client.compare_checkpoint(other))
    return EXIT_OK


def _witness(args: argparse.Namespace) -> int:
    if args.init:
        key = generate_key()
        try:
            write_private_key(args.key, key)
        except FileExistsError:
            raise ConfigError(f"{args.key} exists; refusing to overwrite a witness key") from None
    else:
        try:
            key = load_private_key(args.key)
        except (OSError, KeyFormatError) as exc:
            raise ConfigError(f"cannot read the witness key {args.key}: {exc}") from None
    vkey = verifier_key(args.name, key.public_key, SIG_COSIGNATURE_V1)
    if args.init:
        print(vkey)
        return EXIT_OK
    if args.state is None or not args.log_key:
        raise ConfigError("a witness needs --state and at least one --log-key")
    try:
        logs = [parse_verifier_key(text) for text in args.log_key]
        witness = Witness(name=args.name, key=key, logs=logs, state=WitnessState(args.state))
    except (NoteError, ValueError) as exc:
        raise ConfigError(f"--log-key: {exc}") from None
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--listen is HOST:PORT")
    server = serve(witness, host, int(port))
    print(f"witness {vkey} listening on {args.listen}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK


_COMMANDS = {
    "checkpoint": _checkpoint,
    "verify-checkpoint": _verify_checkpoint,
    "sync": _sync,
    "watch": _watch,
    "status": _status,
    "export": _export,
    "lookup": _lookup,
    "verify": _verify,
    "forget": _forget,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
