"""Request-scoped memory of the prompt or tool a request addresses, and of its validation.

In FastMCP 3 each ``await server.get_prompt(name)`` (or ``get_tool``) applies visibility
and session transforms and the component's own auth check, about 35-40 µs. Several ctxfy
layers need the component of the same request (the scope check, the argument validator,
the REST façade), so the first one looks it up through FastMCP, with FastMCP's semantics,
and the others reuse that answer:

- :func:`find_prompt` / :func:`find_tool` remember what they found for one request: the
  FastMCP :class:`~fastmcp.server.context.Context` of the request (``render_prompt`` and
  ``call_tool`` create a fresh one per call, and every middleware of the chain sees it).
  A component is never handed to another request: the memory is keyed on the identity of
  that ``Context`` (held weakly, so a later ``Context`` cannot be mistaken for it) and on
  the server, the kind, the name and the requested version.
- :func:`request_scope` lets code that runs before FastMCP creates the ``Context`` (the
  REST façade, which must know the component's scope before it dispatches) share its
  lookup with the chain it then calls: the scope is adopted by the first request ``Context``
  that looks something up inside it. A REST request has no MCP session, so the session
  transforms that make FastMCP's answer depend on the ``Context`` do not apply to it.
- :func:`validated_arguments` / :func:`prevalidated_values` hand arguments the
  :class:`~ctxfy.adapters.validation.RequestValidationMiddleware` has already validated
  for a ctxfy component to that component, so it does not validate them a second time.
"""

import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import attrs
import mcp.types as mt
from fastmcp import FastMCP
from fastmcp.prompts import Prompt
from fastmcp.server.context import Context
from fastmcp.server.middleware import MiddlewareContext
from fastmcp.server.middleware.authorization import _requested_version
from fastmcp.tools import Tool
from fastmcp.utilities.versions import VersionSpec

from ctxfy.core.params import ParamSpec, ValidationResult, check_request_limits, validate_arguments

__all__ = [
    "find_prompt",
    "find_tool",
    "prevalidated_values",
    "request_prompt",
    "request_scope",
    "request_tool",
    "requested_version",
    "validate_once",
    "validated_arguments",
]

_C = TypeVar("_C", Prompt, Tool)
_Key = tuple[str, str, tuple[str | None, str | None, str | None] | None]


class _Memo:
    """What one request has looked up; ``owner`` is its ``Context`` (``None``: not bound yet).

    Both references are weak: the memo of a request may outlive it in the task's context
    (a middleware sets it and cannot reset it) and must not keep its server alive.
    """

    __slots__ = ("found", "owner", "server")

    def __init__(self, server: FastMCP[Any], owner: Context | None) -> None:
        self.server = weakref.ref(server)
        self.owner = weakref.ref(owner) if owner is not None else None
        self.found: dict[_Key, Any] = {}


_MEMO: ContextVar[_Memo | None] = ContextVar("ctxfy_component_memo", default=None)


def requested_version(meta: mt.RequestParams.Meta | None) -> VersionSpec | None:
    """Return the version a request asks for in its ``_meta``, as FastMCP reads it.

    FastMCP's ``AuthMiddleware`` and its request handlers resolve the same version, so the
    component checked is the one that serves. (This wraps FastMCP 3.4's private
    ``_requested_version``, so that the two cannot drift apart.)
    """
    return _requested_version(meta)


@contextmanager
def request_scope(server: FastMCP[Any]) -> Iterator[None]:
    """Share lookups made before a request's ``Context`` exists with that request's chain.

    Args:
        server: The server the lookups go to.

    Example:
        ```python
        with request_scope(mcp):
            prompt = await find_prompt(mcp, None, name)  # looked up once ...
            await mcp.render_prompt(name, arguments)  # ... reused by ctxfy's middleware
        ```
    """
    token = _MEMO.set(_Memo(server, None))
    try:
        yield
    finally:
        _MEMO.reset(token)


def _memo_for(server: FastMCP[Any], context: Context | None) -> _Memo | None:
    memo = _MEMO.get()
    if memo is not None and memo.server() is not server:
        memo = None
    if context is None:
        # Outside a request's Context only an open, unbound scope may remember.
        return memo if memo is not None and memo.owner is None else None
    if memo is not None:
        if memo.owner is None:
            memo.owner = weakref.ref(context)
            return memo
        if memo.owner() is context:
            return memo
    memo = _Memo(server, context)
    _MEMO.set(memo)
    return memo


async def _find(
    server: FastMCP[Any],
    context: Context | None,
    key: _Key,
    fetch: Callable[[], Awaitable[_C | None]],
) -> _C | None:
    memo = _memo_for(server, context)
    if memo is None:
        return await fetch()
    if key in memo.found:
        found: _C | None = memo.found[key]
        return found
    component = await fetch()
    memo.found[key] = component
    return component


def _version_key(version: VersionSpec | None) -> tuple[str | None, str | None, str | None] | None:
    return None if version is None else (version.gte, version.lt, version.eq)


async def find_prompt(
    server: FastMCP[Any],
    context: Context | None,
    name: str,
    version: VersionSpec | None = None,
) -> Prompt | None:
    """Return ``await server.get_prompt(name, version)``, looked up once per request.

    Args:
        server: The server.
        context: The request's FastMCP context (``MiddlewareContext.fastmcp_context``);
            ``None`` outside a request, where only a :func:`request_scope` remembers.
        name: The prompt's name.
        version: The version asked for (see :func:`requested_version`).

    Returns:
        The prompt, or ``None`` when it does not exist or this request may not see it.
    """
    return await _find(
        server,
        context,
        ("prompt", name, _version_key(version)),
        lambda: server.get_prompt(name, version=version),
    )


async def find_tool(
    server: FastMCP[Any],
    context: Context | None,
    name: str,
    version: VersionSpec | None = None,
) -> Tool | None:
    """Return ``await server.get_tool(name, version)``, looked up once per request.

    Args:
        server: The server.
        context: The request's FastMCP context; see :func:`find_prompt`.
        name: The tool's name.
        version: The version asked for (see :func:`requested_version`).

    Returns:
        The tool, or ``None`` when it does not exist or this request may not see it.
    """
    return await _find(
        server,
        context,
        ("tool", name, _version_key(version)),
        lambda: server.get_tool(name, version=version),
    )


async def request_prompt(
    context: MiddlewareContext[mt.GetPromptRequestParams],
) -> Prompt | None:
    """Return the prompt a ``prompts/get`` middleware context addresses (``None``: none).

    The request's name and requested version, through :func:`find_prompt`; ``None`` as
    well when the context has no FastMCP context.
    """
    fastmcp = context.fastmcp_context
    if fastmcp is None:
        return None
    version = requested_version(context.message.meta)
    return await find_prompt(fastmcp.fastmcp, fastmcp, context.message.name, version)


async def request_tool(context: MiddlewareContext[mt.CallToolRequestParams]) -> Tool | None:
    """Return the tool a ``tools/call`` middleware context addresses; see :func:`request_prompt`."""
    fastmcp = context.fastmcp_context
    if fastmcp is None:
        return None
    version = requested_version(context.message.meta)
    return await find_tool(fastmcp.fastmcp, fastmcp, context.message.name, version)


@attrs.frozen(eq=False)
class _Validated:
    spec: object
    arguments: Mapping[str, Any]
    values: Mapping[str, object]


_VALIDATED: ContextVar[_Validated | None] = ContextVar("ctxfy_validated_arguments", default=None)


@contextmanager
def validated_arguments(
    spec: object, arguments: Mapping[str, Any], values: Mapping[str, object]
) -> Iterator[None]:
    """Record, while the block runs, that ``arguments`` for ``spec`` validated to ``values``.

    Args:
        spec: The declaration they were validated against (a ``PromptSpec`` or ``ToolSpec``).
        arguments: The arguments passed on to the component.
        values: What the core validator made of them.
    """
    token = _VALIDATED.set(_Validated(spec, arguments, values))
    try:
        yield
    finally:
        _VALIDATED.reset(token)


def prevalidated_values(
    spec: object, arguments: Mapping[str, Any] | None
) -> Mapping[str, object] | None:
    """Return the values :func:`validated_arguments` recorded for exactly these arguments.

    ``None`` (validate them yourself) unless the record is for the same declaration and
    equal arguments, and they are within the default request limits the component's own
    validation applies (a server may configure looser ones).

    Args:
        spec: The component's declaration.
        arguments: The arguments the component received.
    """
    record = _VALIDATED.get()
    if record is None or record.spec is not spec or record.arguments != (arguments or {}):
        return None
    if check_request_limits(record.arguments):
        return None
    return record.values


def validate_once(
    spec: object, params: tuple[ParamSpec, ...], arguments: Mapping[str, Any] | None
) -> ValidationResult:
    """Validate ``arguments`` against ``params``, unless the middleware already did.

    Args:
        spec: The component's declaration (the key :func:`validated_arguments` recorded).
        params: Its parameters.
        arguments: The arguments the component received.

    Returns:
        The middleware's values for exactly these arguments, or the core validator's result.
    """
    values = prevalidated_values(spec, arguments)
    if values is not None:
        return ValidationResult(values=values)
    return validate_arguments(params, arguments)
