"""Model list prices, and the cost of a run estimated from its tokens (`halo watch`).

What Langfuse and Phoenix do: a span's cost is the one its instrumentation
reported (`inference.llm.cost.total`); a span with tokens but no reported cost
is priced at its model's list price, USD per 1M input / output tokens. The
built-in table is small and dated; `load_prices(FILE)` (`halo watch --prices`)
adds models or overrides them. Cached-input, batch and long-context discounts
are not modelled: an estimate is a list-price figure.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PRICES_TAKEN = "2025-11-30"  # OpenAI's and Anthropic's published list prices, standard tier

# model -> (USD per 1M input tokens, USD per 1M output tokens)
LIST_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-3-haiku": (0.25, 1.25),
}

# What may follow a known name in a versioned one: a date or a "latest" alias
# (gpt-4.1-mini-2025-04-14, claude-3-5-sonnet-20241022, gpt-4-0613, ...@20240620).
# Anything else is another model: gpt-5.4-mini is not gpt-5, claude-opus-4-7 not claude-opus-4.
_VERSION = re.compile(r"[-@](\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)")


class PricesError(ValueError):
    """A prices file that cannot be used; the message names the file and what is wrong."""


class Prices:
    """A price list: the built-in one, with `extra` models added or overriding it."""

    def __init__(self, extra: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.table = {**LIST_PRICES, **{k.lower(): tuple(v) for k, v in (extra or {}).items()}}
        self._found: dict[str, tuple[float, float] | None] = {}

    def lookup(self, model: str) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens of `model`, or None when it has no price.

        An exact name, else the longest known name it starts with when the rest is a
        version (`_VERSION`); a `provider/` prefix (openai/gpt-4o) is looked past.
        """
        found = self._found.get(model, ...)
        if found is ...:
            found = self._found[model] = self._match(model.lower().rsplit("/", 1)[-1])
        return found

    def _match(self, name: str) -> tuple[float, float] | None:
        if name in self.table:
            return self.table[name]
        best = None
        for known in self.table:
            if (name.startswith(known) and _VERSION.fullmatch(name, len(known))
                    and (best is None or len(known) > len(best))):
                best = known
        return None if best is None else self.table[best]


@dataclass(slots=True)
class Cost:
    """A run's cost: reported by its spans, estimated from tokens, and the tokens left unpriced."""

    reported_usd: float = 0.0
    estimated_usd: float = 0.0
    unpriced: dict[str, int] = field(default_factory=dict)  # model ("" for none) -> tokens

    @property
    def total_usd(self) -> float:
        return self.reported_usd + self.estimated_usd


def estimate(reported_usd: float, model_tokens: Mapping[str, list[int]], prices: Prices) -> Cost:
    """The cost of a run from the index's totals (`DatasetTotals.reported_cost_usd`, `.model_tokens`)."""
    cost = Cost(reported_usd=reported_usd)
    for model, (tin, tout) in model_tokens.items():
        price = prices.lookup(model) if model else None
        if price is None:
            if tin or tout:
                cost.unpriced[model] = tin + tout
        else:
            cost.estimated_usd += (tin * price[0] + tout * price[1]) / 1e6
    return cost


def load_prices(path: str | os.PathLike[str]) -> dict[str, tuple[float, float]]:
    """A prices file: JSON `{"model": [input_usd_per_1m, output_usd_per_1m], ...}`."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except OSError as exc:
        raise PricesError(f"prices file {os.fspath(path)}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PricesError(f"prices file {os.fspath(path)}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PricesError(f"prices file {os.fspath(path)}: must hold a JSON object "
                          '{"model": [input_usd_per_1m, output_usd_per_1m]}')
    out = {}
    for model, value in data.items():
        if not (model.strip() and isinstance(value, list) and len(value) == 2
                and all(type(x) in (int, float) and math.isfinite(x) and x >= 0 for x in value)):
            raise PricesError(f"prices file {os.fspath(path)}: {model!r} must be [input_usd_per_1m, "
                              f"output_usd_per_1m], two numbers >= 0, not {json.dumps(value)}")
        out[model.strip()] = (float(value[0]), float(value[1]))
    return out
