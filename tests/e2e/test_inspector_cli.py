"""The official MCP Inspector CLI, a real third-party client, against the real server."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def inspector(url: str, key: str, home: Path, *args: str) -> dict[str, object]:
    npx = shutil.which("npx")
    if npx is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npx is required in CI for the MCP Inspector test")
        pytest.skip("npx is not installed")
    result = subprocess.run(
        [
            npx,
            "-y",
            INSPECTOR,
            "--cli",
            url,
            "--transport",
            "http",
            *args,
            "--header",
            f"Authorization: Bearer {key}",
        ],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_inspector_lists_and_gets_every_prompt(server: tuple[str, str], tmp_path: Path) -> None:
    base, key = server
    listing = inspector(f"{base}/mcp", key, tmp_path, "--method", "prompts/list")
    prompts = listing["prompts"]
    assert isinstance(prompts, list)
    names = [p["name"] for p in prompts]
    assert names[:3] == ["context_stack", "prp", "technical_spec"]
    for prompt in prompts:
        required = [a["name"] for a in prompt.get("arguments", []) if a.get("required")]
        args = [f"{name}=A value from the Inspector" for name in required]
        got = inspector(
            f"{base}/mcp",
            key,
            tmp_path,
            "--method",
            "prompts/get",
            "--prompt-name",
            prompt["name"],
            "--prompt-args",
            *args,
        )
        messages = got["messages"]
        assert isinstance(messages, list)
        assert "A value from the Inspector" in messages[0]["content"]["text"]
