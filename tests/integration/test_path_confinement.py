"""File-system path confinement: symbolic links cannot lead out of the root."""

from pathlib import Path

import pytest

from ctxfy.adapters.paths import UnsafePathError, resolve_confined


@pytest.fixture
def root(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    (notes / "2026").mkdir(parents=True)
    (notes / "2026" / "q1.md").write_text("quarter one", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("do not read", encoding="utf-8")
    return notes


def rule_of(root: Path, candidate: str, *, must_exist: bool = False) -> str:
    with pytest.raises(UnsafePathError) as info:
        resolve_confined(root, candidate, field="note", must_exist=must_exist)
    (error,) = info.value.errors
    assert error.field == "note"
    return error.rule


def test_a_file_inside_the_root_resolves(root: Path) -> None:
    path = resolve_confined(root, "2026/q1.md", must_exist=True)
    assert path == (root / "2026" / "q1.md").resolve()
    assert path.read_text(encoding="utf-8") == "quarter one"


def test_a_new_file_may_be_named_when_existence_is_not_required(root: Path) -> None:
    assert resolve_confined(root, "2026/q2.md") == (root / "2026" / "q2.md").resolve()


def test_text_rules_apply_before_the_file_system(root: Path) -> None:
    assert rule_of(root, "../secret.txt") == "path_traversal"
    assert rule_of(root, str(root.parent / "secret.txt")) == "path_absolute"


def test_a_symlink_to_a_file_outside_the_root_is_refused(root: Path) -> None:
    (root / "innocent.md").symlink_to(root.parent / "secret.txt")
    assert rule_of(root, "innocent.md") == "path_escape"
    assert rule_of(root, "innocent.md", must_exist=True) == "path_escape"


def test_a_symlinked_directory_outside_the_root_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent, target_is_directory=True)
    assert rule_of(root, "escape/secret.txt") == "path_escape"
    assert rule_of(root, "escape/not-yet-there.txt") == "path_escape"


def test_a_symlink_that_stays_inside_the_root_is_allowed(root: Path) -> None:
    (root / "latest").symlink_to(root / "2026", target_is_directory=True)
    path = resolve_confined(root, "latest/q1.md", must_exist=True)
    assert path == (root / "2026" / "q1.md").resolve()


def test_a_symlinked_root_is_followed_once_and_then_enforced(tmp_path: Path, root: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert resolve_confined(alias, "2026/q1.md", must_exist=True).read_text() == "quarter one"


def test_a_symlink_loop_is_refused_or_stays_inside(root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")
    assert rule_of(root, "loop/x", must_exist=True) == "path_unresolvable"
    try:  # without strict resolution, Python may hand back the unresolved path
        path = resolve_confined(root, "loop/x")
        outcome = "inside" if path.is_relative_to(root.resolve()) else "outside"
    except UnsafePathError as exc:
        outcome = exc.errors[0].rule
    assert outcome in {"inside", "path_unresolvable"}


def test_missing_targets_raise_file_not_found_when_required(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve_confined(root, "2026/q9.md", must_exist=True)


def test_the_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve_confined(tmp_path / "missing", "a.md")
