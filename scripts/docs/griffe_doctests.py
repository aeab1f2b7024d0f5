"""A griffe extension: read an ``Example:`` section holding doctests as ``Examples:``.

ctxfy's docstrings use Google style, where ``Example:`` is a free-text admonition: its
``>>>`` lines would be rendered as Markdown (``[1][0]`` as a link). Google's ``Examples:``
section is the one griffe splits into prose and highlighted ``pycon`` blocks. Loaded by
mkdocstrings (``mkdocs.yml``); the source docstrings stay as they are.
"""

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class DoctestExamples(griffe.Extension):
    """Rename ``Example:`` to ``Examples:`` in docstrings that contain doctests."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Adjust the docstring of every object griffe loads."""
        docstring = obj.docstring
        if docstring is not None and ">>>" in docstring.value:
            docstring.value = _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", docstring.value)
