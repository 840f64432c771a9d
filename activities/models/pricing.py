"""What a model call costs, from a price table users can override.

Prices are USD per million tokens for four kinds of token, matching how the
providers bill and how :class:`~contract.Usage` counts them:

- ``input``: uncached input tokens (``Usage.input_tokens``),
- ``output``: output tokens, reasoning included (``Usage.output_tokens``),
- ``cache_read``: input tokens served from the prompt cache,
- ``cache_write``: input tokens written to the prompt cache (Anthropic's 5-minute
  write rate; for OpenAI models that do not bill writes it equals ``input``).

The built-in table holds **list prices as of 2026-11, taken from the providers'
public pricing pages; they change — override them** with a JSON or YAML file
named by the ``BACKFORGE_PRICES`` environment variable::

    # prices.yaml — keys are full model ids, or bare names for any provider
    anthropic:claude-sonnet-5-5: {input: 2, output: 10, cache_read: 0.1, cache_write: 2.5}
    openai:gpt-5.4-mini: [0.75, 4.5, 0.075]      # input, output[, cache_read[, cache_write]]
    openai:llama3.1: {input: 0, output: 0}       # a local server: free, and no warning

A model missing from both tables costs 0 and is flagged
(:attr:`CostEstimate.priced` is False, and one warning is logged per model), so
budgets never silently count an unknown model as free.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, ValidationError

from activities.models.errors import config_error
from activities.yaml_text import YAMLError, load_yaml
from contract import Usage

__all__ = [
    "PRICES_AS_OF",
    "PRICES_ENV",
    "DEFAULT_PRICES",
    "Price",
    "CostEstimate",
    "price_for",
    "estimate",
    "cost_usd",
    "check_config",
]

log = logging.getLogger(__name__)

PRICES_AS_OF = "2026-11"
PRICES_ENV = "BACKFORGE_PRICES"


class Price(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    #: Defaults to ``input`` when the provider gives no cache discount.
    cache_read: float | None = Field(default=None, ge=0)
    #: Defaults to ``input`` when the provider does not bill cache writes apart.
    cache_write: float | None = Field(default=None, ge=0)
    #: Prompts (input + cache reads + cache writes) above this many tokens are
    #: billed entirely at ``long_prompt`` rates (e.g. Claude Haiku 5.5 over 100k).
    long_prompt_threshold: int | None = Field(default=None, gt=0)
    long_prompt: Price | None = None

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` at these rates."""
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        if (
            self.long_prompt is not None
            and self.long_prompt_threshold
            and prompt > self.long_prompt_threshold
        ):
            return self.long_prompt.cost(usage)
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        total = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
        )
        return round(total / 1_000_000, 6)


def _p(i: float, o: float, r: float | None = None, w: float | None = None) -> Price:
    return Price(input=i, output=o, cache_read=r, cache_write=w)


# Anthropic: input, output, cache hit, 5-minute cache write.
_ANTHROPIC: dict[str, Price] = {
    "claude-fable-5-1": _p(10, 50, 0.25, 12.5),
    "claude-mythos-5-1": _p(10, 50, 0.25, 12.5),
    "claude-fable-5": _p(10, 50, 1, 12.5),
    "claude-mythos-5": _p(10, 50, 1, 12.5),
    "claude-opus-5-5": _p(4, 20, 0.2, 5),
    "claude-opus-5": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-8": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-7": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-6": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-5": _p(5, 25, 0.5, 6.25),
    "claude-opus-4-1": _p(15, 75, 1.5, 18.75),
    "claude-opus-4": _p(15, 75, 1.5, 18.75),
    # Sonnet 5.5 cache reads were cut from $0.20 to $0.10 on 2026-10-07.
    "claude-sonnet-5-5": _p(2, 10, 0.1, 2.5),
    "claude-sonnet-5": _p(2, 10, 0.2, 2.5),
    "claude-sonnet-4-6": _p(3, 15, 0.3, 3.75),
    "claude-sonnet-4-5": _p(3, 15, 0.3, 3.75),
    "claude-sonnet-4": _p(3, 15, 0.3, 3.75),
    "claude-haiku-5-5": Price(
        input=0.1,
        output=0.5,
        cache_read=0.01,
        cache_write=0.125,
        long_prompt_threshold=100_000,
        long_prompt=_p(0.5, 2.5, 0.05, 0.625),
    ),
    "claude-haiku-4-5": _p(1, 5, 0.1, 1.25),
    "claude-3-5-haiku": _p(0.8, 4, 0.08, 1),
}

# OpenAI: input, output, cached input[, cache write where billed].
_OPENAI: dict[str, Price] = {
    "gpt-5.6-sol": _p(5, 30, 0.5, 6.25),
    "gpt-5.6-terra": _p(2.5, 15, 0.25, 3.125),
    "gpt-5.6-luna": _p(1, 6, 0.1, 1.25),
    "gpt-5.5": _p(5, 30, 0.5),
    "gpt-5.5-pro": _p(30, 180),
    "gpt-5.4": _p(2.5, 15, 0.25),
    "gpt-5.4-pro": _p(30, 180),
    "gpt-5.4-mini": _p(0.75, 4.5, 0.075),
    "gpt-5.4-nano": _p(0.2, 1.25, 0.02),
    "gpt-5.2": _p(1.75, 14, 0.175),
    "gpt-5.1": _p(1.25, 10, 0.125),
    "gpt-5": _p(1.25, 10, 0.125),
    "gpt-5-mini": _p(0.25, 2, 0.025),
    "gpt-5-nano": _p(0.05, 0.4, 0.005),
    "gpt-4.1": _p(2, 8, 0.5),
    "gpt-4.1-mini": _p(0.4, 1.6, 0.1),
    "gpt-4.1-nano": _p(0.1, 0.4, 0.025),
    "gpt-4o": _p(2.5, 10, 1.25),
    "gpt-4o-mini": _p(0.15, 0.6, 0.075),
    "o3": _p(2, 8, 0.5),
    "o4-mini": _p(1.1, 4.4, 0.275),
}

#: The built-in table, keyed by full model id.
DEFAULT_PRICES: dict[str, Price] = {
    **{f"anthropic:{name}": price for name, price in _ANTHROPIC.items()},
    **{f"openai:{name}": price for name, price in _OPENAI.items()},
}

_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class CostEstimate(NamedTuple):
    """A cost, and whether a price was known."""

    usd: float
    priced: bool
    note: str | None = None


# ---------------------------------------------------------------------------
# Overrides

_cache: dict[str, tuple[float, dict[str, Price]]] = {}
_warned: set[str] = set()


def _parse_price(key: str, value: Any) -> Price:
    if isinstance(value, list | tuple):
        names = ("input", "output", "cache_read", "cache_write")
        if not 2 <= len(value) <= 4:
            raise ValueError(
                f"{key}: a list price needs 2 to 4 numbers (input, output, cache_read, cache_write)"
            )
        value = dict(zip(names, value, strict=False))
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a mapping or a list of numbers")
    try:
        return Price.model_validate(value)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{key}: {problems}") from None


def _load_overrides() -> dict[str, Price]:
    """Overrides from ``$BACKFORGE_PRICES`` (re-read when the file changes)."""
    path_text = os.environ.get(PRICES_ENV)
    if not path_text:
        return {}
    path = Path(path_text).expanduser()
    try:
        mtime = path.stat().st_mtime
    except OSError as err:
        raise config_error(
            f"{PRICES_ENV}={path_text}: cannot read the price file: {err.strerror}"
        ) from None
    cached = _cache.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text)
    except (OSError, ValueError, YAMLError) as err:
        raise config_error(f"{PRICES_ENV}={path_text}: not valid JSON/YAML: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("prices"), dict):
        data = data["prices"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise config_error(f"{PRICES_ENV}={path_text}: expected a mapping of model id to price")
    prices: dict[str, Price] = {}
    try:
        for key, value in data.items():
            prices[str(key)] = _parse_price(str(key), value)
    except ValueError as err:
        raise config_error(f"{PRICES_ENV}={path_text}: {err}") from None
    _cache[str(path)] = (mtime, prices)
    return prices


def check_config() -> None:
    """Fail fast (non-retryable ``ModelConfigError``) if the price file is unusable."""
    _load_overrides()


def price_for(model_id: str) -> Price | None:
    """The price of ``model_id`` (``provider:name``), overrides first.

    Lookup order: the full id, then the bare name, each as given and with a date
    or ``-latest`` suffix removed (``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``).
    """
    overrides = _load_overrides()
    provider, _, name = model_id.partition(":")
    if not name:
        provider, name = "", model_id
    candidates = [name]
    base = _SUFFIX.sub("", name)
    if base != name:
        candidates.append(base)
    for table in (overrides, DEFAULT_PRICES):
        for candidate in candidates:
            full = f"{provider}:{candidate}" if provider else candidate
            if full in table:
                return table[full]
            if table is overrides and candidate in table:
                return table[candidate]
    return None


def estimate(model_id: str, usage: Usage) -> CostEstimate:
    """The cost of ``usage`` on ``model_id``; unknown models cost 0 and are flagged."""
    price = price_for(model_id)
    if price is None:
        note = f"no price for {model_id}: counted as $0 (add it to the file named by {PRICES_ENV})"
        if model_id not in _warned:
            _warned.add(model_id)
            log.warning(note)
        return CostEstimate(0.0, False, note)
    return CostEstimate(price.cost(usage), True)


def cost_usd(model_id: str, usage: Usage) -> float:
    """USD for ``usage`` on ``model_id`` (0 with a logged warning when unpriced)."""
    return estimate(model_id, usage).usd
