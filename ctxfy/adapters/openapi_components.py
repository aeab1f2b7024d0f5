"""The shared ``components`` of ctxfy's OpenAPI document: schemas, responses, headers.

Plain data (JSON-ready dictionaries) used by :mod:`ctxfy.adapters.openapi` and
:mod:`ctxfy.adapters.openapi_routes`.
"""

from typing import Any

__all__ = [
    "JSON",
    "PROBLEM_JSON",
    "components",
    "problem",
    "ref",
    "security",
]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
_REF = "#/components/"


def ref(kind: str, name: str) -> dict[str, str]:
    """A ``$ref`` to ``#/components/<kind>/<name>``."""
    return {"$ref": f"{_REF}{kind}/{name}"}


def security(auth: bool) -> dict[str, Any]:
    """``{"security": [bearer or X-API-Key]}`` when keys are required, else nothing."""
    return {"security": [{"bearerAuth": []}, {"apiKeyAuth": []}]} if auth else {}


def problem(description: str, *, validation: bool = False) -> dict[str, Any]:
    """An inline response whose body is a problem (``validation`` adds ``errors``)."""
    schema = ref("schemas", "ValidationProblem" if validation else "Problem")
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("RateLimit-Limit", "Requests allowed per window."),
        ("RateLimit-Remaining", "Requests left in the window."),
        ("RateLimit-Reset", "Seconds until the window frees capacity."),
        ("Retry-After", "Seconds to wait before retrying."),
    )
}

_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    },
    "FieldError": {
        "type": "object",
        "required": ["field", "rule", "message"],
        "properties": {
            "field": {"type": "string", "description": "The argument (`*`: the request)."},
            "rule": {"type": "string", "examples": ["required", "max_length", "type"]},
            "message": {"type": "string"},
        },
    },
    "ValidationProblem": {
        "allOf": [
            ref("schemas", "Problem"),
            {
                "type": "object",
                "properties": {"errors": {"type": "array", "items": ref("schemas", "FieldError")}},
            },
        ]
    },
    "PromptMessage": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": {
                "type": "object",
                "required": ["type"],
                "description": "An MCP content block; ctxfy's prompts send `text`.",
                "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
            },
        },
    },
    "PromptResult": {
        "type": "object",
        "description": "Exactly what MCP `prompts/get` returns for the same arguments.",
        "required": ["messages"],
        "properties": {
            "description": {"type": "string"},
            "messages": {"type": "array", "items": ref("schemas", "PromptMessage")},
        },
    },
    "PromptList": {
        "type": "object",
        "required": ["prompts"],
        "properties": {"prompts": {"type": "array", "items": {"type": "object"}}},
    },
    "ToolList": {
        "type": "object",
        "required": ["tools"],
        "properties": {"tools": {"type": "array", "items": {"type": "object"}}},
    },
    "KeyInfo": {
        "type": "object",
        "required": ["key_id", "name", "scope", "status"],
        "properties": {
            "key_id": {"type": "string"},
            "name": {"type": "string"},
            "scope": {"type": "string", "enum": ["read", "write", "admin"]},
            "status": {"type": "string"},
        },
    },
    "IssuedKey": {
        "type": "object",
        "description": "A new key; `key` is shown only in this answer.",
        "required": ["key_id", "key", "name", "scope"],
        "properties": {
            "key_id": {"type": "string"},
            "key": {"type": "string"},
            "name": {"type": "string"},
            "scope": {"type": "string"},
            "expires_at": {"type": ["string", "null"]},
        },
    },
    "JsonRpcRequest": {
        "type": "object",
        "required": ["jsonrpc", "method"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["integer", "string"]},
            "method": {"type": "string"},
            "params": {"type": "object"},
        },
    },
    "JsonRpcMessage": {"type": "object", "description": "A JSON-RPC 2.0 response or error."},
}


def components(*, auth: bool) -> dict[str, Any]:
    """The ``components`` object: schemas, shared responses and the API-key schemes."""
    responses = {
        "BadRequest": problem("The body is not a JSON object."),
        "Unauthorized": {
            **problem("No valid API key (missing, malformed, unknown, expired or revoked)."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        "Forbidden": problem("The key's scope does not cover this operation."),
        "NotFound": problem("No such prompt, tool or key."),
        "PayloadTooLarge": problem("The body is too large."),
        "UnsupportedMediaType": problem("The body is not `application/json`."),
        "InvalidArguments": problem(
            "Invalid arguments: `errors` lists every problem, as the validator found them.",
            validation=True,
        ),
        "TooManyRequests": {
            **problem("Over the key's rate limit."),
            "headers": {name: ref("headers", name) for name in _HEADERS},
        },
        "Unavailable": problem("A dependency (key store, rate-limit storage) is unavailable."),
    }
    schemes = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer ctxfy_<key_id>_<secret>`.",
        },
        "apiKeyAuth": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The same key in `X-API-Key`.",
        },
    }
    result: dict[str, Any] = {"schemas": _SCHEMAS, "responses": responses, "headers": _HEADERS}
    if auth:
        result["securitySchemes"] = schemes
    return result
