"""OpenAPI 3.1 for a FastMCP server: one typed operation per prompt and per tool.

:func:`build_openapi` is a pure function of :class:`~ctxfy.adapters.component_docs.OperationDoc`
values and a few flags; :func:`server_openapi` reads them from the live server, so the
document always matches what is registered (user prompt files included). It documents the
REST façade (``/v1/prompts``, ``/v1/tools``), the key routes, the MCP endpoint (JSON-RPC
over streamable HTTP, with one example request per prompt and tool), ``/health``,
``/ready`` and ``/metrics``, keeping only the routes the application really serves.
"""

from collections.abc import Collection, Sequence
from typing import Any

from fastmcp import FastMCP

from ctxfy.adapters.component_docs import OperationDoc, prompt_doc, tool_doc
from ctxfy.adapters.openapi_components import JSON, components, problem, security
from ctxfy.adapters.openapi_routes import fixed_paths, guarded_refusals
from ctxfy.adapters.scopes import ScopeCheck

__all__ = ["build_openapi", "server_openapi"]

_REF = "#/components/responses/"
_RATE_HEADERS = {
    name: {"$ref": f"#/components/headers/{name}"}
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
}


def _refusals(auth: bool, *, body: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if body:
        responses |= {
            "400": {"$ref": f"{_REF}BadRequest"},
            "413": {"$ref": f"{_REF}PayloadTooLarge"},
            "415": {"$ref": f"{_REF}UnsupportedMediaType"},
        }
    if auth:
        responses |= {
            "401": {"$ref": f"{_REF}Unauthorized"},
            "403": {"$ref": f"{_REF}Forbidden"},
        }
    return responses | {
        "429": {"$ref": f"{_REF}TooManyRequests"},
        "503": {"$ref": f"{_REF}Unavailable"},
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _RATE_HEADERS,
        "content": {JSON: {"schema": schema}},
    }


def _request_body(doc: OperationDoc) -> dict[str, Any]:
    return {
        "required": bool(doc.schema.get("required")),
        "content": {JSON: {"schema": doc.schema, "example": doc.example}},
    }


def _operation(doc: OperationDoc, auth: bool) -> dict[str, Any]:
    scope = f"Needs a key with the `{doc.scope.value}` scope." if auth else ""
    if doc.kind == "prompt":
        what = f"Renders the `{doc.name}` prompt: the same messages as MCP `prompts/get`."
        result = _ok({"$ref": "#/components/schemas/PromptResult"}, "The rendered messages.")
        extra: dict[str, Any] = {}
    else:
        what = f"Calls the `{doc.name}` tool and answers its structured result."
        result = _ok(doc.output_schema or {"type": "object"}, "The tool's structured result.")
        extra = {}
        if doc.needs_llm:
            what += (
                " It needs an LLM: over REST only the server-side fallback "
                "(`CTXFY_LLM_BASE_URL`, `CTXFY_LLM_MODEL`) can serve it; without one the "
                "answer is 501."
            )
            extra = {
                "501": problem("No server-side LLM is configured; the detail says how."),
                "502": problem("The LLM failed or its draft could not be used."),
                "504": problem("The LLM did not answer in time."),
            }
    return {
        "tags": [f"{doc.kind}s"],
        "operationId": f"{doc.kind}_{doc.name}",
        "summary": doc.title,
        "description": "\n\n".join(p for p in (doc.description, what, scope) if p),
        **security(auth),
        "requestBody": _request_body(doc),
        "responses": {
            "200": result,
            **_refusals(auth, body=True),
            "422": {"$ref": f"{_REF}InvalidArguments"},
            **extra,
        },
    }


def _listing(kind: str, auth: bool) -> dict[str, Any]:
    schema = "PromptList" if kind == "prompts" else "ToolList"
    return {
        "tags": [kind],
        "operationId": f"list_{kind}",
        "summary": f"List the {kind} this key may use",
        "description": f"Every {kind[:-1]} with its description and the JSON Schema of its "
        "arguments, filtered by the key's scope.",
        **security(auth),
        "responses": {
            "200": _ok({"$ref": f"#/components/schemas/{schema}"}, f"The {kind}."),
            **_refusals(auth, body=False),
        },
    }


def build_openapi(
    operations: Sequence[OperationDoc],
    *,
    title: str = "ctxfy",
    version: str = "0",
    auth: bool = True,
    docs_public: bool = True,
    metrics_public: bool = True,
    mcp_path: str = "/mcp",
    present: Collection[str] | None = None,
    prefix: str = "/v1",
) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for these prompts and tools.

    Args:
        operations: The prompts and tools (see :func:`server_openapi`).
        title: ``info.title``.
        version: ``info.version``.
        auth: Whether API keys are required (adds the security schemes and 401/403).
        docs_public: Whether ``/openapi.json`` is served without a key.
        metrics_public: Whether ``/metrics`` is served without a key.
        mcp_path: Where the MCP endpoint is.
        present: Route paths the app serves; others are left out (``None``: keep all).
        prefix: Mount path of the REST façade.

    Example:
        ```python
        spec = build_openapi([prompt_doc(p) for p in await mcp.list_prompts()])
        ```
    """
    paths: dict[str, Any] = {}
    if present is None or f"{prefix}/prompts" in present:
        paths[f"{prefix}/prompts"] = {"get": _listing("prompts", auth)}
        for doc in (d for d in operations if d.kind == "prompt"):
            paths[f"{prefix}/prompts/{doc.name}"] = {"post": _operation(doc, auth)}
    if present is None or f"{prefix}/tools" in present:
        paths[f"{prefix}/tools"] = {"get": _listing("tools", auth)}
        for doc in (d for d in operations if d.kind == "tool"):
            paths[f"{prefix}/tools/{doc.name}"] = {"post": _operation(doc, auth)}
    paths["/openapi.json"] = {"get": _openapi_operation(auth=auth, public=docs_public)}
    fixed = fixed_paths(operations, auth=auth, mcp_path=mcp_path, metrics_public=metrics_public)
    paths |= {p: item for p, item in fixed.items() if present is None or p in present}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": _info(auth)},
        "tags": [
            {"name": "prompts", "description": "Render prompts (REST façade of `prompts/get`)."},
            {"name": "tools", "description": "Call tools (REST façade of `tools/call`)."},
            {"name": "keys", "description": "API-key administration (admin scope)."},
            {"name": "mcp", "description": "The MCP endpoint itself."},
            {"name": "operations", "description": "Health, readiness, metrics, this document."},
        ],
        "paths": paths,
        "components": components(auth=auth),
    }


def _openapi_operation(*, auth: bool, public: bool) -> dict[str, Any]:
    document = {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}
    operation: dict[str, Any] = {
        "tags": ["operations"],
        "operationId": "openapi",
        "summary": "This document",
        "security": [],
        "responses": {"200": document},
    }
    if auth and not public:
        operation |= security(auth)
        operation["responses"] |= guarded_refusals()
    return operation


def _info(auth: bool) -> str:
    access = (
        "Click **Authorize** and give an API key (`ctxfy keys create --name me --scope "
        "read`) as a bearer token or in `X-API-Key`. Scopes: `read` < `write` < `admin`."
        if auth
        else "Authentication is off (loopback development mode): no key is needed."
    )
    return (
        "Every prompt and tool of this server, as typed REST operations that run through "
        "the same authentication, scopes, rate limits, validation and logging as MCP. "
        f"{access} Errors are `application/problem+json` (RFC 9457); invalid arguments "
        "answer 422 with an `errors` list (`field`, `rule`, `message`)."
    )


async def server_openapi(
    mcp: FastMCP[Any],
    *,
    scope_check: ScopeCheck | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Build the document from the server's live registry (no middleware, no key).

    Args:
        mcp: The server.
        scope_check: The tag → scope rule, to state each operation's scope.
        **options: Passed to :func:`build_openapi`.

    Example:
        ```python
        spec = await server_openapi(mcp, title="my-server", version="1.0")
        ```
    """
    check = scope_check or ScopeCheck()
    prompts = await mcp.list_prompts(run_middleware=False)
    tools = await mcp.list_tools(run_middleware=False)
    docs = [prompt_doc(p, check) for p in prompts] + [tool_doc(t, check) for t in tools]
    return build_openapi(docs, **options)
