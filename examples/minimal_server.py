"""A minimal ctxfy server: ``build_server()`` with a prompt file of your own.

Run it:

    python examples/minimal_server.py            # MCP over stdio, for a desktop client
    python examples/minimal_server.py --check    # exercise itself in memory, exit 0

``examples/prompts/release_notes.md`` becomes a prompt next to the built-in ones, with its
arguments validated from the file's front matter. The same works without code:
``CTXFY_PROMPTS_DIR=examples/prompts python -m ctxfy``.
"""

import argparse
import asyncio
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from fastmcp import Client, FastMCP
from mcp import McpError
from mcp.types import TextContent

from ctxfy import Settings, build_server

PROMPTS = Path(__file__).parent / "prompts"


def build(data_dir: Path) -> FastMCP:
    """ctxfy with the built-in prompts plus ``examples/prompts/*.md``."""
    # Over stdio there is no HTTP listener, so no API key is asked for; the data directory
    # still holds the (unused) key store.
    return build_server(Settings(prompts_dir=PROMPTS, data_dir=data_dir))


async def check() -> int:
    """List the prompts, render the custom one, and see a bad argument refused."""
    with TemporaryDirectory() as data_dir:
        async with Client(build(Path(data_dir))) as client:
            names = [prompt.name for prompt in await client.list_prompts()]
            result = await client.get_prompt(
                "release_notes",
                {"changes": '["Add key rotation", "Fix /ready"]', "audience": "customers"},
            )
            text = "".join(
                m.content.text for m in result.messages if isinstance(m.content, TextContent)
            )
            try:
                await client.get_prompt("release_notes", {"changes": "[]", "audience": "robots"})
                refused = False
            except McpError as exc:
                refused = exc.error.code == -32602
    print("prompts:", ", ".join(names))
    print(text)
    ok = (
        names[:3] == ["context_stack", "prp", "technical_spec"]
        and "release_notes" in names
        and "Add key rotation" in text
        and "customers" in text
        and refused
    )
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run in memory and exit")
    parser.add_argument("--data-dir", type=Path, default=Path(".ctxfy"), help="default .ctxfy")
    args = parser.parse_args()
    if args.check:
        return asyncio.run(check())
    build(args.data_dir).run(transport="stdio", show_banner=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
