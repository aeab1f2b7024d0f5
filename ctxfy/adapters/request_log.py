"""One log line and one metric sample per request, for MCP requests and HTTP routes.

Import the request middlewares and helpers from here; they live in modules of their own:

- :class:`RequestContextMiddleware` (ASGI, :mod:`~ctxfy.adapters.http_request_log`) wraps
  the whole HTTP app. It adopts a valid ``X-Request-ID`` or makes one, echoes it in the
  response, continues an incoming ``traceparent``, binds a
  :class:`~ctxfy.adapters.request_context.RequestContext` that every log line of the
  request picks up, records ``http.server.request.duration`` and writes the
  ``http.request`` line.
- :class:`RequestLogMiddleware` (FastMCP, :mod:`~ctxfy.adapters.mcp_request_log`) writes
  the ``mcp.request`` line of each MCP request and records
  ``mcp.server.operation.duration``.
- :mod:`~ctxfy.adapters.request_lines` writes both kinds of line and makes request ids.

One HTTP POST to the MCP endpoint carries one JSON-RPC request, so it would get two
lines; instead the HTTP line is written only when no MCP line was (the request was
refused before reaching MCP: 401, 403, 429, 400, 406; a notification; the GET event
stream; a session DELETE). Every request thus has exactly one request line. When a REST
route calls into FastMCP (``mcp.render_prompt``) the route's HTTP line is the one kept.

Requests the MCP library answers itself, before any FastMCP middleware runs (an unknown
method, parameters that do not fit the method: JSON-RPC -32601/-32602, or ``ping``), get
their ``mcp.request`` line and operation sample from :class:`RequestContextMiddleware`,
which reads the JSON-RPC answer from the response body (kept only while no MCP line has
been written, and only up to a few kilobytes) and the method from the request body.

Metric labels never carry names a client made up: the prompt, tool or resource label is
the registered name (for a resource read through a template, the template), or
``_unknown``; the log line keeps the name as sent.
"""

from ctxfy.adapters.http_request_log import RequestContextMiddleware
from ctxfy.adapters.mcp_request_log import RequestLogMiddleware, in_tool_cache_refresh
from ctxfy.adapters.request_context import note_key_id, note_llm_model
from ctxfy.adapters.request_lines import (
    REQUEST_ID_HEADER,
    log_http_request,  # noqa: F401 - importable from here before the split, not in __all__
    new_request_id,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "RequestLogMiddleware",
    "in_tool_cache_refresh",
    "new_request_id",
    "note_key_id",
    "note_llm_model",
]
