"""``ctxfy keys``: create, list, revoke and rotate API keys from the command line.

The store is ``CTXFY_KEY_STORE`` (a URL), else SQLite at ``$CTXFY_DATA_DIR/ctxfy.db``
(``CTXFY_DATA_DIR`` defaults to the user data directory, as for ``ctxfy serve``).
``CTXFY_KEY_MAX_TTL`` caps expiry. Every command takes ``--json``. Exit codes: 0 done,
1 refused or failed, 2 usage or configuration error. With ``--json``, results and errors
(``{"error", "type"}``) are the only output on stdout.

Audit events (``key.created``, ...) are log lines on stderr in ``CTXFY_LOG_FORMAT``
(``json`` by default, as for the server) at ``CTXFY_LOG_LEVEL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn, TextIO

from ctxfy.adapters.key_admin import IssuedKey, KeyAdmin, describe_key
from ctxfy.adapters.keystores import open_key_store
from ctxfy.adapters.logging import LogFormat, configure_logging
from ctxfy.adapters.ratelimit import parse_rate
from ctxfy.core.durations import parse_duration
from ctxfy.core.errors import ConfigurationError, CtxfyError
from ctxfy.core.keys import Scope
from ctxfy.settings import key_store_url_from_env

__all__ = ["register", "run_keys_command"]

_TABLE = ("key_id", "name", "scope", "status", "created_at", "expires_at", "last_used_at")


class _KeysParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are JSON on stdout when ``--json`` is given."""

    _json_errors = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._json_errors = "--json" in (sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if self._json_errors:
            print(json.dumps({"error": message, "type": "UsageError"}), file=sys.stdout)
            raise SystemExit(2)
        super().error(message)


def _duration(*, allow_zero: bool) -> Callable[[str], timedelta]:
    def convert(text: str) -> timedelta:
        try:
            return parse_duration(text, allow_zero=allow_zero)
        except CtxfyError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _rate(text: str) -> str:
    try:
        parse_rate(text, "rate")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("rate: ")) from None
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keys`` command group; each leaf sets ``handler=run_keys_command``.

    The caller dispatches with ``args.handler(args, os.environ)``.
    """
    keys = subparsers.add_parser("keys", help="manage API keys", description=__doc__)
    commands = keys.add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND", parser_class=_KeysParser
    )

    def leaf(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
        parser.set_defaults(handler=run_keys_command)
        return parser

    create = leaf("create", "create a key and print it once")
    create.add_argument("--name", required=True, help="a label for the key")
    create.add_argument("--scope", required=True, choices=[s.value for s in Scope])
    create.add_argument(
        "--expires-in",
        metavar="DURATION",
        type=_duration(allow_zero=False),
        help="for example 30d, 12h, 15m",
    )
    create.add_argument(
        "--rate-limit", metavar="RATE", type=_rate, help="override, for example 10/minute"
    )
    leaf("list", "list keys (never their secrets or hashes)")
    revoke = leaf("revoke", "revoke a key now")
    revoke.add_argument("key_id")
    rotate = leaf("rotate", "issue a successor; the old key works until the grace ends")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--grace",
        default=timedelta(0),
        metavar="DURATION",
        type=_duration(allow_zero=True),
        help="default 0s",
    )


def _admin(environ: Mapping[str, str]) -> KeyAdmin:
    url = key_store_url_from_env(environ)  # the server's store, whatever the spelling
    raw_ttl = environ.get("CTXFY_KEY_MAX_TTL", "").strip()
    try:
        max_ttl = parse_duration(raw_ttl) if raw_ttl else None
    except CtxfyError as exc:
        raise ConfigurationError(f"CTXFY_KEY_MAX_TTL={raw_ttl!r} is invalid: {exc}") from None
    return KeyAdmin(open_key_store(url), max_ttl=max_ttl)


def _logging(environ: Mapping[str, str], err: TextIO) -> Callable[[], None]:
    """Send log lines (the audit events) to ``err`` in the configured format and level."""
    level = environ.get("CTXFY_LOG_LEVEL", "").strip() or "INFO"
    raw_format = environ.get("CTXFY_LOG_FORMAT", "").strip() or "json"
    formats: dict[str, LogFormat] = {"json": "json", "console": "console"}
    fmt = formats.get(raw_format)
    if fmt is None:
        raise ConfigurationError(f"CTXFY_LOG_FORMAT={raw_format!r} is invalid: use json or console")
    try:
        return configure_logging(level, fmt, err)
    except ValueError:
        raise ConfigurationError(
            f"CTXFY_LOG_LEVEL={level!r} is invalid: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ) from None


def _print_issued(issued: IssuedKey, out: TextIO, *, as_json: bool, replaces: str = "") -> None:
    if as_json:
        data = issued.as_json() | ({"replaces": replaces} if replaces else {})
        print(json.dumps(data), file=out)
        return
    info = issued.as_json()
    what = f"Rotated {replaces} into" if replaces else "Created"
    print(f"{what} key {info['key_id']} ({info['name']!r}, scope {info['scope']}, ", file=out)
    print(f"expires {info['expires_at'] or 'never'}).\n\n    {info['key']}\n", file=out)
    print("Store this key now: it is shown only once and cannot be recovered.", file=out)


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        print("No keys.", file=out)
        return
    cells = [[str(row[c] or "-") for c in _TABLE] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(_TABLE)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(_TABLE, widths, strict=True)), file=out)
    for row_cells in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=True)), file=out)


async def _run(args: argparse.Namespace, admin: KeyAdmin, out: TextIO) -> None:
    if args.keys_command == "create":
        issued = await admin.create(
            name=args.name,
            scope=Scope.parse(args.scope),
            expires_in=args.expires_in,
            rate_limit=args.rate_limit,
        )
        _print_issued(issued, out, as_json=args.json)
    elif args.keys_command == "list":
        records = await admin.list_keys()
        now = admin.clock()
        rows = [describe_key(r, now) for r in records]
        if args.json:
            print(json.dumps({"keys": rows}), file=out)
        else:
            _print_table(rows, out)
    elif args.keys_command == "revoke":
        record = await admin.revoke(args.key_id)
        if args.json:
            print(json.dumps(describe_key(record, admin.clock())), file=out)
        else:
            print(f"Revoked key {record.key_id} ({record.name!r}).", file=out)
    else:
        issued = await admin.rotate(args.key_id, grace=args.grace)
        _print_issued(issued, out, as_json=args.json, replaces=args.key_id)


def run_keys_command(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run one ``ctxfy keys`` command.

    Args:
        args: Parsed arguments from the parser :func:`register` built.
        environ: Environment (``CTXFY_KEY_STORE``, ``CTXFY_DATA_DIR``, ``CTXFY_KEY_MAX_TTL``).
        out: Where results go.
        err: Where log lines (audit events) and error messages go; with ``--json``,
            errors go to ``out`` as JSON.

    Returns:
        The exit code: 0 done, 1 refused or failed, 2 configuration error.
    """

    async def main() -> None:
        admin = _admin(environ)
        try:
            await _run(args, admin, out)
        finally:
            await admin.store.aclose()

    try:
        undo_logging = _logging(environ, err)
        try:
            asyncio.run(main())
        finally:
            undo_logging()  # writes every queued line
    except (CtxfyError, ValueError) as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}), file=out)
        else:
            print(f"error: {exc}", file=err)
        return 2 if isinstance(exc, ConfigurationError) else 1
    return 0
