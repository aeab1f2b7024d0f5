"""The package root exports exactly its documented, sorted public API."""

import ctxfy


def test_all_is_sorted_and_every_name_exists() -> None:
    assert ctxfy.__all__ == sorted(ctxfy.__all__)
    missing = [name for name in ctxfy.__all__ if not hasattr(ctxfy, name)]
    assert missing == []


def test_every_public_member_is_listed() -> None:
    public = {
        name
        for name, value in vars(ctxfy).items()
        if not name.startswith("_") and not isinstance(value, type(ctxfy))
    }
    assert public <= set(ctxfy.__all__)


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    assert ctxfy.__version__ == version("ctxfy")
