"""Everything a model reads, as Markdown templates with ``$name`` placeholders.

One file per prompt (``system.md``, ``specify.md``, ``fix_tests.md``, ...), readable
as a document. ``render(name, **values)`` fills one; templates are read once per
process.
"""

from __future__ import annotations

import functools
import string
from importlib import resources
from typing import Any

__all__ = ["render", "template"]


@functools.cache
def template(name: str) -> string.Template:
    """The template ``<name>.md`` (read once)."""
    text = resources.files(__name__).joinpath(f"{name}.md").read_text("utf-8")
    return string.Template(text)


def render(name: str, **values: Any) -> str:
    """``<name>.md`` with its ``$placeholders`` filled (unknown ones are left as they are)."""
    return template(name).safe_substitute({k: str(v) for k, v in values.items()})
