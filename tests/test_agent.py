"""The diagnostic agent end to end: `halo TRACE_PATH -p` through `halo_live.engine.cli.main`
against the scripted OpenAI-compatible model server, over real HTTP with the
real `openai` client and `Runner`, for both APIs, streamed and not."""

from __future__ import annotations

import json
import re

import pytest

from halo_live.demo.model_server import ModelServer, Reply
from halo_live.cli import main
from tests._agent_helpers import (
    FAILING_TRACE,
    TRACE_IDS,
    RolePolicy,
    call,
    halo_args,
    sample_ids,
    tool_results,
    write_traces,
)

MODES = [("chat", True), ("chat", False), ("responses", True), ("responses", False)]
MODE_IDS = [f"{api}-{'stream' if stream else 'plain'}" for api, stream in MODES]


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("HALO_TELEMETRY_PATH", raising=False)


@pytest.fixture
def traces(tmp_path):
    return write_traces(tmp_path / "traces.jsonl")


def _mode_args(api: str, stream: bool) -> list[str]:
    return ["--api", api] + ([] if stream else ["--no-stream"])


def _investigation() -> RolePolicy:
    """Overview, then a subagent and a synthesis in parallel, then a final answer from both."""

    def delegate(turn):
        ids = sample_ids(turn)
        assert FAILING_TRACE in ids
        return Reply(tool_calls=[
            call("call_subagent", input=f"Why does trace {FAILING_TRACE} fail?"),
            call("synthesize_traces", trace_ids=ids[:2], focus="errors"),
        ])

    def finish(turn):
        sub = tool_results(turn, "call_subagent")[0]
        summary = tool_results(turn, "synthesize_traces")[0]["summary"]
        return Reply(tool_calls=[call(
            "final_answer", answer=f"Trace {FAILING_TRACE}: {sub['answer']} / {summary}",
        )])

    def sub_search(turn):
        trace_id = re.search(r"[0-9a-f]{32}", turn.messages[0]["content"]).group(0)
        return Reply(tool_calls=[call("search_trace", trace_id=trace_id,
                                      regex_pattern="STATUS_CODE_ERROR")])

    def sub_answer(turn):
        found = tool_results(turn, "search_trace")[0]["result"]
        return Reply(text=f"read_file failed ({found['match_count']} error span)")

    return RolePolicy(
        root=[Reply(tool_calls=[call("get_dataset_overview")]), delegate, finish],
        sub=[sub_search, sub_answer],
        synthesis=[Reply(text="two traces read files; one read fails")],
    )


@pytest.mark.parametrize(("api", "stream"), MODES, ids=MODE_IDS)
def test_agent_investigates_with_tools_subagent_and_synthesis(traces, capsys, api, stream):
    policy = _investigation()
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, *_mode_args(api, stream)))
        turns = list(server.turns)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == (
        f"Trace {FAILING_TRACE}: read_file failed (1 error span) / two traces read files; one read fails"
    )
    agent_turns = policy.seen["root"] + policy.seen["sub"]
    assert {(t.api, t.stream) for t in agent_turns} == {(api, stream)}
    assert {t.api for t in turns} == {api}  # synthesis too (always a plain request)
    # the steps were shown on stderr, the answer only on stdout
    for step in ("get_dataset_overview", "call_subagent", "synthesize_traces", "search_trace"):
        assert step in err
    assert "read_file failed" not in out.split("/")[1]
    # every role ran, each with the tools of its depth
    assert [len(policy.seen[r]) for r in ("root", "sub", "synthesis")] == [3, 2, 1]
    root_tools = {t["name"] for t in policy.seen["root"][0].tools}
    assert {"get_dataset_overview", "view_trace", "search_span", "call_subagent",
            "synthesize_traces", "final_answer"} <= root_tools
    sub_tools = {t["name"] for t in policy.seen["sub"][0].tools}
    assert "final_answer" not in sub_tools and "call_subagent" in sub_tools  # depth 1 < 2
    # the synthesis model read the traces it was given
    synthesis_input = json.dumps(policy.seen["synthesis"][0].messages)
    assert TRACE_IDS[0] in synthesis_input and "read_file" in synthesis_input
    # the parent read the subagent's own accounting
    sub_result = tool_results(policy.seen["root"][-1], "call_subagent")[0]
    assert (sub_result["turns_used"], sub_result["tool_calls_made"], sub_result["ok"]) == (2, 1, True)


def test_agent_answer_may_be_plain_text(traces, capsys):
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces", filters={"has_errors": True})]),
                              lambda t: Reply(text=f"{tool_results(t)[0]['result']['total']} failing")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--max-depth", "0"))
    out, _ = capsys.readouterr()
    assert code == 0 and out.strip() == "1 failing"
    assert "call_subagent" not in {t["name"] for t in policy.seen["root"][0].tools}


def test_bad_tool_arguments_reach_the_model_as_an_error(traces, capsys):
    def recover(turn):
        error = tool_results(turn, "view_trace")[0]["error"]
        return Reply(text=f"recovered from: {error}")

    policy = RolePolicy(root=[Reply(tool_calls=[call("view_trace", trace_id=123, bogus=1)]), recover])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("recovered from: invalid arguments for view_trace")
    assert "← view_trace error:" in err


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("api", "stream"), [("chat", True), ("responses", False)], ids=["chat-stream", "responses-plain"])
def test_transient_errors_are_retried(traces, capsys, status, api, stream):
    policy = RolePolicy(root=[Reply(error_status=status, error_message="slow down"),
                              Reply(tool_calls=[call("get_dataset_overview")]),
                              Reply(error_status=status, error_message="slow down"),
                              Reply(text="fine after retries")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, *_mode_args(api, stream)))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "fine after retries"
    assert len(policy.seen["root"]) == 4


@pytest.mark.parametrize(("api", "stream"), MODES, ids=MODE_IDS)
def test_turn_budget_exhaustion_still_answers(traces, capsys, api, stream):
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")])] * 2 + [
        lambda t: Reply(text=f"partial: {len(tool_results(t, 'count_traces'))} counts made")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--max-turns", "2", *_mode_args(api, stream)))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "partial: 2 counts made"
    closing = policy.seen["root"][-1]
    assert "turn budget is used up" in json.dumps(closing.messages)
    assert closing.body.get("tool_choice") == "none"


def test_subagents_respect_the_parallel_cap(traces, capsys):
    def sub_step(turn):
        question = turn.messages[0]["content"]
        if not tool_results(turn):
            return Reply(tool_calls=[call("count_traces")])
        return Reply(text=f"answer to {question}")

    policy = RolePolicy(
        root=[Reply(tool_calls=[call("call_subagent", input="question A"),
                                call("call_subagent", input="question B")]),
              lambda t: Reply(text=" | ".join(r["answer"] for r in tool_results(t, "call_subagent")))],
        sub=[sub_step] * 4,
    )
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--max-parallel", "1"))
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.strip() == "answer to question A | answer to question B"
    order = [t.messages[0]["content"] for t in policy.seen["sub"]]
    # one at a time: each subagent's two turns are adjacent
    assert order in (["question A"] * 2 + ["question B"] * 2, ["question B"] * 2 + ["question A"] * 2)


def test_max_depth_is_enforced_structurally(traces, capsys):
    policy = RolePolicy(root=[Reply(tool_calls=[call("call_subagent", input="go deeper")]),
                              Reply(text="ok")],
                        sub=[Reply(text="leaf")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--max-depth", "1")) == 0
    assert "call_subagent" not in {t["name"] for t in policy.seen["sub"][0].tools}


def test_old_tool_results_are_compacted_when_the_input_grows(tmp_path, capsys):
    traces = write_traces(tmp_path / "big.jsonl", payload_chars=3_000)
    views = [Reply(tool_calls=[call("view_trace", trace_id=t)]) for t in TRACE_IDS] * 2

    def answer(turn):
        compacted = [m for m in turn.messages
                     if m["role"] == "tool" and str(m.get("content", "")).startswith("[halo compacted")]
        return Reply(text=f"{len(compacted)} compacted")

    policy = RolePolicy(root=[*views, answer], compaction=[Reply(text="summary of a view")] * 10)
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--compaction-threshold", "12000"))
    out, err = capsys.readouterr()
    assert code == 0, err
    compacted = int(out.split()[0])
    assert compacted >= 1
    assert 1 <= len(policy.seen["compaction"]) <= len(views)  # each result summarized at most once
    assert "compacted" in err


def test_telemetry_records_the_engines_own_run(traces, tmp_path, capsys):
    from halo_live.engine.tools import open_store, run_tool
    from halo_live.exporter import canonical

    telemetry = tmp_path / "self.jsonl"
    policy = _investigation()
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--telemetry", str(telemetry)))
    _, err = capsys.readouterr()
    assert code == 0, err
    spans = [json.loads(line) for line in telemetry.read_bytes().splitlines()]
    kinds = {s[canonical.ATTRIBUTES].get(canonical.INF_OBSERVATION_KIND) for s in spans}
    assert {"LLM", "TOOL", "AGENT"} <= kinds
    assert len({s[canonical.TRACE_ID] for s in spans}) == 1  # subagents nest in the run's one trace
    tool_names = {s[canonical.NAME] for s in spans if s[canonical.ATTRIBUTES].get(canonical.INF_OBSERVATION_KIND) == "TOOL"}
    assert {"function.get_dataset_overview", "function.call_subagent",
            "function.search_trace", "function.synthesize_traces"} <= tool_names
    assert all(s[canonical.STATUS][canonical.STATUS_CODE_FIELD] in canonical.STATUS_CODES for s in spans)
    # and halo can read its own run with its own tools
    store = open_store(telemetry, tmp_path / "idx")
    try:
        overview = run_tool(store, "get_dataset_overview", {})
    finally:
        store.close()
    assert overview["result"]["total_traces"] == 1


def test_a_call_to_an_unknown_tool_is_answered_not_fatal(traces, capsys):
    def recover(turn):
        tool_messages = [m for m in turn.messages if m["role"] == "tool"]
        return Reply(text="recovered" if tool_messages else "no error seen")

    policy = RolePolicy(root=[Reply(tool_calls=[call("view_traces", trace_id="x")]), recover])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "recovered"


def test_the_runner_retries_after_the_client_gives_up(traces, capsys):
    # the client retries twice itself; the third 429 in a row is retried by the SDK runner
    busy = Reply(error_status=429, error_message="busy")
    policy = RolePolicy(root=[busy, busy, busy, busy, Reply(text="through")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "through" and len(policy.seen["root"]) == 5
    assert err.count("model call failed; retrying") == 4


@pytest.mark.parametrize(("api", "stream"), [("chat", True), ("responses", False)], ids=["chat-stream", "responses-plain"])
def test_context_overflow_resumes_from_history_with_tighter_compaction(traces, capsys, api, stream):
    def answer(turn):
        seen = tool_results(turn, "count_traces")
        return Reply(text=f"resumed with {len(seen)} earlier result(s): {seen[0]['result']['total']}")

    overflow = Reply(error_status=400, error_message="This model's maximum context length is 8192 tokens")
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), overflow, answer])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, *_mode_args(api, stream)))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "resumed with 1 earlier result(s): 3"
    assert "re-running from history" in err
    # the resumed call carried the history once, with one fresh turn reminder
    last = policy.seen["root"][-1]
    assert sum("[halo: turn" in str(m.get("content")) for m in last.messages) == 1


def test_telemetry_marks_tool_errors_as_error_spans(traces, tmp_path, capsys):
    from halo_live.exporter import canonical

    telemetry = tmp_path / "self.jsonl"
    policy = RolePolicy(root=[Reply(tool_calls=[call("view_trace", trace_id="f" * 32)]),
                              Reply(text="no such trace")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--telemetry", str(telemetry), "--api", "responses")) == 0
    capsys.readouterr()
    spans = [json.loads(line) for line in telemetry.read_bytes().splitlines()]
    failed = [s for s in spans if s[canonical.STATUS][canonical.STATUS_CODE_FIELD] == canonical.STATUS_ERROR]
    assert [s[canonical.NAME] for s in failed] == ["function.view_trace"]


def test_synthesis_of_unknown_ids_is_an_error_without_a_model_call(traces, capsys):
    policy = RolePolicy(root=[Reply(tool_calls=[call("synthesize_traces", trace_ids=["f" * 32])]),
                              lambda t: Reply(text=tool_results(t, "synthesize_traces")[0]["error"])])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server)) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("no such trace ids: " + "f" * 32)
    assert "synthesis" not in policy.seen


def test_instructions_carry_the_rules_and_the_caps(traces, capsys):
    policy = RolePolicy(root=[Reply(text="ok")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server, "--max-turns", "7", "--max-parallel", "3", "-q")) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "ok" and err == ""  # --quiet: only the answer
    text = policy.seen["root"][0].instructions
    for rule in ("`get_dataset_overview` FIRST", "Never invent a trace id", "search_trace",
                 "cite the trace ids", "at most 7 turns", "at most\n3 run at once"):
        assert rule in text, rule
    assert "[halo: turn 1 of 7]" in json.dumps(policy.seen["root"][0].messages)


@pytest.mark.parametrize(("api", "keep_bytes", "who_retries"), [
    ("chat", 600, "model call failed; retrying"),  # nothing shown yet: the SDK replays the call
    ("responses", 600, "model call failed; retrying"),
    ("chat", 3000, "re-running from history"),  # text already streamed: the SDK won't; we do
])
def test_a_stream_cut_mid_answer_is_recovered(traces, capsys, api, keep_bytes, who_retries):
    from tests._agent_helpers import CuttingProxy

    long_text = "this answer is cut off by a dropped connection " * 40
    policy = RolePolicy(root=[
        Reply(tool_calls=[call("count_traces")]),
        Reply(text=long_text),
        lambda t: Reply(text=f"after the cut, with {len(tool_results(t, 'count_traces'))} result"),
    ])
    with ModelServer(policy) as server, \
            CuttingProxy(server.base_url, cut={2}, keep_bytes=keep_bytes) as proxy:
        code = main(halo_args(traces, proxy, "--api", api))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "after the cut, with 1 result"
    assert who_retries in err


def test_a_failing_subagent_answers_its_parent_instead_of_failing_the_run(traces, capsys):
    policy = RolePolicy(
        root=[Reply(tool_calls=[call("call_subagent", input="look at errors")]),
              lambda t: Reply(text="parent saw: " + tool_results(t, "call_subagent")[0]["answer"])],
        sub=[Reply(error_status=400, error_message="bad sub request")],
    )
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("parent saw: Subagent failed: BadRequestError")
    assert "bad sub request" in out


def test_an_empty_final_turn_is_asked_for_the_answer(traces, capsys):
    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), Reply(text=""),
                              Reply(text="3 traces, 1 failing")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "3 traces, 1 failing"
    assert "had no answer" in json.dumps(policy.seen["root"][-1].messages)


def test_the_agent_sees_traces_that_arrive_while_it_works(tmp_path, capsys):
    traces = write_traces(tmp_path / "live.jsonl")
    # the same three traces under new ids (every trace id starts with 28 zeros)
    more = write_traces(tmp_path / "more.jsonl").read_bytes().replace(b'"' + b"0" * 28, b'"' + b"1" * 28)

    def grow_then_count(turn):
        with traces.open("ab") as fh:  # a running benchmark appends three more traces
            fh.write(more)
        return Reply(tool_calls=[call("count_traces")])

    def answer(turn):
        totals = [r["result"]["total"] for r in tool_results(turn, "count_traces")]
        return Reply(text=" then ".join(map(str, totals)))

    policy = RolePolicy(root=[Reply(tool_calls=[call("count_traces")]), grow_then_count, answer])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server)) == 0
    assert capsys.readouterr().out.strip() == "3 then 6"
