"""File-system confinement of path-like arguments, symbolic links included.

:func:`resolve_confined` first applies the pure text rules of
:func:`ctxfy.core.paths.safe_relative_parts` (no absolute paths, no ``..``, no NUL...), then
resolves the result on the file system and refuses it if a symbolic link leads outside the
root. ctxfy's own prompts and tools take no path argument; this is for your tools.
"""

from pathlib import Path

from ctxfy.core.charpolicy import FieldError
from ctxfy.core.paths import UnsafePathError, safe_relative_parts

__all__ = ["UnsafePathError", "resolve_confined"]


def resolve_confined(
    root: Path, candidate: str, *, field: str = "path", must_exist: bool = False
) -> Path:
    """Return the real path of ``candidate`` inside ``root``, or refuse it.

    The check holds when it is made: if untrusted parties can create symbolic links under
    ``root`` between this call and the use of the path, open the file with ``O_NOFOLLOW``
    or keep such writers out of ``root``.

    Args:
        root: The trusted directory; it must exist.
        candidate: The untrusted relative path sent by the caller.
        field: The argument name, used in error messages.
        must_exist: Require the target to exist (otherwise only its existing part is
            resolved, so a file can be created there).

    Returns:
        The absolute, resolved path, guaranteed to be ``root`` or below it.

    Raises:
        UnsafePathError: The text breaks a rule (``path_absolute``, ``path_traversal``...),
            a symbolic link leads outside ``root`` (``path_escape``) or the links cannot be
            resolved (``path_unresolvable``, for example a loop).
        FileNotFoundError: ``root`` does not exist, or ``must_exist`` and the target does
            not.

    Example:
        ```python
        from pathlib import Path
        from fastmcp import FastMCP
        from fastmcp.exceptions import ToolError
        from ctxfy.adapters.paths import UnsafePathError, resolve_confined

        NOTES = Path("/srv/notes")
        mcp = FastMCP("notes")

        @mcp.tool
        def read_note(path: str) -> str:
            try:
                note = resolve_confined(NOTES, path, must_exist=True)
            except UnsafePathError as exc:
                raise ToolError(exc.errors[0].message) from None
            return note.read_text(encoding="utf-8")
        ```
    """
    parts = safe_relative_parts(candidate, field=field)
    base = root.resolve(strict=True)
    try:
        target = base.joinpath(*parts).resolve(strict=must_exist)
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError):
        raise UnsafePathError(
            (FieldError(field, "path_unresolvable", f"{field} cannot be resolved"),)
        ) from None
    if not target.is_relative_to(base):
        raise UnsafePathError(
            (
                FieldError(
                    field,
                    "path_escape",
                    f"{field} leads outside its directory through a symbolic link",
                ),
            )
        )
    return target
