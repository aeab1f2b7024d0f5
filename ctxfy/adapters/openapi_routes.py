"""The routes of ctxfy's OpenAPI document that do not come from the catalog.

``/health``, ``/ready``, ``/metrics``, the ``/v1/keys`` admin routes and the MCP endpoint
(JSON-RPC over streamable HTTP, with one example request per prompt and tool).
"""

from collections.abc import Sequence
from typing import Any

from ctxfy.adapters.component_docs import OperationDoc, wire_arguments
from ctxfy.adapters.openapi_components import JSON, problem, ref, security

__all__ = ["fixed_paths", "guarded_refusals", "mcp_operation"]

_MCP_DESCRIPTION = """\
The Model Context Protocol endpoint: JSON-RPC 2.0 over streamable HTTP, protected by the
same API keys, scopes and rate limits as the REST routes.

* Send `Accept: application/json, text/event-stream` and `Content-Type: application/json`.
* Start with `initialize`; the answer carries an `Mcp-Session-Id` header to send on every
  later request, with `MCP-Protocol-Version` (e.g. `2025-06-18`). `DELETE` ends the
  session; `GET` opens the server-to-client event stream.
* Methods: `initialize`, `ping`, `prompts/list`, `prompts/get`, `tools/list`,
  `tools/call`, `resources/list`, `resources/templates/list`, `resources/read`, and the
  notification `notifications/initialized` (answered 202).
* Errors are JSON-RPC errors: `-32602` invalid params (with `data.errors`), `-32000` rate
  limited (with `data.retry_after`).
"""


def _mcp_examples(operations: Sequence[OperationDoc]) -> dict[str, Any]:
    examples: dict[str, Any] = {
        "initialize": {
            "summary": "Open a session",
            "value": {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "curl", "version": "1"},
                },
            },
        },
        "prompts_list": {"value": {"jsonrpc": "2.0", "id": 2, "method": "prompts/list"}},
    }
    for doc in operations:
        if doc.kind == "prompt":
            params = {"name": doc.name, "arguments": wire_arguments(doc.params, doc.example)}
            method = "prompts/get"
        else:
            params = {"name": doc.name, "arguments": doc.example}
            method = "tools/call"
        examples[f"{method.replace('/', '_')}_{doc.name}"] = {
            "summary": f"{method} {doc.name}",
            "value": {"jsonrpc": "2.0", "id": 3, "method": method, "params": params},
        }
    return examples


def mcp_operation(operations: Sequence[OperationDoc], auth: bool) -> dict[str, Any]:
    """The ``POST`` operation of the MCP endpoint, with one example per prompt and tool."""
    header = {"in": "header", "required": False, "schema": {"type": "string"}}
    message = {"schema": {"$ref": "#/components/schemas/JsonRpcMessage"}}
    rpc_error = {"description": "A JSON-RPC error.", "content": {JSON: message}}
    responses: dict[str, Any] = {
        "200": {
            "description": "The JSON-RPC response, as JSON or as one server-sent event.",
            "content": {JSON: message, "text/event-stream": {"schema": {"type": "string"}}},
        },
        "202": {"description": "A notification or response was accepted."},
        "400": rpc_error,
        "404": {**rpc_error, "description": "Unknown or expired `Mcp-Session-Id`."},
        "406": {**rpc_error, "description": "The `Accept` header lacks a required type."},
    }
    if auth:
        responses["401"] = {
            "description": "No valid API key.",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        }
    return {
        "tags": ["mcp"],
        "operationId": "mcp",
        "summary": "MCP: JSON-RPC 2.0 over streamable HTTP",
        "description": _MCP_DESCRIPTION,
        **security(auth),
        "parameters": [
            {**header, "name": "Mcp-Session-Id", "description": "From `initialize`'s answer."},
            {**header, "name": "MCP-Protocol-Version", "example": "2025-06-18"},
        ],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {"$ref": "#/components/schemas/JsonRpcRequest"},
                    "examples": _mcp_examples(operations),
                }
            },
        },
        "responses": responses,
    }


def _ok(schema: dict[str, Any], description: str = "OK", media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _open(summary: str, description: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["operations"],
        "summary": summary,
        "description": description,
        "security": [],
        "responses": responses,
    }


def guarded_refusals() -> dict[str, Any]:
    """The refusals of a route that needs a ``read`` key (``/metrics``, ``/openapi.json``).

    No 403: every key carries the ``read`` scope.
    """
    return {
        "401": ref("responses", "Unauthorized"),
        "429": ref("responses", "TooManyRequests"),
        "503": ref("responses", "Unavailable"),
    }


def _metrics_operation(*, guarded: bool) -> dict[str, Any]:
    description = "OpenTelemetry metrics in the Prometheus text format."
    responses = {"200": _ok({"type": "string"}, media="text/plain")}
    operation = {**_open("Prometheus metrics", description, responses), "operationId": "metrics"}
    if guarded:
        operation["description"] += (
            " Needs a `read` key (`CTXFY_METRICS_PUBLIC=false`); Prometheus sends it with "
            "`authorization: {credentials: <key>}`."
        )
        operation |= security(True)
        operation["responses"] = responses | guarded_refusals()
    return operation


def _keys_paths(secured: dict[str, Any]) -> dict[str, Any]:
    key_id = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
    refused = {
        "401": ref("responses", "Unauthorized"),
        "403": ref("responses", "Forbidden"),
        "429": ref("responses", "TooManyRequests"),
        "503": ref("responses", "Unavailable"),
    }
    body_errors = {
        "400": ref("responses", "BadRequest"),
        "413": ref("responses", "PayloadTooLarge"),
        "422": problem("Invalid field."),
    }
    key_list = {
        "type": "object",
        "properties": {"keys": {"type": "array", "items": ref("schemas", "KeyInfo")}},
    }
    create = {
        "type": "object",
        "required": ["name", "scope"],
        "properties": {
            "name": {"type": "string", "examples": ["laptop"]},
            "scope": {"type": "string", "enum": ["read", "write", "admin"]},
            "expires_in": {"type": "string", "examples": ["90d"]},
            "rate_limit": {"type": "string", "examples": ["60/minute"]},
        },
    }
    grace = {"type": "object", "properties": {"grace": {"type": "string", "examples": ["15m"]}}}
    state = {"404": ref("responses", "NotFound"), "409": problem("Wrong state (e.g. revoked).")}
    tag = {"tags": ["keys"], **secured}
    return {
        "/v1/keys": {
            "get": {
                **tag,
                "operationId": "list_keys",
                "summary": "List API keys (admin)",
                "responses": {"200": _ok(key_list), **refused},
            },
            "post": {
                **tag,
                "operationId": "create_key",
                "summary": "Create an API key (admin)",
                "requestBody": {"required": True, "content": {JSON: {"schema": create}}},
                "responses": {
                    "201": _ok(ref("schemas", "IssuedKey"), "Created"),
                    **body_errors,
                    **refused,
                },
            },
        },
        "/v1/keys/{key_id}/revoke": {
            "post": {
                **tag,
                "operationId": "revoke_key",
                "summary": "Revoke an API key (admin)",
                "parameters": [key_id],
                "responses": {"200": _ok(ref("schemas", "KeyInfo")), **state, **refused},
            },
        },
        "/v1/keys/{key_id}/rotate": {
            "post": {
                **tag,
                "operationId": "rotate_key",
                "summary": "Rotate an API key (admin)",
                "parameters": [key_id],
                "requestBody": {"required": False, "content": {JSON: {"schema": grace}}},
                "responses": {
                    "201": _ok(ref("schemas", "IssuedKey"), "Created"),
                    **body_errors,
                    **state,
                    **refused,
                },
            },
        },
    }


def fixed_paths(
    operations: Sequence[OperationDoc], *, auth: bool, mcp_path: str, metrics_public: bool = True
) -> dict[str, Any]:
    """Path items for the routes that do not depend on the catalog.

    Args:
        operations: The prompts and tools, for the MCP endpoint's examples.
        auth: Whether keys are required.
        mcp_path: Where the MCP endpoint is mounted.
        metrics_public: Whether ``/metrics`` is served without a key.
    """
    health = {"type": "object", "properties": {"status": {"type": "string"}}}
    ready = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            "failing": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return {
        "/health": {
            "get": {
                **_open(
                    "Liveness",
                    "200 while the process serves requests; checks nothing else.",
                    {"200": _ok(health)},
                ),
                "operationId": "health",
            }
        },
        "/ready": {
            "get": {
                **_open(
                    "Readiness",
                    "Runs every readiness check (key store, rate-limit storage, prompt "
                    "catalog, ...); 503 names the failing dependency.",
                    {"200": _ok(ready), "503": _ok(ready, "Not ready")},
                ),
                "operationId": "ready",
            }
        },
        "/metrics": {"get": _metrics_operation(guarded=auth and not metrics_public)},
        mcp_path: {"post": mcp_operation(operations, auth)},
        **_keys_paths(security(auth)),
    }
