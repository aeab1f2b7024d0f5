"""Add ctxfy's REST façade, OpenAPI document and offline ``/docs`` to a plain FastMCP server.

Run it:

    python examples/embed_rest_api.py            # serve on http://127.0.0.1:8000 (open /docs)
    python examples/embed_rest_api.py --check    # exercise itself over ASGI, exit 0

``POST /v1/prompts/review`` renders the prompt through the server's own middleware chain,
exactly as MCP ``prompts/get`` would; ``/openapi.json`` describes every prompt and tool.
This server has no API keys (loopback only): see ``docs/rest-api.md`` to add them.
"""

import argparse
import asyncio
import sys

import httpx
import uvicorn
from fastmcp import FastMCP

from ctxfy.adapters.rest_facade import register_rest_api
from ctxfy.adapters.validation import RequestValidationMiddleware


def build() -> FastMCP:
    """A server of your own, with ctxfy's validation and the REST façade."""
    mcp = FastMCP("my-server", middleware=[RequestValidationMiddleware()])

    @mcp.prompt
    def review(code: str) -> str:
        return f"Review this code for bugs:\n\n{code}"

    @mcp.tool
    def add(a: int, b: int) -> int:
        return a + b

    register_rest_api(mcp, auth=False)  # /v1/prompts, /v1/tools, /openapi.json, /docs
    return mcp


async def check() -> int:
    """Call the façade over ASGI and read the OpenAPI document."""
    transport = httpx.ASGITransport(app=build().http_app(path="/mcp"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        rendered = await http.post("/v1/prompts/review", json={"code": "print(1)"})
        added = await http.post("/v1/tools/add", json={"a": 1, "b": 2})
        invalid = await http.post("/v1/prompts/review", json={})
        spec = (await http.get("/openapi.json")).json()
    print(rendered.json()["messages"][0]["content"]["text"])
    ok = (
        rendered.status_code == 200
        and added.json() == {"result": 3}
        and invalid.status_code == 422
        and spec["openapi"] == "3.1.0"
        and {"/v1/prompts/review", "/v1/tools/add"} <= set(spec["paths"])
    )
    print("check:", "ok" if ok else f"FAILED ({rendered.status_code}, {added.text})")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run over ASGI and exit")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.check:
        return asyncio.run(check())
    uvicorn.run(build().http_app(path="/mcp"), host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
