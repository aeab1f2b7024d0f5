"""MkDocs hooks: point links to ``examples/`` files at the examples page of the site.

Pages link to examples as ``../examples/NAME.py``, which works when browsing the
repository but leaves the documentation directory. In the built site such a link goes to
the example's section of ``examples.md``, where its source is included. Links to any other
file outside ``docs/`` are left alone, so the strict build reports them.
"""

import posixpath
import re
from typing import Any

from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

_EXAMPLE_LINK = re.compile(r"\]\((?P<up>(?:\.\./)+)examples/(?P<name>[\w.-]+)(?:#[\w-]*)?\)")


def example_anchor(name: str) -> str:
    """Return the anchor of an example's section on the examples page (``a_b.py`` -> ``a_b-py``)."""
    return re.sub(r"[^\w-]", "-", name.lower())


def on_page_markdown(markdown: str, *, page: Page, files: Files, **kwargs: Any) -> str:
    """Rewrite ``../examples/NAME`` links that leave the docs directory."""
    depth = page.file.src_uri.count("/")

    def rewrite(match: re.Match[str]) -> str:
        if match["up"].count("../") != depth + 1:
            return match[0]  # a link inside docs/ (e.g. docs/examples/), not ours
        target = posixpath.join(*([".."] * depth), "examples.md") if depth else "examples.md"
        return f"]({target}#{example_anchor(match['name'])})"

    return _EXAMPLE_LINK.sub(rewrite, markdown)
