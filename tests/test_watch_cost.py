"""Cost so far: reported by the spans (`inference.llm.cost.total`), else estimated from tokens at
list prices; kept by the index per trace and in the totals, shown by `halo watch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from halo_live.engine.pricing import Prices, PricesError, estimate, load_prices
from halo_live.exporter import canonical as C
from halo_live.indexer import TraceIndex
from tests._index_helpers import span_line

ROOT = Path(__file__).resolve().parents[1]


def llm(trace: str, span: str, model: str | None, tin: int | None, tout: int | None, cost=None) -> bytes:
    attrs = {C.INF_OBSERVATION_KIND: "LLM", C.OI_SPAN_KIND: "LLM", C.INF_AGENT_NAME: "agent"}
    for key, value in ((C.INF_LLM_MODEL_NAME, model), (C.INF_LLM_INPUT_TOKENS, tin),
                       (C.INF_LLM_OUTPUT_TOKENS, tout), (C.INF_LLM_COST_TOTAL, cost)):
        if value is not None:
            attrs[key] = value
    return span_line(trace, span, "root", name=f"llm.{model}", attrs=attrs)


def root(trace: str) -> bytes:
    return span_line(trace, "root", attrs={C.INF_OBSERVATION_KIND: "AGENT", C.INF_AGENT_NAME: "agent"})


# Two traces; trace "b" has spans on both sides of the append in the live test.
FIRST = [
    root("a"),
    llm("a", "a1", "gpt-4.1-mini-2025-04-14", 1_000_000, 250_000),  # 0.40 + 0.40 = $0.80 estimated
    llm("a", "a2", "gpt-4.1", 300_000, 1_000, cost=0.5),  # reported: its tokens are not priced
    llm("b", "b1", "my-model", 10_000, 2_300),  # no price known: 12.3k tokens unpriced
]
SECOND = [
    llm("b", "b2", "my-model", 4_000, 100, cost=1.25),
    llm("b", "b3", "gpt-4.1", 500_000, 100_000),  # 1.00 + 0.80 = $1.80 estimated
    llm("b", "b4", "gpt-4.1-mini", 250_000, None, cost="free"),  # not a number: ignored, priced $0.10
    llm("b", "b5", None, 700, None),  # tokens naming no model
    root("b"),
]
COST = {"reported_usd": 1.75, "estimated_usd": 2.7, "total_usd": 4.45,
        "unpriced": {"my-model": 12_300, "(no model)": 700}}


def halo(*args: str, native: str = "1") -> subprocess.CompletedProcess:
    env = dict(os.environ, HALO_INDEX_NATIVE=native)
    return subprocess.run([sys.executable, "-m", "halo_live", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def frame_of(path: Path, *extra: str, native: str = "1") -> dict:
    done = halo("watch", str(path), "--once", "--json", *extra, native=native)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("native", ["1", "0"])
def test_once_json_shows_reported_estimated_and_unpriced_with_either_scanner(tmp_path, native):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST + SECOND))
    assert frame_of(path, native=native)["cost"] == COST


@pytest.mark.parametrize("native", ["1", "0"])
def test_the_figures_hold_after_an_append_and_equal_a_fresh_build(tmp_path, native):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST))
    first = frame_of(path, native=native)["cost"]
    assert first == {"reported_usd": 0.5, "estimated_usd": 0.8, "total_usd": 1.3, "unpriced": {"my-model": 12_300}}
    with open(path, "ab") as fh:
        fh.write(b"".join(SECOND))
    assert frame_of(path, native=native)["cost"] == COST  # the index caught up: trace "b" merged
    fresh = frame_of(path, "--index-dir", str(tmp_path / "fresh"), native=native)
    assert fresh["cost"] == COST


def test_the_index_keeps_the_cost_per_trace_and_for_the_dataset(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST))
    idx = TraceIndex.open(path)
    try:
        idx.catch_up()
        with open(path, "ab") as fh:
            fh.write(b"".join(SECOND))
        idx.catch_up()
        with idx.snapshot() as snap:
            a, b = snap.trace("a"), snap.trace("b")
            totals = snap.totals()
    finally:
        idx.close()
    assert (a.reported_cost_usd, a.model_tokens) == (0.5, {"gpt-4.1-mini-2025-04-14": [1_000_000, 250_000]})
    assert b.reported_cost_usd == 1.25
    assert b.model_tokens == {"my-model": [10_000, 2_300], "gpt-4.1": [500_000, 100_000],
                              "gpt-4.1-mini": [250_000, 0], "": [700, 0]}
    assert totals.reported_cost_usd == 1.75
    assert totals.model_tokens == {**a.model_tokens, **b.model_tokens}
    # every token is either under a reported cost or left to price
    priced_or_not = sum(i + o for i, o in totals.model_tokens.values())
    assert priced_or_not + 300_000 + 1_000 + 4_000 + 100 == totals.total_input_tokens + totals.total_output_tokens


def test_prices_file_overrides_and_adds_models(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST + SECOND))
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"my-model": [1, 2], "gpt-4.1": [0, 0]}))
    cost = frame_of(path, "--prices", str(prices))["cost"]
    # my-model: 10k in at $1 + 2.3k out at $2 = $0.0146; gpt-4.1 now free; gpt-4.1-mini as before
    assert cost == {"reported_usd": 1.75, "estimated_usd": 0.9146, "total_usd": 2.6646,
                    "unpriced": {"(no model)": 700}}


@pytest.mark.parametrize("content, says", [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ("[[1, 2]]", "must hold a JSON object"),
    ('{"m": [1]}', "'m' must be [input_usd_per_1m, output_usd_per_1m]"),
    ('{"m": [1, -2]}', "two numbers >= 0"),
    ('{"m": [true, 2]}', "two numbers >= 0"),
    ('{"m": {"input": 1}}', "must be"),
])
def test_a_bad_prices_file_is_one_line_and_exit_2(tmp_path, content, says):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST))
    prices = tmp_path / "prices.json"
    if content is not None:
        prices.write_text(content)
    done = halo("watch", str(path), "--once", "--prices", str(prices))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"halo: error: prices file {prices}: ") and says in done.stderr


def test_the_view_shows_the_cost_line_and_the_unpriced_models(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(FIRST + SECOND))
    done = halo("watch", str(path), "--once")
    assert done.returncode == 0, done.stderr
    lines = [" ".join(line.strip("│ ").split()) for line in done.stdout.splitlines()]
    assert "cost $4.45 (reported $1.75, estimated $2.70 at list prices)" in lines
    assert any(line.startswith("unpriced: my-model 12.3k tokens, (no model) 700 tokens") for line in lines)


@pytest.mark.parametrize("model, price", [
    ("gpt-4.1-mini", (0.40, 1.60)),
    ("gpt-4.1-mini-2025-04-14", (0.40, 1.60)),  # a dated version: its longest known prefix
    ("gpt-4.1-2025-04-14", (2.00, 8.00)),
    ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),
    ("gpt-4o-2024-05-13", (5.00, 15.00)),  # a dated version with its own price
    ("gpt-4-0613", (30.00, 60.00)),
    ("claude-3-5-sonnet-20241022", (3.00, 15.00)),
    ("claude-3-5-sonnet@20240620", (3.00, 15.00)),
    ("claude-opus-4-5-20251101", (5.00, 25.00)),
    ("openai/gpt-5-mini", (0.25, 2.00)),
    ("GPT-5-nano", (0.05, 0.40)),
    ("gpt-5.4-mini", None),  # another model, not a version of gpt-5
    ("o3-pro", None),
    ("my-model", None),
])
def test_list_prices_match_versioned_names_only(model, price):
    assert Prices().lookup(model) == price


def test_estimate_from_totals():
    cost = estimate(2.0, {"gpt-4o": [1_000_000, 1_000_000], "x": [5, 6], "": [0, 0]}, Prices({"X-other": (1, 1)}))
    assert (cost.reported_usd, cost.estimated_usd, cost.total_usd, cost.unpriced) == (2.0, 12.5, 14.5, {"x": 11})


def test_load_prices_reads_a_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"my-model": [0.5, 2], "gpt-4.1": [1.5, 6]}')
    prices = Prices(load_prices(path))
    assert prices.lookup("my-model-2026-01-01") == (0.5, 2.0) and prices.lookup("gpt-4.1") == (1.5, 6.0)
    path.write_text("[]")
    with pytest.raises(PricesError):
        load_prices(path)
