"""The command line, run in-process: prompts list/render and errors."""

import json
from pathlib import Path

import pytest

from ctxfy.cli import main


def test_prompts_list_prints_every_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list"], environ={}) == 0
    out = capsys.readouterr().out
    assert "context_stack(objective, domain?" in out
    assert out.count("\n") == 3


def test_prompts_list_json_has_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "list", "--json"], environ={}) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data] == ["context_stack", "prp", "technical_spec"]
    assert data[1]["required"] == ["feature"]


def test_prompts_render_validates_and_renders(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "render", "prp", "--arg", "feature=Rotate keys"], environ={}) == 0
    assert '<user_input name="feature">\nRotate keys\n</user_input>' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prompts", "render", "nope"], "no prompt named 'nope'"),
        (["prompts", "render", "prp", "--arg", "feature"], "must have the form KEY=VALUE"),
        (["prompts", "render", "prp"], "feature is required"),
    ],
)
def test_cli_errors_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, environ={}) == 2
    assert message in capsys.readouterr().err


def test_user_prompts_dir_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.md").write_text("---\n---\nHello\n", encoding="utf-8")
    assert main(["prompts", "list"], environ={"CTXFY_PROMPTS_DIR": str(tmp_path)}) == 0
    assert "mine()" in capsys.readouterr().out
