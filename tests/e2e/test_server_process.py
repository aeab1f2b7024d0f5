"""The real ``python -m ctxfy`` process, driven by the official MCP SDK client."""

import os
import socket
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


def run_ctxfy(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CTXFY_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-m", "ctxfy", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_flag_exits_2_naming_the_flag_without_a_traceback(tmp_path: Path) -> None:
    result = run_ctxfy(tmp_path, "--port", "99999")
    assert result.returncode == 2
    assert result.stderr == (
        "ctxfy: error: --port '99999' is invalid: a port is a whole number from 0 to 65535\n"
    )


def test_a_port_in_use_exits_3_with_a_clear_message_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_ctxfy(tmp_path, "--port", str(port))
    assert result.returncode == 3
    assert f"ctxfy: error: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert "serving MCP" not in result.stderr
    assert "Traceback" not in result.stderr
