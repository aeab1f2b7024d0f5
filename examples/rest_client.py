"""Call ctxfy's REST façade from a script: list prompts, render one, handle errors.

Run it against a running server:

    export CTXFY_URL=http://127.0.0.1:8000 CTXFY_API_KEY=ctxfy_...   # a read key
    python examples/rest_client.py context_stack objective="Add API keys to our server"

or let it start its own server (``python -m ctxfy`` on a free loopback port, with a
throw-away data directory) and run against that:

    python examples/rest_client.py --check

Only ``httpx`` is needed on the client side: any HTTP client in any language works the
same way. Errors are ``application/problem+json``; 429 answers carry ``Retry-After``.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


class ProblemError(Exception):
    """An ``application/problem+json`` answer, with its status and fields."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            self.problem: dict[str, Any] = response.json()
        except ValueError:
            self.problem = {"title": response.reason_phrase, "detail": response.text[:200]}
        self.status = response.status_code
        self.retry_after = response.headers.get("Retry-After")
        super().__init__(f"HTTP {self.status}: {self.problem.get('detail') or self.problem}")


class CtxfyRest:
    """A small client for the ``/v1`` routes.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8000``.
        api_key: A ctxfy API key (``read`` to list and render prompts).
    """

    def __init__(self, base_url: str, api_key: str) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: object = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise ProblemError(response)
        return response.json()

    def prompts(self) -> list[dict[str, Any]]:
        """Every prompt the key may use, with its argument schema."""
        data = self._send("GET", "/v1/prompts")
        prompts: list[dict[str, Any]] = data["prompts"] if isinstance(data, dict) else data
        return prompts

    def render(self, name: str, arguments: Mapping[str, object]) -> str:
        """Render a prompt; return the text of its messages."""
        data = self._send("POST", f"/v1/prompts/{name}", dict(arguments))
        return "\n".join(m["content"]["text"] for m in data["messages"])

    def create_key(self, name: str, scope: str) -> str:
        """Create a key (needs an admin key); return its text, shown only this once."""
        issued: dict[str, Any] = self._send("POST", "/v1/keys", {"name": name, "scope": scope})
        return str(issued["key"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def local_server() -> Iterator[tuple[str, str]]:
    """Start ``python -m ctxfy`` on 127.0.0.1; yield its URL and the bootstrap admin key."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {**os.environ, "CTXFY_DATA_DIR": data_dir, "CTXFY_PORT": str(port)}
        env.pop("CTXFY_HOST", None)  # loopback: the first start writes a bootstrap key file
        server = subprocess.Popen(
            [sys.executable, "-m", "ctxfy"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if server.poll() is not None:
                    raise RuntimeError(
                        f"ctxfy exited: {server.stderr.read() if server.stderr else ''!r}"
                    )
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("ctxfy did not become ready in 30 s")
                time.sleep(0.1)
            key = (Path(data_dir) / "bootstrap-admin.key").read_text(encoding="utf-8").strip()
            yield base, key
        finally:
            server.terminate()
            server.wait(timeout=20)


def check() -> int:
    """Run a real server and use every call of this client against it."""
    results: dict[str, bool] = {}
    with local_server() as (base, admin_key):
        admin = CtxfyRest(base, admin_key)
        reader_key = admin.create_key("rest-example", "read")
        admin.close()
        client = CtxfyRest(base, reader_key)
        try:
            names = [p["name"] for p in client.prompts()]
            results["lists the built-in prompts"] = {"context_stack", "prp"} <= set(names)
            text = client.render("context_stack", {"objective": "Add API keys to our server"})
            results["renders context_stack"] = "Add API keys to our server" in text
            try:
                client.render("context_stack", {"objective": ""})
                results["an empty objective is refused"] = False
            except ProblemError as exc:
                results["an empty objective is refused"] = exc.status in {400, 422}
                print("refused:", json.dumps(exc.problem)[:200])
            try:
                client.create_key("nope", "admin")
                results["a read key cannot create keys"] = False
            except ProblemError as exc:
                results["a read key cannot create keys"] = exc.status == 403
        finally:
            client.close()
    for name, ok in results.items():
        print(f"{'ok' if ok else 'FAILED'}: {name}")
    ok = all(results.values())
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="start a local server and test")
    parser.add_argument("prompt", nargs="?", help="prompt to render (default: list prompts)")
    parser.add_argument("arguments", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.check:
        return check()
    base = os.environ.get("CTXFY_URL", "http://127.0.0.1:8000")
    key = os.environ.get("CTXFY_API_KEY")
    if not key:
        parser.error("set CTXFY_API_KEY to a ctxfy API key")
    client = CtxfyRest(base, key)
    try:
        if args.prompt is None:
            for prompt in client.prompts():
                print(prompt["name"], "-", prompt.get("description") or "")
        else:
            arguments = dict(item.split("=", 1) for item in args.arguments)
            print(client.render(args.prompt, arguments))
    except ProblemError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
