"""The ``ctxfy`` command line: ``serve`` (the default), ``keys`` and ``prompts``.

``python -m ctxfy`` and ``ctxfy serve`` start the server; ``ctxfy keys ...`` manages API
keys; ``ctxfy prompts list`` and ``ctxfy prompts render NAME --arg key=value`` work offline
on the prompt catalog. This is the only module with global side effects (log sinks, the
tracer provider, binding sockets).
"""

import argparse
import asyncio
import errno
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence

from ctxfy import cli_keys
from ctxfy.__about__ import __version__
from ctxfy.core.access import FirstStart, decide_first_start
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.params import validate_arguments
from ctxfy.core.prompt import render_prompt
from ctxfy.prompts import builtin_blocks
from ctxfy.settings import Settings
from ctxfy.settings_env import FlagOverlay, unknown_variables


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
    parser.add_argument("--port", default=default, help="TCP port (default 8000, CTXFY_PORT)")
    parser.add_argument(
        "--transport",
        default=default,
        choices=("http", "stdio"),
        help="streamable HTTP or stdio (default http, CTXFY_TRANSPORT)",
    )


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    # Flags override their variables but pass the same checks; errors name the flag.
    flags = {
        variable: (flag, value)
        for variable, flag, value in (
            ("CTXFY_HOST", "--host", args.host),
            ("CTXFY_PORT", "--port", args.port),
            ("CTXFY_TRANSPORT", "--transport", args.transport),
        )
        if value is not None
    }
    return Settings.from_env(FlagOverlay(environ, flags))


class _CannotStart(Exception):
    """The server could not start listening (exit code 3)."""


def _netloc(host: str, port: int) -> str:
    """``host:port`` as in a URL: an IPv6 address in brackets (``[::1]:8000``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _bind_and_release(host: str, port: int) -> None:
    # Exactly uvicorn's bind (``loop.create_server(host=, port=)``): every address the
    # name resolves to, SO_REUSEADDR, IPV6_V6ONLY on IPv6 sockets, address families the
    # machine lacks skipped.
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host=host, port=port)
    server.close()
    await server.wait_closed()


def _check_address(host: str, port: int) -> None:
    """Refuse to start, with a clear message, when ``host:port`` cannot be bound.

    A probe before uvicorn binds, so that the banner is not printed for a server that is
    not going to listen; uvicorn's own failure (a race with another process) still ends in
    exit code 3. Port 0 (any free port) needs no probe.
    """
    if port == 0:
        return
    try:
        asyncio.run(_bind_and_release(host, port))
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or not exc.errno:
            reason = exc.strerror or str(exc)  # e.g. a name that does not resolve
        else:
            reason = os.strerror(exc.errno)  # asyncio's message repeats the address
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process listens there: stop it or choose --port/CTXFY_PORT)"
        raise _CannotStart(f"cannot listen on {_netloc(host, port)}: {reason}") from None


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
        if settings.transport == "http":
            _check_address(settings.host, settings.port)  # before a bootstrap key is written
        stop_tracing = configure_tracing(os.environ)
        asyncio.run(_first_start(settings))
        mcp = build_server(settings, metrics=metrics)
        if settings.transport == "stdio":
            mcp.run(transport="stdio", show_banner=False)
            return 0
        app = build_http_app(mcp, settings, metrics=metrics)
        where = (
            f"http://{_netloc(settings.host, settings.port)}{settings.mcp_path}"
            if settings.port
            else f"{settings.mcp_path} at {settings.host}, on a free port the system picks"
        )
        print(f"ctxfy {__version__} serving MCP on {where}", file=sys.stderr)
        try:
            serve(
                app,
                host=settings.host,
                port=settings.port,
                grace_s=settings.shutdown_grace_s,
                header_timeout_s=settings.header_timeout_s,
            )
        except SystemExit as exc:  # uvicorn exits 3 when it cannot bind or start the app
            if exc.code in (0, None):
                return 0
            raise _CannotStart("the server stopped at start-up; the log above says why") from None
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
        The process exit code: 0 on success (and after a clean stop on SIGTERM or
        Ctrl-C), 2 on a configuration or usage error (bad setting, flag or prompt file),
        3 when the server cannot start listening (address in use, cannot bind, the
        application failed to start). An unexpected error exits 1 with a traceback.
    """
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    for warning in unknown_variables(environ):
        print(f"ctxfy: warning: {warning}", file=sys.stderr)
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
    except _CannotStart as exc:
        print(f"ctxfy: error: {exc}", file=sys.stderr)
        return 3
