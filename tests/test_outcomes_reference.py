"""Outcome spans load in halo-engine 0.3.5, and with the outcome filters unused every tool
answers on a dataset holding them exactly as the reference does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from halo_live.cli import main as halo
from halo_live.engine.tools import open_store, run_tool
from tests import _tools_helpers as gen
from tests._outcome_helpers import outcome
from tests._otlp_helpers import servers
from tests.test_outcomes_record import _otel_app
from tests.test_tools_reference import assert_same_as_reference, calls_for

pytestmark = pytest.mark.reference


def test_every_kind_of_outcome_span_loads_and_unused_filters_answer_as_the_reference(halo_reference, tmp_path,
                                                                                      capsys):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    lines = gen.generate(24, seed=21, big_every=9)
    path = gen.write(tmp_path / "traces.jsonl", lines)
    ids = list(dict.fromkeys(json.loads(line)["trace_id"] for line in lines))
    # outcomes as a harness records them, ...
    gen.write(path, [outcome(t, f"o{i:015x}", passed=i % 2 == 0, task=f"task-{i}", score=float(i % 2 == 0),
                             end=10.0, parent="") for i, t in enumerate(ids[:8])], append=True)
    # ... as `halo annotate` appends them, ...
    grades = tmp_path / "grades.jsonl"
    grades.write_text("".join(json.dumps({"trace_id": t, "passed": False, "label": "late regrade"}) + "\n"
                              for t in ids[6:12]))
    assert halo(["annotate", str(path), str(grades)]) == 0
    capsys.readouterr()
    # ... and as an OTel app sends them to `halo serve`
    with servers(path) as s:
        for how in ("record_outcome", "event", "span"):
            _otel_app(OTLPSpanExporter(endpoint=s.http_url, timeout=10), how=how)
    everything = path.read_bytes().splitlines(keepends=True)
    with open_store(path) as store:
        assert run_tool(store, "count_traces", {"filters": {"outcome": "unknown"}})["result"]["total"] == \
            len(ids) + 3 - 12 - 3
        assert_same_as_reference(halo_reference, [path], calls_for(everything), store, tmp_path)
        overview = run_tool(store, "get_dataset_overview", {})["result"]
    reference = halo_reference.load_counts([path], tmp_path / "ref-counts")
    assert reference["total_spans"] == overview["total_spans"] == len(everything)


def test_the_outcome_span_of_an_sdk_run_loads_in_the_reference(halo_reference, tmp_path):
    from tests.test_outcomes_record import test_an_sdk_run_records_its_outcome_in_its_own_trace as sdk_run

    sdk_run(tmp_path, "responses")  # writes (and checks) tmp_path / "traces.jsonl"
    path = tmp_path / "traces.jsonl"
    reference = halo_reference.load_counts([path], tmp_path / "ref-index")
    with open_store(path, tmp_path / "ours") as store:
        ours = run_tool(store, "get_dataset_overview", {})["result"]
    for key in ("total_traces", "total_spans", "missing_parent_count", "error_trace_count"):
        assert reference[key] == ours[key], key
    assert (ours["total_traces"], ours["outcomes"]["passed"], ours["outcomes"]["failed"]) == (2, 1, 1)
    assert Path(path).read_text().count('"gen_ai.evaluation.result"') == 2
