"""Every example runs, and every client configuration reaches a real server.

Each ``examples/*.py`` has a ``--check`` mode that exercises it (in memory, over real HTTP
on 127.0.0.1, or against a ``python -m ctxfy`` it starts) and prints ``check: ok``. The
client configurations are taken at their word: the command Claude Desktop would start, the
URL and header VS Code and Cursor would send.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CLIENTS = EXAMPLES / "clients"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples_to_run() -> None:
    names = {path.name for path in SCRIPTS}
    assert {"minimal_server.py", "embed_production_kit.py", "rest_client.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_example_runs_its_check(script: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CTXFY_")}
    result = subprocess.run(
        [sys.executable, str(script), "--check"],
        cwd=tmp_path,  # examples must not depend on the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "check: ok" in result.stdout, output[-3000:]


def test_every_example_is_on_the_examples_page() -> None:
    page = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    included = set(re.findall(r'--8<-- "(examples/[^"]+)"', page))
    files = {
        str(path.relative_to(ROOT))
        for path in [*SCRIPTS, *CLIENTS.glob("*.json"), *(EXAMPLES / "prompts").glob("*.md")]
    }
    assert files <= included, f"not on docs/examples.md: {sorted(files - included)}"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CLIENTS / name).read_text(encoding="utf-8"))
    return data


async def test_claude_desktop_command_serves_ctxfy_over_stdio(tmp_path: Path) -> None:
    server = load("claude_desktop_config.json")["mcpServers"]["ctxfy"]
    assert server["command"] == "python"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CTXFY_")},
        **server.get("env", {}),
        "CTXFY_DATA_DIR": str(tmp_path),
    }
    # "python" is the interpreter ctxfy is installed in: here, the one running the tests.
    transport = StdioTransport(command=sys.executable, args=server["args"], env=env)
    async with Client(transport) as client:
        names = [prompt.name for prompt in await client.list_prompts()]
        rendered = await client.get_prompt("context_stack", {"objective": "From Claude"})
    assert names[:3] == ["context_stack", "prp", "technical_spec"]
    assert "From Claude" in str(rendered.messages[0].content)


def resolve(
    url: str, headers: dict[str, str], base: str, values: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """Point a configured URL at the test server and fill the ``${...}`` variables."""
    assert url == "http://127.0.0.1:8000/mcp"  # the server's default address
    filled = {
        name: re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], value)
        for name, value in headers.items()
    }
    return url.replace("http://127.0.0.1:8000", base), filled


async def connect(url: str, headers: dict[str, str]) -> list[str]:
    async with Client(StreamableHttpTransport(url, headers=headers)) as client:
        return [prompt.name for prompt in await client.list_prompts()]


async def test_vscode_config_reaches_the_server_with_its_key(server: tuple[str, str]) -> None:
    base, key = server
    config = load("vscode-mcp.json")
    inputs = {item["id"]: item for item in config["inputs"]}
    entry = config["servers"]["ctxfy"]
    assert entry["type"] == "http"
    header = entry["headers"]["Authorization"]
    variable = re.fullmatch(r"Bearer \$\{input:([\w-]+)\}", header)
    assert variable is not None
    assert inputs[variable.group(1)]["password"] is True
    url, headers = resolve(
        entry["url"], entry["headers"], base, {f"input:{variable.group(1)}": key}
    )
    assert "context_stack" in await connect(url, headers)


async def test_cursor_config_reaches_the_server_with_its_key(server: tuple[str, str]) -> None:
    base, key = server
    entry = load("cursor-mcp.json")["mcpServers"]["ctxfy"]
    assert entry["headers"]["Authorization"] == "Bearer ${env:CTXFY_API_KEY}"
    url, headers = resolve(entry["url"], entry["headers"], base, {"env:CTXFY_API_KEY": key})
    assert "context_stack" in await connect(url, headers)


async def test_a_config_without_the_key_is_refused(server: tuple[str, str]) -> None:
    base, _key = server
    entry = load("cursor-mcp.json")["mcpServers"]["ctxfy"]
    url, headers = resolve(entry["url"], entry["headers"], base, {"env:CTXFY_API_KEY": "wrong"})
    with pytest.raises(Exception, match="401"):
        await connect(url, headers)
