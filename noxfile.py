"""Development tasks: ``nox -s tests lint typecheck`` (``nox -l`` lists them all)."""

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "docs", "deploy"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.13", "3.11"]
# Python outside the package, the tests and this file that is type-checked too.
EXTRA_TYPED = [
    "examples",
    "deploy/docker/healthcheck.py",
    "scripts/docs",
    "scripts/check-allowed-host.py",
]
SHELL_SCRIPTS = [".ci/run", *sorted(str(path) for path in Path("scripts").glob("*.sh"))]


def install(
    session: nox.Session, *groups: str, project: bool = True, extras: tuple[str, ...] = ()
) -> None:
    """Install the project in editable mode (unless not wanted) with dependency groups.

    ``extras`` names optional dependencies of the project to install with it.
    """
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*(["-e", target] if project else []), *requirements)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage gates (core >= 90 %, package >= 85 %)."""
    # The otlp extra: the OTLP export test runs against the real exporter.
    install(session, "test", extras=("otlp",))
    session.run("coverage", "erase")
    session.run(
        "pytest",
        "--cov=ctxfy",
        "--cov-report=",
        *session.posargs,
        env={"COVERAGE_FILE": ".coverage"},
    )
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--include=ctxfy/core/*", "--fail-under=90")
    session.run("coverage", "report", "--fail-under=85")


@nox.session(python="3.13")
def lint(session: nox.Session) -> None:
    """Run ruff (lint and format check) and the import-linter contracts."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session(python="3.13")
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package, the tests, this file, the examples and scripts."""
    # The otlp extra: the OTLP export test imports the exporter's protobuf types.
    install(session, "typecheck", extras=("otlp",))
    session.run("mypy")
    session.run("mypy", *EXTRA_TYPED)


@nox.session(python="3.13")
def docs(session: nox.Session) -> None:
    """Build the documentation site (API reference from docstrings); warnings fail."""
    install(session, "docs")
    site = session.posargs[0] if session.posargs else "site"
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--clean",
        "--site-dir",
        site,
        env={"NO_MKDOCS_2_WARNING": "1"},  # a notice about its successor, not about our docs
    )


@nox.session(python="3.13")
def examples(session: nox.Session) -> None:
    """Run every example in examples/ as CI does (the ``tests`` sessions include this)."""
    install(session, "test", extras=("otlp",))
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_examples.py")


@nox.session(python="3.13")
def deploy(session: nox.Session) -> None:
    """Lint the deployment files: Dockerfile, workflows, scripts, compose, Kubernetes, rules."""
    install(session, "deploy", project=False)
    session.run("hadolint", "Dockerfile")
    session.run("actionlint")
    session.run("shellcheck", *SHELL_SCRIPTS)
    # `docker compose config`, from the Compose v2 binary itself: no Docker engine needed.
    session.run("docker-compose", "--file", "compose.yaml", "config", "--quiet")
    manifests = sorted(
        str(path)
        for path in Path("deploy/kubernetes").glob("*.yaml")
        if path.name != "kustomization.yaml"  # not a Kubernetes object: no schema
    )
    session.run("kubernetes-validate", "--strict", "--quiet", *manifests)
    promtool = shutil.which("promtool")
    if promtool is None:
        session.error("promtool is missing (apt-get install prometheus)")
    # Checks the rule files the configuration names, too.
    session.run(promtool, "check", "config", "deploy/prometheus/prometheus.yml", external=True)


@nox.session(python=False)
def container(session: nox.Session) -> None:
    """Build the image from the Dockerfile with podman and smoke-test it (needs root)."""
    session.run("bash", "scripts/container-smoke.sh", external=True)


@nox.session(python="3.13")
def bench(session: nox.Session) -> None:
    """ctxfy against bare FastMCP (about 16 min; ``-- --smoke`` for a quick check)."""
    install(session, "test")
    session.install("matplotlib>=3.8")
    session.run("python", "bench/run.py", *session.posargs)
