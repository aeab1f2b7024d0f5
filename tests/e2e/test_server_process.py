"""The real ``python -m ctxfy`` process, driven by the official MCP SDK client."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, unused_port: int) -> Iterator[tuple[str, str]]:
    port = unused_port
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "CTXFY_DATA_DIR": str(data_dir),
        "CTXFY_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ctxfy"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"server exited early: {err.decode(errors='replace')}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            pytest.fail("server did not become ready in 30 s")
        time.sleep(0.1)
    # First start on loopback with an empty key store: the bootstrap admin key is in a file.
    key_file = data_dir / "bootstrap-admin.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    try:
        yield base, key_file.read_text(encoding="utf-8").strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        assert process.returncode == 0, err.decode(errors="replace")


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
