"""Development tasks: ``nox -s tests lint typecheck`` (``nox -l`` lists them all)."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.13", "3.11"]


def install(session: nox.Session, *groups: str) -> None:
    """Install the project in editable mode with the given dependency groups."""
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    session.install("-e", ".", *requirements)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage gates (core >= 90 %, package >= 85 %)."""
    install(session, "test")
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
    """Run mypy --strict on the package, the tests and this file."""
    install(session, "typecheck")
    session.run("mypy")
