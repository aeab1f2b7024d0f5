"""The real ``python -m ctxfy`` process, driven by the official MCP SDK client."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.e2e


async def test_sdk_client_lists_and_gets_every_prompt(server: tuple[str, str]) -> None:
    base, key = server
    async with httpx.AsyncClient() as anonymous_client:
        anonymous = await anonymous_client.post(
            f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.headers["www-authenticate"]
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(headers=headers) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, _session_id),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        prompts = (await session.list_prompts()).prompts
        required = {
            p.name: {a.name: "value" for a in p.arguments or [] if a.required} for p in prompts
        }
        assert {"context_stack", "prp", "technical_spec"} <= set(required)
        for name, arguments in required.items():
            result = await session.get_prompt(name, arguments)
            assert result.messages, name
        tools = {t.name for t in (await session.list_tools()).tools}
        assert tools == {"lint_context_stack", "generate_context_stack"}


def test_bad_configuration_fails_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "CTXFY_PORT": "not-a-port", "CTXFY_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "ctxfy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "CTXFY_PORT='not-a-port' is invalid" in result.stderr
