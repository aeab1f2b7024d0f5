"""Reading ``CTXFY_`` variables: one parser per kind of value, flags laid over the environment.

:meth:`ctxfy.settings.Settings.from_env` reads every variable through :func:`read_variable`
with one of the ``parse_*`` functions below; :data:`VARIABLES` lists the names it reads, and
:func:`unknown_variables` warns about the ``CTXFY_`` names it does not. Nothing here knows
the :class:`~ctxfy.settings.Settings` class, so this module imports nothing of ctxfy's
outside the core.
"""

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal, TypeVar

from ctxfy.core.errors import ConfigurationError, CtxfyError

_T = TypeVar("_T")

Transport = Literal["http", "stdio"]
LogFormat = Literal["json", "console"]
InjectionPolicy = Literal["flag", "reject"]
DocsAccess = Literal["auto", "public", "key"]
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
_LOG_LEVELS: tuple[LogLevel, ...] = (
    "TRACE",
    "DEBUG",
    "INFO",
    "SUCCESS",
    "WARNING",
    "ERROR",
    "CRITICAL",
)


class FlagOverlay(Mapping[str, str]):
    """The environment with command-line flags laid over it, for ``Settings.from_env``.

    A flag's value goes through the same checks as its variable, and an error names the
    flag (``--port '99999' is invalid: ...``) instead of the variable.

    Args:
        environ: The environment underneath.
        flags: Variable name → ``(flag, value)`` for every flag given, e.g.
            ``{"CTXFY_PORT": ("--port", "9000")}``.

    Example:
        ```python
        overlay = FlagOverlay(os.environ, {"CTXFY_PORT": ("--port", "9000")})
        assert Settings.from_env(overlay).port == 9000
        ```
    """

    def __init__(self, environ: Mapping[str, str], flags: Mapping[str, tuple[str, str]]) -> None:
        self._values = {**environ, **{name: value for name, (_, value) in flags.items()}}
        self.flags = {name: flag for name, (flag, _) in flags.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def read_variable(
    environ: Mapping[str, str], name: str, convert: Callable[[str], _T], default: _T
) -> _T:
    """Return one variable's value, converted, or ``default`` when it is unset or blank.

    Args:
        environ: The environment, or a :class:`FlagOverlay`.
        name: The variable, e.g. ``CTXFY_PORT``.
        convert: Turns the stripped text into the value; raises ``ValueError``,
            ``TypeError`` or a ``CtxfyError`` whose message states the rule.
        default: The value when the variable is unset or blank.

    Returns:
        The converted value, or ``default``.

    Raises:
        ConfigurationError: ``convert`` refused the text; the message names the variable
            (or the flag that set it) and the rule.
    """
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return convert(raw.strip())
    except (ValueError, TypeError, CtxfyError) as exc:
        raise ConfigurationError(f"{_named(environ, name, raw)} is invalid: {exc}") from None


def _named(environ: Mapping[str, str], name: str, raw: str) -> str:
    """Name a setting in an error as the user gave it: ``--port '1'`` or ``CTXFY_PORT='1'``."""
    if isinstance(environ, FlagOverlay) and name in environ.flags:
        return f"{environ.flags[name]} {raw!r}"
    return f"{name}={raw!r}"


def parse_port(text: str) -> int:
    """Parse a TCP port, a whole number from 0 to 65535."""
    if text.startswith(("tcp://", "udp://", "sctp://")):
        raise ValueError(
            "a port is a whole number from 0 to 65535; this looks like the service link "
            "Kubernetes injects for a Service named ctxfy: set enableServiceLinks: false "
            "in the pod spec"
        )
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("a port is a whole number from 0 to 65535")
    return port


def parse_positive_float(text: str) -> float:
    """Parse a number greater than 0 (seconds, for the timeouts)."""
    value = float(text)
    if not value > 0:
        raise ValueError("must be a number greater than 0")
    return value


def parse_positive_int(text: str) -> int:
    """Parse a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def parse_transport(text: str) -> Transport:
    """Parse ``http`` or ``stdio``."""
    if text == "http":
        return "http"
    if text == "stdio":
        return "stdio"
    raise ValueError("must be 'http' or 'stdio'")


def parse_bool(text: str) -> bool:
    """Parse true/false, 1/0, yes/no or on/off, in any case."""
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of true/false, 1/0, yes/no, on/off")


def parse_url(text: str) -> str:
    """Parse an ``http://`` or ``https://`` URL, without its trailing slashes."""
    if not text.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


def parse_mcp_path(text: str) -> str:
    """Parse a URL path that starts with ``/`` and does not end with one, e.g. ``/mcp``."""
    if not text.startswith("/") or text.endswith("/") or len(text) < 2:
        raise ValueError("must start with '/' and not end with '/', e.g. /mcp")
    return text


def parse_directory(text: str) -> Path:
    """Parse the path of an existing directory (``~`` is expanded)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ValueError("is not an existing directory")
    return path


def parse_store_url(text: str) -> str:
    """Parse a key store URL, ``sqlite:///path`` or ``redis://host:port/db``."""
    if not text.startswith(("sqlite:///", "redis://", "rediss://")):
        raise ValueError("must be a sqlite:///path or redis://host:port/db URL")
    return text


def parse_csv(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list, dropping blanks and the spaces around items."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_log_level(text: str) -> LogLevel:
    """Parse a log level, in any case (``info``, ``DEBUG``, ...)."""
    for level in _LOG_LEVELS:
        if text.upper() == level:
            return level
    raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))


def parse_log_format(text: str) -> LogFormat:
    """Parse ``json`` or ``console``."""
    if text == "json":
        return "json"
    if text == "console":
        return "console"
    raise ValueError("must be 'json' or 'console'")


def parse_injection_policy(text: str) -> InjectionPolicy:
    """Parse ``flag`` or ``reject``."""
    if text == "flag":
        return "flag"
    if text == "reject":
        return "reject"
    raise ValueError("must be 'flag' or 'reject'")


def parse_docs_access(text: str) -> DocsAccess:
    """Parse ``auto``, or a boolean: true means ``public``, false means ``key``."""
    if text.lower() == "auto":
        return "auto"
    return "public" if parse_bool(text) else "key"


#: Every variable ``Settings.from_env`` reads (a test keeps this list exact).
VARIABLES: frozenset[str] = frozenset(
    {
        "CTXFY_ALLOWED_HOSTS",
        "CTXFY_ALLOWED_ORIGINS",
        "CTXFY_AUTH",
        "CTXFY_BODY_TIMEOUT_S",
        "CTXFY_BOOTSTRAP",
        "CTXFY_CORS_ORIGINS",
        "CTXFY_DATA_DIR",
        "CTXFY_DOCS_PUBLIC",
        "CTXFY_HEADER_TIMEOUT_S",
        "CTXFY_HOST",
        "CTXFY_HSTS_MAX_AGE",
        "CTXFY_INJECTION_POLICY",
        "CTXFY_JSON_RESPONSE",
        "CTXFY_KEY_MAX_TTL",
        "CTXFY_KEY_STORE",
        "CTXFY_LLM_API_KEY",
        "CTXFY_LLM_BASE_URL",
        "CTXFY_LLM_MAX_TOKENS",
        "CTXFY_LLM_MODEL",
        "CTXFY_LLM_TIMEOUT_S",
        "CTXFY_LOG_ARGUMENTS",
        "CTXFY_LOG_FORMAT",
        "CTXFY_LOG_HEALTH_CHECKS",
        "CTXFY_LOG_LEVEL",
        "CTXFY_MAX_BODY_BYTES",
        "CTXFY_MCP_PATH",
        "CTXFY_METRICS_PUBLIC",
        "CTXFY_PORT",
        "CTXFY_PROMPTS_DIR",
        "CTXFY_RATE_LIMIT",
        "CTXFY_RATE_LIMIT_STORAGE",
        "CTXFY_SHUTDOWN_GRACE_S",
        "CTXFY_STATELESS_HTTP",
        "CTXFY_TRANSPORT",
    }
)

# CTXFY_ names (without the prefix; glob patterns) that belong to ctxfy's other tools and
# docs, not to the server: the container's health check, the shell variables of the
# quickstart and examples, CI, tests and scripts/container-smoke.sh. The server reads none
# of them, so docs/configuration.md does not list them.
_OTHER_TOOLS = (
    "HEALTHCHECK_TIMEOUT_S",
    "KEY",
    "API_KEY",
    "URL",
    "CI_CONTAINER",
    "RELIABILITY_LOAD_S",
    "IMAGE",
    "VERSION",
    "SMOKE_*",
    # Kubernetes service links, injected into every pod of a namespace with a Service named
    # ctxfy (unless the pod sets enableServiceLinks: false, as deploy/kubernetes does).
    "SERVICE_HOST",
    "SERVICE_PORT",
    "SERVICE_PORT_*",
    "PORT_*_TCP",
    "PORT_*_TCP_*",
    "PORT_*_UDP",
    "PORT_*_UDP_*",
    "PORT_*_SCTP",
    "PORT_*_SCTP_*",
)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Return a warning for every ``CTXFY_`` variable that ctxfy does not read.

    A misspelt name (``CTXFY_LLM_TIMEOUT``) would otherwise be ignored without a word.
    Unknown names are reported, not refused, so that a newer deployment's variables do
    not stop an older ctxfy. Nothing is printed here: the caller decides where to.

    Args:
        environ: The environment.

    Returns:
        One message per unknown name, sorted, with the closest known name when one is near.
    """
    warnings = []
    for name in sorted(environ):
        if not name.startswith("CTXFY_") or name in VARIABLES:
            continue
        suffix = name.removeprefix("CTXFY_")
        if any(fnmatch.fnmatchcase(suffix, pattern) for pattern in _OTHER_TOOLS):
            continue
        close = difflib.get_close_matches(name, sorted(VARIABLES), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{name} is not a ctxfy setting{hint}; it is ignored")
    return warnings
