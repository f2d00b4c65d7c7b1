"""An offline stand-in model for halo's diagnostic agent: a deterministic policy, not an LLM.

It lets a user without an API key watch the real diagnostic agent (`halo TRACE_PATH -p`)
run a real investigation with the real trace tools. Like a real model it reads only its
turn: the tool list and the tool results in the conversation. Its plan:

1. `get_dataset_overview`: the error taxonomy (top signatures, example trace ids) and,
   where the harness recorded task outcomes, the pass rate and `failure_signatures`
   (the signatures ranked by the failures they explain): then those are the ones to
   investigate, and failed traces are contrasted with passed ones;
2. `query_traces` with `has_errors` (how many traces fail) and, in the same turn,
   `search_trace` for error spans in one example trace of each top signature, with
   outcomes `query_traces` for the silent failures (failed, no error span) and, when
   offered, `run_code` for per-model failures and median tokens across every trace;
3. `view_spans` on the matching spans, to read the actual error detail (the tool's
   input and error text in the span attributes);
4. a short markdown report through `final_answer` (or as text when the agent has no
   such tool): the pass rate, then per signature the traces hit (and how many of them
   failed, against the failure rate without it), example ids, the cause seen in the
   spans and a suggested harness change; the silent failures; labelled as coming from
   this stand-in.

    python -m halo_live.demo.model_server --port 8000 --policy halo_live.demo.diagnostic_policy:policy
    halo traces/ -p "What fails and why?" --base-url http://127.0.0.1:8000/v1   # loopback: no key

or in one command: `python -m halo_live.demo.diagnostic_policy traces/ [-p QUESTION]`.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from halo_live.demo import diagnostic_code
from halo_live.demo.model_server import Reply, ToolCall, Turn
from halo_live.exporter.canonical import (
    ATTRIBUTES,
    EXCEPTION_MESSAGE,
    INF_OBSERVATION_KIND,
    OBS_AGENT,
    OBS_LLM,
    OBS_TOOL,
    OI_INPUT_VALUE,
    OI_OUTPUT_VALUE,
    OI_SPAN_KIND,
    OI_TOOL_NAME,
    GENAI_TOOL_NAME,
    NAME,
    SDK_ERROR_DATA,
    SPAN_ID,
    STATUS,
    STATUS_ERROR,
    STATUS_MESSAGE_FIELD,
)

MODEL_NAME = "halo-offline-diagnosis"
DEFAULT_QUESTION = "What are the top error signatures, what causes each, and what harness change would fix it?"
TOP_SIGNATURES = 3
SILENT_EXAMPLES = 3
ERRORS_QUERY = {"has_errors": True}
SILENT_QUERY = {"outcome": "failed", "has_errors": False}
SPANS_PER_SIGNATURE = 5  # enough to tell a repeated identical call from varied ones
SEARCH_MATCHES = 50
LABEL = ("> Written by halo's **offline stand-in model** (`halo_live.demo.diagnostic_policy`), a deterministic "
         "policy, not an LLM: it drove the real diagnostic agent and trace tools and reports what "
         "they returned. Set `OPENAI_API_KEY` (or `--base-url`) for a real model's diagnosis.")

_MISSING = re.compile(r"no such|not found|does not exist|FileNotFound|unknown path", re.I)
_LIMIT = re.compile(r"out of range|too (large|many|long|big)|exceed|at most|limit|maximum", re.I)
_TIMEOUT = re.compile(r"time ?out|timed out|deadline", re.I)
_INVALID = re.compile(r"invalid|validation|schema|malformed|JSONDecode|unexpected (keyword|argument)", re.I)
_RATE = re.compile(r"rate.?limit|429|quota", re.I)
_MAX_TURNS = re.compile(r"max.?turns", re.I)


@dataclass
class _Call:
    name: str
    args: dict
    result: dict | None  # None until answered (or not JSON)


def _history(turn: Turn) -> list[_Call]:
    """The tool calls of the conversation so far, each with its parsed result."""
    results = {m.get("tool_call_id"): m.get("content") for m in turn.messages if m.get("role") == "tool"}
    calls = []
    for message in turn.messages:
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            calls.append(_Call(fn.get("name", ""), _json(fn.get("arguments")) or {},
                               _json(results.get(call.get("id")))))
    return calls


def _json(text) -> dict | None:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text or "")
    except (TypeError, ValueError):
        return None
    if isinstance(value, dict) and isinstance(value.get("result"), dict):
        return value["result"]  # `halo tool`'s envelope, should a server add one
    return value if isinstance(value, dict) else None


def _call(name: str, **arguments) -> ToolCall:
    return ToolCall(name, json.dumps(arguments))


class DiagnosticPolicy:
    """A `Turn -> Reply` policy that plays the model of halo's diagnostic agent."""

    def __init__(self, top: int = TOP_SIGNATURES) -> None:
        self.top = top

    def __call__(self, turn: Turn) -> Reply:
        tools = {t["name"] for t in turn.tools}
        if "get_dataset_overview" not in tools:  # synthesis, compaction: tool-less helper calls
            return Reply(text="(offline stand-in model) " + _last_user_text(turn)[:2000])
        calls = _history(turn)
        overview = _last(calls, "get_dataset_overview")
        if "do not call any tool" in _last_user_text(turn).lower():  # the agent's wrap-up: answer now
            if overview is None or overview.result is None:
                return Reply(text=f"{LABEL}\n\nThe turn budget ran out before the dataset overview.")
            tools = set()
        elif overview is None or overview.result is None:
            return Reply(tool_calls=[_call("get_dataset_overview")])
        outcomes = overview.result.get("outcomes")
        # With pass/fail known, the signatures that explain failures; else the largest.
        ranked = overview.result.get("failure_signatures") or overview.result.get("error_taxonomy")
        signatures = list(ranked or [])[: self.top]
        if not signatures:
            return self._finish(tools, _no_errors(overview.result))
        # On the wrap-up turn (no tools) the calls so far are all there is to report.
        if tools and _last(calls, "query_traces") is None:
            compute = [_call(diagnostic_code.RUN_CODE, code=diagnostic_code.PER_MODEL)] \
                if diagnostic_code.RUN_CODE in tools else []
            silent = ([_call("query_traces", filters=SILENT_QUERY, limit=SILENT_EXAMPLES)]
                      if outcomes and outcomes.get("silent_failure_count") else [])
            return Reply(tool_calls=[_call("query_traces", filters=ERRORS_QUERY, limit=50)] + silent
                         + [_call("search_trace", trace_id=t, regex_pattern=STATUS_ERROR,
                                  max_matches=SEARCH_MATCHES) for t in _example_traces(signatures)]
                         + compute)
        searches = _merge_searches(calls)
        if tools and _last(calls, "view_spans") is None:
            narrow = _narrower_searches(signatures, searches)
            if narrow:
                return Reply(tool_calls=narrow)
            views = _spans_to_view(signatures, searches)
            if views:
                return Reply(tool_calls=[_call("view_spans", trace_id=t, span_ids=ids) for t, ids in views.items()])
        spans = {}
        for c in calls:
            if c.name == "view_spans" and c.result:
                for span in c.result.get("spans") or []:
                    spans[span.get(SPAN_ID)] = span
        failing = (_query(calls, ERRORS_QUERY) or {}).get("total")
        silent = [t.get("trace_id") for t in (_query(calls, SILENT_QUERY) or {}).get("traces") or []]
        computed = _last(calls, diagnostic_code.RUN_CODE)
        return self._finish(tools, _report(overview.result, failing, signatures, searches, spans, silent,
                                           diagnostic_code.render(computed and (computed.result or {}))))

    @staticmethod
    def _finish(tools: set[str], answer: str) -> Reply:
        if "final_answer" in tools:
            return Reply(tool_calls=[_call("final_answer", answer=answer)])
        return Reply(text=answer)


# For `python -m halo_live.demo.model_server --policy halo_live.demo.diagnostic_policy:policy` (it holds no state).
policy = DiagnosticPolicy()


def _last(calls: list[_Call], name: str) -> _Call | None:
    return next((c for c in reversed(calls) if c.name == name), None)


def _query(calls: list[_Call], filters: dict) -> dict | None:
    """The result of the latest `query_traces` with exactly these filters."""
    return next((c.result for c in reversed(calls)
                 if c.name == "query_traces" and c.args.get("filters") == filters), None)


def _last_user_text(turn: Turn) -> str:
    for message in reversed(turn.messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def _example_traces(signatures: list[dict]) -> list[str]:
    """The first example trace of each signature, each once."""
    ids = [(s.get("example_trace_ids") or [None])[0] for s in signatures]
    return list(dict.fromkeys(i for i in ids if i))


def _merge_searches(calls: list[_Call]) -> dict[str, dict]:
    """Per trace id: every error-span match of its searches (by span id), whether any had more,
    and whether a search by span name was made."""
    merged: dict[str, dict] = {}
    for c in calls:
        if c.name != "search_trace":
            continue
        entry = merged.setdefault(c.args.get("trace_id"), {"matches": {}, "has_more": False, "by_name": False})
        result = c.result or {}
        entry["has_more"] |= bool(result.get("has_more"))
        entry["by_name"] |= c.args.get("regex_pattern") != STATUS_ERROR
        for match in result.get("matches") or []:
            if match.get("status_code") == STATUS_ERROR and match.get("span_id"):
                entry["matches"].setdefault(match["span_id"], match)
    return {trace: {**e, "matches": list(e["matches"].values())} for trace, e in merged.items()}


def _narrower_searches(signatures: list[dict], searches: dict[str, dict]) -> list[ToolCall]:
    """A search by span name where the error search was cut (`has_more`) before the signature's spans."""
    calls = []
    for sig in signatures:
        trace = (sig.get("example_trace_ids") or [None])[0]
        entry = searches.get(trace) or {}
        if trace and entry.get("has_more") and not entry.get("by_name") and not _matches(sig, searches):
            name = json.dumps(sig.get("span_name", ""))  # the span's "name" field as the raw JSON spells it
            calls.append(_call("search_trace", trace_id=trace, regex_pattern=f'"name":{re.escape(name)}',
                               max_matches=SEARCH_MATCHES))
    return calls


def _matches(signature: dict, searches: dict[str, dict]) -> list[dict]:
    """The error spans of the signature's first example trace that carry its span name."""
    trace = (signature.get("example_trace_ids") or [None])[0]
    found = (searches.get(trace) or {}).get("matches") or []
    return [m for m in found if m.get("span_name") == signature.get("span_name")]


def _spans_to_view(signatures: list[dict], searches: dict[str, dict]) -> dict[str, list[str]]:
    views: dict[str, list[str]] = {}
    for sig in signatures:
        ids = [m["span_id"] for m in _matches(sig, searches)[:SPANS_PER_SIGNATURE] if m.get("span_id")]
        if ids:
            trace = sig["example_trace_ids"][0]
            views[trace] = list(dict.fromkeys(views.get(trace, []) + ids))
    return views


# -- reading spans ------------------------------------------------------------------------

def _attrs(span: dict) -> dict:
    return span.get(ATTRIBUTES) or {}


def _kind(span: dict) -> str:
    attrs = _attrs(span)
    return str(attrs.get(INF_OBSERVATION_KIND) or attrs.get(OI_SPAN_KIND) or "")


def _find(attrs: dict, exact: Sequence[str], *needles: str) -> str:
    """The first non-empty attribute among `exact` keys, else among keys holding a needle."""
    for key in exact:
        if attrs.get(key) not in (None, ""):
            return str(attrs[key])
    for key, value in attrs.items():
        if value not in (None, "") and any(n in key.lower() for n in needles):
            return str(value)
    return ""


def _detail(span: dict) -> tuple[str, str, str]:
    """(tool name, input, error text) as the span states them: an output that reads as an
    error, else an error/exception attribute, else the status message."""
    attrs = _attrs(span)
    tool = _find(attrs, (OI_TOOL_NAME, GENAI_TOOL_NAME))
    given = _find(attrs, (OI_INPUT_VALUE,), "arguments", "input")
    output = _find(attrs, (OI_OUTPUT_VALUE,), "result", "output")
    error = output if re.search(r"error|exception|traceback", output[:80], re.I) else ""
    return tool, given, error or _find(attrs, (), EXCEPTION_MESSAGE, "error") or _status_message(span)


def _status_message(span: dict) -> str:
    return str((span.get(STATUS) or {}).get(STATUS_MESSAGE_FIELD) or "")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str) -> str:
    return "`" + _short(text).replace("`", "'") + "`"


# -- the report ---------------------------------------------------------------------------

def _no_errors(overview: dict) -> str:
    failed = (overview.get("outcomes") or {}).get("failed", 0)
    where = (f"{failed} task(s) failed all the same: read those traces (`query_traces` with "
             "`outcome: failed`), their last tool calls and final output" if failed else
             "Look for semantic failures (wrong answers) in the outputs instead, e.g. with `search_trace`")
    return (f"{LABEL}\n\n**No error signatures**: none of the {overview.get('total_traces', 0)} traces "
            f"has a span with an error status. {where}.")


def _report(overview: dict, failing, signatures: list[dict], searches: dict, spans: dict,
            silent: list[str] = (), computed: Sequence[str] = ()) -> str:
    total = overview.get("total_traces", 0)
    failing = failing if isinstance(failing, int) else overview.get("error_trace_count", 0)
    share = f" ({failing / total:.0%})" if total else ""
    outcomes = overview.get("outcomes")
    lines = [LABEL, ""]
    if outcomes:
        lines += [_outcomes_line(outcomes, silent), ""]
    ranking = ("ranked by the failures they explain (failure rate of the traces they hit, against "
               "the traces without them)" if overview.get("failure_signatures") else "the largest")
    lines += [f"**{failing} of {total} traces have errors**{share}, "
              f"{overview.get('otel_error_span_count', 0)} error spans."]
    lines += [*computed, "", f"The top {len(signatures)} error signatures, {ranking}:"]
    for n, sig in enumerate(signatures, 1):
        lines += ["", *_section(n, sig, searches, spans)]
    lines += ["", "Re-run with the change, then measure it: `halo compare BEFORE AFTER`."]
    return "\n".join(lines)


def _outcomes_line(outcomes: dict, silent: list[str]) -> str:
    """The pass rate, and the failures no error span explains."""
    known = outcomes.get("passed", 0) + outcomes.get("failed", 0)
    line = (f"**{outcomes.get('passed', 0)} of {known} tasks passed** (pass rate "
            f"{outcomes.get('pass_rate') or 0:.0%}); {outcomes.get('failed', 0)} failed")
    quiet = outcomes.get("silent_failure_count", 0)
    if quiet:
        examples = ", ".join(f"`{t}`" for t in silent if t)
        line += (f", {quiet} of them silently (a wrong answer, no error span: read their final output"
                 f"{'; e.g. ' + examples if examples else ''})")
    return line + "."


def _contrast(sig: dict) -> str | None:
    """Failed against passed traces for one signature (None without outcomes)."""
    if sig.get("outcome_traces") is None:
        return None
    rate_with, rate_without = sig.get("failure_rate_with"), sig.get("failure_rate_without")
    if rate_with is None:
        return "- **outcomes**: none of the traces it hits has a pass/fail outcome."
    line = (f"- **outcomes**: {sig.get('failed_traces', 0)} of the {sig.get('outcome_traces', 0)} traces it "
            f"hits failed ({rate_with:.0%})")
    if rate_without is None:
        return line + "; every task with an outcome hits it, so there is nothing to contrast."
    line += f", against {rate_without:.0%} of the traces without it"
    if sig.get("excess_failures", 0) > 0.5:
        return line + f": it explains about {sig['excess_failures']:.0f} failure(s)."
    return line + ": passing traces hit it as often, so it does not explain the failures."


def _section(n: int, sig: dict, searches: dict, spans: dict) -> list[str]:
    examples = sig.get("example_trace_ids") or []
    out = [f"### {n}. `{sig.get('span_name')}`: {_short(sig.get('status_message') or '(no message)', 100)}",
           f"- **traces hit**: {sig.get('trace_count', 0)} ({sig.get('error_span_count', 0)} error spans); "
           f"examples: {', '.join(f'`{t}`' for t in examples) or '-'}"]
    contrast = _contrast(sig)
    if contrast:
        out.append(contrast)
    matches = _matches(sig, searches)
    viewed = [spans[m["span_id"]] for m in matches if m.get("span_id") in spans]
    message = sig.get("status_message") or ""  # two signatures may share a span name
    viewed = [v for v in viewed if _status_message(v)[:200] == message[:200]] or viewed
    if not viewed:
        out.append("- **cause**: not established: no error span of this signature was read in its example "
                   "trace (the turn budget ran out first, or the searches did not reach it).")
        return out
    trace = examples[0]
    if _kind(viewed[0]) == OBS_AGENT or _MAX_TURNS.search(sig.get("status_message") or ""):
        cause, change = _agent_cause(viewed[0], trace, searches.get(trace) or {}, sig)
    elif _kind(viewed[0]) == OBS_TOOL or _detail(viewed[0])[0]:
        cause, change = _tool_cause(viewed, trace, len(matches))
    else:
        error = _detail(viewed[0])[2] or sig.get("status_message", "")
        what = "the model call" if _kind(viewed[0]) == OBS_LLM else f"`{sig.get('span_name')}`"
        cause = f"in trace `{trace}` (span `{viewed[0].get(SPAN_ID)}`) {what} failed with {_code(error)}."
        change = _change(what, "", f"{error} {sig.get('status_message', '')}")
    return out + [f"- **cause**: {cause}", f"- **suggested harness change**: {change}"]


def _tool_cause(viewed: list[dict], trace: str, in_trace: int) -> tuple[str, str]:
    tool, given, error = _detail(viewed[0])
    tool = tool or viewed[0].get(NAME, "the tool")
    cause = (f"in trace `{trace}` (span `{viewed[0].get(SPAN_ID)}`) `{tool}` was called with "
             f"{_code(given or '{}')} and failed with {_code(error or 'an error')}.")
    inputs = Counter(_detail(s)[1] for s in viewed)
    same, times = inputs.most_common(1)[0]
    if in_trace > 1 and times == len(viewed) and len(viewed) > 1:
        cause += (f" {in_trace} failing `{tool}` calls in that trace; the {len(viewed)} read all had this "
                  "same input: the model repeated the failing call.")
    elif in_trace > 1:
        asked = ", ".join(_code(i) for i in inputs)
        cause += f" {in_trace} failing `{tool}` calls in that trace, with inputs {asked}."
    return cause, _change(f"`{tool}`", given, f"{error} {_status_message(viewed[0])}")


def _change(subject: str, given: str, error: str) -> str:
    """The harness change the error text points to (`subject`: what failed, as markdown)."""
    if _RATE.search(error):
        return (f"retry {subject} with backoff in the harness (honour Retry-After), and bound how many "
                "calls the agent makes at once.")
    if _TIMEOUT.search(error):
        return f"give {subject} a longer timeout or have it return partial results, and say so in the error."
    if _MISSING.search(error):
        return (f"tell the model how to recover when {subject} names a path that does not exist (in the "
                "instructions or in the error text: list the parent folder, e.g. with a `list_files` "
                "tool, instead of retrying the same path); the error should name what does exist.")
    if _INVALID.search(error):
        return (f"give {subject} a strict JSON schema (strict function calling) with each argument's format "
                "in its description, and make the error name the bad argument and an example of a good one.")
    if _LIMIT.search(error):
        args = _json(given) or {}
        named = [k for k in args if k in error] or [k for k, v in args.items() if isinstance(v, int)]
        what = f"`{named[0]}`" if named else "the argument"
        return (f"state the limit of {what} in {subject}'s description or the agent's instructions "
                f"(\"at most N\"), and make the error say the allowed range, or clamp {what} instead "
                "of rejecting the call.")
    return f"make {subject}'s error say what was wrong and what to try instead."


def _agent_cause(span: dict, trace: str, search: dict, sig: dict) -> tuple[str, str]:
    attrs = _attrs(span)
    data = _json(attrs.get(SDK_ERROR_DATA)) or {}
    budget = f" of {data['max_turns']} turns" if "max_turns" in data else ""
    others = Counter(m.get("span_name") for m in search.get("matches") or []
                     if m.get("span_name") != sig.get("span_name"))
    if not _MAX_TURNS.search(sig.get("status_message") or ""):
        error = _detail(span)[2] or sig.get("status_message", "")
        return (f"in trace `{trace}` the agent span `{span.get(SPAN_ID)}` ended with {_code(error)}.",
                "read the failing step before this span (search the trace for errors) and fix that tool first.")
    cause = f"the agent ran out of its turn budget{budget} (trace `{trace}`, span `{span.get(SPAN_ID)}`)"
    if others:
        spent = ", ".join(f"`{name}` ×{count}" for name, count in others.most_common(3))
        cause += f", after failing tool calls that used the turns: {spent}."
        change = ("fix the tool errors above first, they burn the budget; and have the harness stop a "
                  "repeated identical failing call (tell the model to change approach) rather than "
                  "raising the turn limit.")
    else:
        cause += " without any failing tool call: the task needs more steps than allowed."
        change = "raise the turn limit or give the agent a tool that answers in fewer steps."
    return cause, change


def ask_offline(trace_path: str, question: str, flags: Sequence[str] = ()) -> int:
    """`halo TRACE_PATH -p QUESTION` against this policy on a loopback server; halo's exit code."""
    from halo_live.demo.model_server import ModelServer
    from halo_live.engine.cli import main as halo

    with ModelServer(DiagnosticPolicy()) as server:
        return halo([str(trace_path), "-p", question, *flags, "--base-url", server.base_url,
                     "--api-key", "offline", "--model", MODEL_NAME])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m halo_live.demo.diagnostic_policy TRACE_PATH [-p QUESTION] [halo flags]`: ask offline."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m halo_live.demo.diagnostic_policy",
                                     description="ask halo's diagnostic agent offline, against this "
                                                 "deterministic stand-in model (no API key needed)")
    parser.add_argument("trace_path", metavar="TRACE_PATH")
    parser.add_argument("--prompt", "-p", default=DEFAULT_QUESTION)
    args, flags = parser.parse_known_args(argv)
    return ask_offline(args.trace_path, args.prompt, flags)


if __name__ == "__main__":
    sys.exit(main())
