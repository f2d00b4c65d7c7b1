"""A trace's cost as the index keeps it: the reported cost and the tokens left to price.

The row's `R_COST` is the sum of `inference.llm.cost.total` over the spans
that carry a number there; `R_MODEL_TOKENS` holds, per model name ("" for a
span naming none), the input and output tokens of the spans with tokens and
no reported cost. The dataset totals keep both for the whole dataset
(`reported_cost_usd`, `model_tokens`), moved by the difference between a row
before and after a batch, as the other sums are. Prices are the engine's.
"""

from __future__ import annotations

from halo_live.indexer import layout as L


def merge(row: list, cost: float, model_tokens: dict | None) -> None:
    """Fold a partial's reported cost and tokens left to price (parse.P_COST, P_MODEL_TOKENS) in."""
    row[L.R_COST] += cost
    if model_tokens:
        # a copy: the row before the batch may share this dict (`old = list(row)`)
        sums = row[L.R_MODEL_TOKENS] = {k: list(v) for k, v in row[L.R_MODEL_TOKENS].items()}
        for model, (tin, tout) in model_tokens.items():
            pair = sums.setdefault(model, [0, 0])
            pair[0] += tin
            pair[1] += tout


def move_totals(totals: dict, old: list | None, row: list) -> None:
    """The dataset's reported cost and tokens left to price move with the row's (None: a new trace)."""
    if old is None or row[L.R_COST] != old[L.R_COST]:
        totals["reported_cost_usd"] += row[L.R_COST] - (old[L.R_COST] if old is not None else 0.0)
    if old is not None and row[L.R_MODEL_TOKENS] == old[L.R_MODEL_TOKENS]:
        return
    sums = totals.setdefault("model_tokens", {})
    before = old[L.R_MODEL_TOKENS] if old is not None else {}
    for model, (tin, tout) in row[L.R_MODEL_TOKENS].items():
        was = before.get(model, (0, 0))
        pair = sums.setdefault(model, [0, 0])
        pair[0] += tin - was[0]
        pair[1] += tout - was[1]
