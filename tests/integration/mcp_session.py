"""Open a stateful MCP session by hand, for tests that send raw JSON-RPC over HTTP."""

import httpx

INITIALIZE_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "raw", "version": "1"},
}


async def open_session(
    http: httpx.AsyncClient, *, request_id: int = 1, path: str = "/mcp"
) -> httpx.Response:
    """Send ``initialize`` and ``notifications/initialized``; keep the session id on ``http``.

    Args:
        http: A client whose base URL is the server's; its headers get ``Mcp-Session-Id``.
        request_id: The JSON-RPC id of the ``initialize`` request.
        path: The MCP endpoint.

    Returns:
        The answer to ``initialize``.
    """
    opened = await http.post(
        path,
        json={
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": INITIALIZE_PARAMS,
        },
    )
    http.headers["Mcp-Session-Id"] = opened.headers["Mcp-Session-Id"]
    await http.post(path, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return opened
