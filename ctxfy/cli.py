"""The ``ctxfy`` command line: ``serve`` (the default), ``keys`` and ``prompts``.

``python -m ctxfy`` and ``ctxfy serve`` start the server; ``ctxfy keys ...`` manages API
keys; ``ctxfy prompts list`` and ``ctxfy prompts render NAME --arg key=value`` work offline
on the prompt catalog. This is the only module with global side effects (log sinks, the
tracer provider, binding sockets).
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ctxfy import cli_keys
from ctxfy.__about__ import __version__
from ctxfy.core.access import FirstStart, decide_first_start
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.params import validate_arguments
from ctxfy.core.prompt import render_prompt
from ctxfy.prompts import builtin_blocks
from ctxfy.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctxfy",
        description="Context-engineering MCP server and production kit for FastMCP.",
    )
    parser.add_argument("--version", action="version", version=f"ctxfy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the MCP server (the default command)")
    _add_serve_options(serve, default=argparse.SUPPRESS)
    _add_serve_options(parser, default=None)

    cli_keys.register(commands)

    prompts = commands.add_parser("prompts", help="list or render prompts offline")
    prompt_commands = prompts.add_subparsers(dest="prompts_command", metavar="ACTION")
    listing = prompt_commands.add_parser("list", help="list every prompt and its arguments")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    render = prompt_commands.add_parser("render", help="render a prompt to stdout")
    render.add_argument("name", help="the prompt name, e.g. context_stack")
    render.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an argument (repeat for several)",
    )
    return parser


def _add_serve_options(parser: argparse.ArgumentParser, default: object) -> None:
    # The options are accepted before and after ``serve``; SUPPRESS keeps the subcommand's
    # unset options from overwriting values given before it.
    parser.add_argument(
        "--host", default=default, help="address to bind (default 127.0.0.1, CTXFY_HOST)"
    )
    parser.add_argument(
        "--port", type=int, default=default, help="TCP port (default 8000, CTXFY_PORT)"
    )
    parser.add_argument(
        "--transport",
        default=default,
        choices=("http", "stdio"),
        help="streamable HTTP or stdio (default http, CTXFY_TRANSPORT)",
    )


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = Settings.from_env(environ)
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("transport", args.transport))
        if value is not None
    }
    return attrs.evolve(settings, **overrides)


async def _first_start(settings: Settings) -> None:
    """Refuse unsafe starts; on an empty key store, create the bootstrap admin key file."""
    from ctxfy.adapters.key_admin import KeyAdmin  # noqa: PLC0415
    from ctxfy.adapters.keystores import open_key_store  # noqa: PLC0415

    if settings.transport == "stdio":
        return  # no network listener: keys guard HTTP only
    store = open_key_store(settings.key_store_url) if settings.auth else None
    try:
        has_keys = await KeyAdmin(store).has_keys() if store is not None else False
        decision = decide_first_start(
            host=settings.host,
            auth_enabled=settings.auth,
            has_keys=has_keys,
            bootstrap_any_host=settings.bootstrap,
        )
        if decision.action is FirstStart.REFUSE:
            raise ConfigurationError(decision.reason)
        if decision.action is FirstStart.BOOTSTRAP and store is not None:
            # KeyAdmin logs the file's path (audit event key.bootstrap), never the key.
            await KeyAdmin(store).ensure_bootstrap_key(settings.data_dir)
    finally:
        if store is not None:
            await store.aclose()


def _serve(settings: Settings) -> int:
    from ctxfy.adapters.http_server import serve  # noqa: PLC0415 - only serve needs them
    from ctxfy.adapters.logging import configure_logging  # noqa: PLC0415
    from ctxfy.adapters.metrics import build_prometheus_metrics  # noqa: PLC0415
    from ctxfy.adapters.tracing import configure_tracing  # noqa: PLC0415
    from ctxfy.server import build_http_app, build_server  # noqa: PLC0415

    # Under stdio, stdout is the MCP channel: logs go to stderr there.
    sink = sys.stderr if settings.transport == "stdio" else sys.stdout
    undo_logging = configure_logging(settings.log_level, settings.log_format, sink)
    stop_tracing = None
    metrics = build_prometheus_metrics()
    try:
        stop_tracing = configure_tracing(os.environ)
        asyncio.run(_first_start(settings))
        mcp = build_server(settings, metrics=metrics)
        if settings.transport == "stdio":
            mcp.run(transport="stdio", show_banner=False)
            return 0
        app = build_http_app(mcp, settings, metrics=metrics)
        print(
            f"ctxfy {__version__} serving MCP on http://{settings.host}:{settings.port}"
            f"{settings.mcp_path}",
            file=sys.stderr,
        )
        serve(
            app,
            host=settings.host,
            port=settings.port,
            grace_s=settings.shutdown_grace_s,
            header_timeout_s=settings.header_timeout_s,
        )
        return 0
    finally:
        metrics.shutdown()
        if stop_tracing is not None:
            stop_tracing()
        undo_logging()


def _prompts(args: argparse.Namespace, settings: Settings) -> int:
    from ctxfy.server import load_catalog  # noqa: PLC0415

    catalog = load_catalog(settings)
    if args.prompts_command == "render":
        spec = catalog.get(args.name)
        if spec is None:
            raise ConfigurationError(
                f"no prompt named {args.name!r} (known: {', '.join(catalog.names())})"
            )
        raw: dict[str, object] = {}
        for item in args.arg:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigurationError(f"--arg {item!r} must have the form KEY=VALUE")
            raw[key] = value
        result = validate_arguments(spec.params, raw)
        if not result.ok:
            raise ConfigurationError("; ".join(e.message for e in result.errors))
        sys.stdout.write(render_prompt(spec, result.values, builtin_blocks()))
        return 0
    if getattr(args, "json", False):
        data = [{"name": p.name, **p.arguments_schema()} for p in catalog]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return 0
    for spec in catalog:
        arguments = ", ".join(p.name + ("" if p.required else "?") for p in spec.params)
        sys.stdout.write(f"{spec.name}({arguments})  {spec.title or ''}\n")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).
        environ: The environment (default ``os.environ``).

    Returns:
        The process exit code: 0 on success, 2 on a configuration or usage error.
    """
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    if args.command == "keys":
        code: int = args.handler(args, environ)
        return code
    try:
        settings = _settings(args, environ)
        if args.command == "prompts":
            return _prompts(args, settings)
        return _serve(settings)
    except ConfigurationError as exc:
        print(f"ctxfy: error: {exc}", file=sys.stderr)
        return 2
