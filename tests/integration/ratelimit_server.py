"""A replica for the shared-Redis rate-limit test: run as a separate process.

Usage: ``python ratelimit_server.py PORT REDIS_URL RATE``. Keys and rate counters both
live in that Redis, as they would for several ctxfy replicas.
"""

import sys
from typing import Any

import uvicorn
from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.keystore_redis import RedisKeyStore
from ctxfy.adapters.ratelimit import KeyRateLimiter, KeyRateLimitMiddleware
from ctxfy.adapters.scopes import ScopeAuthMiddleware


def main(port: int, redis_url: str, rate: str) -> None:
    limiter = KeyRateLimiter(rate, redis_url)
    mcp: FastMCP[Any] = FastMCP(
        "replica",
        auth=ApiKeyVerifier(RedisKeyStore(redis_url)),
        middleware=[ScopeAuthMiddleware(), KeyRateLimitMiddleware(limiter)],
    )

    @mcp.tool
    def lint_context_stack(text: str) -> str:
        return text

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = mcp.http_app(path="/mcp", stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
