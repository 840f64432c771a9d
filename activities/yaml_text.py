"""YAML parsing with libyaml's C loader when PyYAML was built with it (about 10x faster).

Contracts, transcripts and price lists are parsed on every phase that reads them; the
pure-Python loader spends a tenth of a second on a demo contract.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_yaml", "YAMLError"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAMLError = yaml.YAMLError


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` semantics (no arbitrary objects), C speed where available."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader, C or Python
