"""Server A: bare FastMCP 3 doing the same work as ctxfy, with nothing else.

It exposes the ``context_stack`` prompt (rendered by the same core function from the same
template) and the ``lint_context_stack`` tool (the same core linter), plus ``/health``,
``/ready`` and ``POST /v1/prompts/context_stack`` as plain custom routes (the last one
renders through ``mcp.render_prompt``, as ctxfy's REST façade does). No auth, no rate
limit, no validation, no request logs, no metrics: the physical limit ctxfy is measured
against. It is served the same way as ctxfy (uvicorn, stateless HTTP, JSON responses).

Usage: ``python bench/bare_server.py PORT``
"""

import json
import sys
from typing import Any

import uvicorn
from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ctxfy.core.lint import lint_markdown
from ctxfy.core.prompt import render_prompt
from ctxfy.prompts import CONTEXT_STACK, builtin_blocks

BLOCKS = builtin_blocks()


def build() -> FastMCP[Any]:
    mcp: FastMCP[Any] = FastMCP("bare")

    @mcp.prompt(name="context_stack")
    def context_stack(  # noqa: PLR0917 - the prompt's eight arguments, as ctxfy declares them
        objective: str,
        domain: str | None = None,
        role: str | None = None,
        task_type: str | None = None,
        success_criteria: str | None = None,
        constraints: str | None = None,
        audience: str | None = None,
        output_format: str | None = None,
    ) -> str:
        values = {k: v for k, v in locals().items() if v is not None}
        return render_prompt(CONTEXT_STACK, values, BLOCKS)

    @mcp.tool(name="lint_context_stack")
    def lint_context_stack(markdown: str) -> dict[str, Any]:
        stack, report = lint_markdown(markdown)
        return {
            "report": report.to_dict(),
            "stack": stack.to_dict() if stack is not None else None,
        }

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @mcp.custom_route("/ready", methods=["GET"])
    async def ready(_request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    @mcp.custom_route("/v1/prompts/context_stack", methods=["POST"])
    async def rest_prompt(request: Request) -> Response:
        # What a REST route on plain FastMCP does: render through FastMCP's own API.
        arguments = json.loads(await request.body())
        result = await mcp.render_prompt("context_stack", arguments)
        payload = result.to_mcp_prompt_result().model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        return JSONResponse(payload)

    return mcp


def main(port: int) -> None:
    app = build().http_app(path="/mcp", stateless_http=True, json_response=True)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
