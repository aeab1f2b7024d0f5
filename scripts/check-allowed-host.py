"""Check that ctxfy, deployed with these manifests, would answer a URL's Host header.

Usage: ``python3 scripts/check-allowed-host.py BASE_URL MANIFESTS``, where MANIFESTS is the
output of ``kubectl kustomize``. It exits 0 when the host of BASE_URL matches a pattern of
``CTXFY_ALLOWED_HOSTS`` in the ``ctxfy`` ConfigMap, and 1 with an ``::error::`` line (a
GitHub Actions annotation) otherwise: ctxfy answers ``421`` to a ``Host`` it does not allow,
so the deploy workflow's smoke test would fail after the rollout.

The match is the server's: the list is split on commas with blanks dropped (as
``Settings.from_env`` reads it), host and patterns are compared in lower case without a
port, and ``*`` is a wildcard (``fnmatchcase``, as FastMCP's Host check). It needs PyYAML
only, not ctxfy.
"""

import sys
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit

import yaml

VARIABLE = "CTXFY_ALLOWED_HOSTS"


def normal_host(value: str) -> str:
    """A host or host pattern in lower case, without its port or IPv6 brackets."""
    host = value.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end != -1 else host
    if host.count(":") == 1:
        return host.rsplit(":", 1)[0]
    return host


def allowed_hosts(manifests: str) -> str:
    """The raw ``CTXFY_ALLOWED_HOSTS`` value of the ``ctxfy`` ConfigMap in ``manifests``.

    Raises:
        LookupError: No ``ctxfy`` ConfigMap sets the variable, or several do.
    """
    values = [
        str(data[VARIABLE])
        for document in yaml.safe_load_all(manifests)
        if isinstance(document, dict)
        and document.get("kind") == "ConfigMap"
        and str(document.get("metadata", {}).get("name", "")).startswith("ctxfy")
        and isinstance(data := document.get("data"), dict)
        and VARIABLE in data
    ]
    if len(values) != 1:
        raise LookupError(f"expected one ctxfy ConfigMap setting {VARIABLE}, found {len(values)}")
    return values[0]


def host_allowed(host: str, allowed: str) -> bool:
    """Whether ctxfy configured with ``CTXFY_ALLOWED_HOSTS=allowed`` accepts ``Host: host``."""
    wanted = normal_host(host)
    patterns = [normal_host(part) for part in allowed.split(",") if part.strip()]
    return any(pattern == "*" or fnmatchcase(wanted, pattern) for pattern in patterns)


def check(base_url: str, manifests: str) -> str | None:
    """None when ``base_url``'s host is allowed by ``manifests``, else the reason it is not."""
    host = urlsplit(base_url.strip()).hostname
    if not host:
        return f"BASE_URL {base_url!r} has no host (expected e.g. https://ctxfy.example.com)"
    try:
        allowed = allowed_hosts(manifests)
    except LookupError as error:
        return str(error)
    if host_allowed(host, allowed):
        return None
    return f"BASE_URL host {host} is not in {VARIABLE} ({allowed})"


def main(argv: list[str]) -> int:
    """Run the check; print a GitHub Actions error annotation when it fails."""
    if len(argv) != 2:
        print("usage: check-allowed-host.py BASE_URL MANIFESTS", file=sys.stderr)
        return 2
    base_url, path = argv
    problem = check(base_url, Path(path).read_text(encoding="utf-8"))
    if problem is not None:
        print(f"::error::{problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
