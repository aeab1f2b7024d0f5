"""The requests the benchmark sends, identical for server A (bare) and server B (ctxfy)."""

from __future__ import annotations

import json
from pathlib import Path

from loadgen import Request

ROOT = Path(__file__).resolve().parents[1]
SEED_STACK = (ROOT / "tests" / "fixtures" / "context-stack-ctxfy-production.md").read_text(
    encoding="utf-8"
)

#: A typical ``context_stack`` request: every argument set, about 900 characters in all.
PROMPT_ARGUMENTS: dict[str, object] = {
    "objective": (
        "Add per-key rate limits to our MCP server: each API key gets a budget of requests "
        "per minute, configurable per scope, and a request over budget gets 429 with "
        "Retry-After. Limits live in memory on one replica and in Redis with several."
    ),
    "domain": "Platform engineering for MCP servers",
    "role": "Senior Python engineer specialised in FastMCP and Redis",
    "task_type": "Implementation",
    "success_criteria": (
        "p95 overhead under 1 ms per request; 429 responses carry Retry-After; limits "
        "survive a replica restart when Redis is configured; 90 % branch coverage."
    ),
    "constraints": "Python 3.11+, FastMCP 3, the `limits` library, no other new dependency.",
    "audience": "Platform engineers deploying MCP servers",
    "output_format": "Python code, tests and a Markdown section for docs/configuration.md",
}

MCP_HEADERS = (
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
    ("MCP-Protocol-Version", "2025-06-18"),
)

#: Endpoint name -> (method, path, body or None).
ENDPOINTS: dict[str, tuple[str, str, dict[str, object] | None]] = {
    "prompts_get": (
        "POST",
        "/mcp",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "prompts/get",
            "params": {"name": "context_stack", "arguments": PROMPT_ARGUMENTS},
        },
    ),
    "tools_call": (
        "POST",
        "/mcp",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "lint_context_stack", "arguments": {"markdown": SEED_STACK}},
        },
    ),
    "health": ("GET", "/health", None),
    "rest_prompt": ("POST", "/v1/prompts/context_stack", PROMPT_ARGUMENTS),
}


def body_bytes(endpoint: str) -> bytes:
    """The JSON body of ``endpoint``'s request (empty for GET)."""
    body = ENDPOINTS[endpoint][2]
    return b"" if body is None else json.dumps(body).encode()


def request(endpoint: str, key: str | None) -> Request:
    """The request for ``endpoint``, with the API key when given."""
    method, path, _ = ENDPOINTS[endpoint]
    headers: list[tuple[str, str]] = []
    if path == "/mcp":
        headers += MCP_HEADERS
    elif method == "POST":
        headers.append(("Content-Type", "application/json"))
    if key is not None and path != "/health":  # probes carry no credentials
        headers.append(("Authorization", f"Bearer {key}"))
    return Request(method, path, tuple(headers), body_bytes(endpoint))


def answer_ok(endpoint: str, status: int, body: bytes) -> str | None:
    """Return why an answer is wrong, or ``None`` when it is the expected success."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if endpoint in {"prompts_get", "tools_call"}:
        data = json.loads(body)
        if "error" in data:
            return f"JSON-RPC error {data['error']}"
        if data.get("result", {}).get("isError"):
            return f"tool error {data['result']}"
    return None
