"""The container's HEALTHCHECK: exit 0 when ctxfy's ``/health`` answers 2xx, else 1.

The image has no curl or wget; this uses the standard library only. It asks the server in
the same container, on the port from ``CTXFY_PORT`` (default 8000): a wildcard bind address
(``0.0.0.0``, ``::``) is reached through loopback, any other ``CTXFY_HOST`` directly.
Redirects are not followed: a 3xx is a failure, like a 4xx, a 5xx or no answer within
``CTXFY_HEALTHCHECK_TIMEOUT_S`` seconds (default 3).

Usage: ``python healthcheck.py [PATH]`` (``PATH`` defaults to ``/health``).
"""

import http.client
import os
import sys
from collections.abc import Mapping, Sequence

_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - recognised, not bound


def target(environ: Mapping[str, str]) -> tuple[str, int]:
    """Return the host and port to ask, from the server's own settings."""
    host = environ.get("CTXFY_HOST", "").strip()
    if host in _WILDCARDS:
        host = "::1" if ":" in host else "127.0.0.1"
    port = int(environ.get("CTXFY_PORT", "").strip() or "8000")
    return host.strip("[]"), port


def check(environ: Mapping[str, str], path: str = "/health") -> tuple[bool, str]:
    """Ask the server once.

    Args:
        environ: The environment the server was started with.
        path: The route to ask.

    Returns:
        Whether the answer was 2xx, and a one-line description for the container log.
    """
    host, port = target(environ)
    timeout = float(environ.get("CTXFY_HEALTHCHECK_TIMEOUT_S", "").strip() or "3")
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "ctxfy-healthcheck"})
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET http://{host}:{port}{path} failed: {type(exc).__name__}: {exc}"
    finally:
        connection.close()
    ok = 200 <= response.status < 300
    return ok, f"GET http://{host}:{port}{path} -> {response.status}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; print one line; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    ok, line = check(os.environ, args[0] if args else "/health")
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
