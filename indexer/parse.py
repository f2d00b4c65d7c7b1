"""Parse a byte range of a JSONL file into per-trace partial rollups.

Only the fields the index keeps are read; the rest of a span is validated as
JSON and left alone. Rollups follow halo-engine 0.3.5's
`_RowAccumulator.absorb` rule for rule, so merged rows equal its
`TraceIndexRow`s. Pure and picklable (no LMDB here), so a process pool can run
it on several ranges at once; the single writer merges the results in order.

Two implementations give equal `Batch`es: the compiled scanner `halo_live.indexer._scan`
(`pip install` builds indexer/_scan.c where a C compiler exists), which hands
any line it is not sure of to `normalize_line`; and `parse_bytes_python`, which
runs `normalize_line` (orjson) on every line. HALO_INDEX_NATIVE=0 picks the
second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from halo_live.exporter import config
from halo_live.exporter import canonical
from halo_live.indexer.readrange import read_range

try:
    from halo_live.indexer import _scan
except ImportError:  # built without a C compiler: the pure-Python loop below
    _scan = None

_ERROR = canonical.STATUS_ERROR
_CODES = {code: i for i, code in enumerate(canonical.STATUS_CODES)}
MAX_BAD_RECORDED = 1000  # offsets kept per batch; the count is always exact


# A trace's rollup over the spans of one batch travels as a plain tuple (a worker
# pickles it to the writer: a tuple costs half what an object with slots does),
# with its fields at these positions:
(P_TID, P_FIRST_OFF, P_N, P_START, P_END, P_ERR, P_TOOL_ERR, P_MISS_IDENT, P_MISSING, P_RAW,
 P_IN, P_OUT, P_PROJECT, P_ROOT, P_SERVICES, P_MODELS, P_AGENTS, P_AGENT_IDS, P_PROJECTS,
 P_TOOLS, P_RUNS, P_ERRORS, P_IDS, P_BLOB, P_OUTCOME, P_DURATION, P_COST, P_MODEL_TOKENS) = range(28)
# P_ERRORS: [(span name, status message, span index in the batch)] of its ERROR spans
# P_IDS: JSON [[span ids], [parent ids]], what the index stores
# P_MISSING: parents this batch alone cannot resolve
# P_BLOB: the span entries' JSON, "[e],[e],", appended to the trace's stored entries
# P_OUTCOME: the batch's latest outcome span of the trace, or None:
#   (end time, offset, passed (True/False/None), score (float/None), task id, label)
#   "latest": the greatest end time, ties to the later line
# P_COST: the sum of `inference.llm.cost.total` over the spans carrying a number there (a float)
# P_MODEL_TOKENS: None, or {model name ("" for none): [input, output]} of the tokens of the
#   spans with tokens but no reported cost (what a price list can estimate)


class _Acc:
    """One trace's rollup while the pure-Python loop runs."""

    __slots__ = (
        "first_off", "entries", "start", "end", "err", "services", "models", "agents",
        "agent_ids", "in_tok", "out_tok", "project", "projects", "sids", "pids", "miss_ident",
        "tool_err", "tools", "runs", "root", "errors", "outcome", "cost", "model_tokens",
    )

    def __init__(self, first_off: int) -> None:
        self.first_off = first_off
        self.entries: list = []
        self.start = ""
        self.end = ""
        self.err = 0
        self.services: set[str] = set()
        self.models: set[str] = set()
        self.agents: set[str] = set()
        self.agent_ids: set[str] = set()
        self.in_tok = 0
        self.out_tok = 0
        self.project: str | None = None
        self.projects: set[str] = set()
        self.sids: set[str] = set()
        self.pids: set[str] = set()
        self.miss_ident = 0
        self.tool_err = 0
        self.tools: set[str] = set()
        self.runs: set[str] = set()
        self.root = False
        self.errors: list[tuple[str, str, int]] = []
        self.outcome: tuple | None = None
        self.cost = 0.0
        self.model_tokens: dict[str, list[int]] = {}


@dataclass(slots=True)
class Batch:
    """The parse of [start, end) of one file: complete lines only."""

    fileno: int
    start: int
    end: int
    lines: int = 0
    spans: int = 0
    bad_count: int = 0
    unprojected: int = 0  # spans without the inference.* projection (indexed all the same)
    duplicates: int = 0  # lines repeating a (trace id, span id) seen before in the range: skipped
    bad: list[tuple[int, str]] = field(default_factory=list)
    partials: list[tuple] = field(default_factory=list)  # one per trace, first-appearance order


def parse_file_range(path: str, fileno: int, start: int, end: int) -> Batch:
    """Read [start, end) of `path` (ending just after a newline) and parse it."""
    data = read_range(path, start, end)  # valid until this thread's next read
    if not NATIVE:
        return parse_bytes_python(bytes(data), fileno, start)
    return _parse_native(data, fileno, start)


def parse_bytes(data: bytes, fileno: int, base: int) -> Batch:
    """Parse the complete lines of `data`, whose first byte is at file offset `base`."""
    if NATIVE:
        return _parse_native(data, fileno, base)
    return parse_bytes_python(data, fileno, base)


def parse_bytes_python(data: bytes, fileno: int, base: int) -> Batch:
    """`parse_bytes` in pure Python: `normalize_line` for each line, then the rollups.

    The rollups are those of `_scan.c`'s `absorb` (and, rule for rule, of
    halo-engine 0.3.5's `_RowAccumulator.absorb`).
    """
    cut = data.rfind(b"\n") + 1
    batch = Batch(fileno=fileno, start=base, end=base + cut)
    partials: dict[str, _Acc] = {}
    view = memoryview(data)  # lines are parsed in place: no copy of the chunk
    find = data.find
    lines = spans = 0
    at = 0
    while at < cut:
        nl = find(b"\n", at)
        length = nl - at
        off = base + at
        line = view[at:nl]
        at = nl + 1
        if not length:
            continue  # the reference skips empty lines too
        lines += 1
        fields = normalize_line(line)
        if type(fields) is str:
            _bad(batch, off, fields)
            continue
        (tid, sid, parent, start, end, name, code_key, is_error, is_tool_error, message, service,
         has_obs, has_attrs, model, agent, agent_id, in_tok, out_tok, project, tool, run, outcome,
         cost) = fields
        p = partials.get(tid)
        if p is None:
            p = partials[tid] = _Acc(off)
        elif sid in p.sids:  # the same span again (a retried export): the first line counts
            batch.duplicates += 1
            continue
        spans += 1
        p.sids.add(sid)
        if parent:
            p.pids.add(parent)
        else:
            p.root = True  # ours: the root span arrived
        if not p.start or start < p.start:
            p.start = start
        if not p.end or end > p.end:
            p.end = end
        if is_error:
            p.err += 1
            p.errors.append((name, message, len(p.entries)))
            if is_tool_error:
                p.tool_err += 1
        if service is not None:
            p.services.add(service)
        if not has_obs:
            batch.unprojected += 1
        if has_attrs:
            if model:
                p.models.add(model)
            if agent:
                p.agents.add(agent)
            if agent_id:
                p.agent_ids.add(agent_id)
            elif not agent:
                p.miss_ident += 1
            if in_tok is not None:
                p.in_tok += in_tok
            if out_tok is not None:
                p.out_tok += out_tok
            if project:
                p.projects.add(project)
                if p.project is None:
                    p.project = project
            if tool:  # ours: tool and run names
                p.tools.add(tool)
            if run:
                p.runs.add(run)
            if outcome is not None and (p.outcome is None or end >= p.outcome[0]):
                p.outcome = (end, off, *outcome)
            if cost is not None:
                p.cost += cost
            elif in_tok is not None or out_tok is not None:
                _add_model_tokens(p.model_tokens, model or "", in_tok, out_tok)
        else:
            p.miss_ident += 1
        p.entries.append((fileno, off, length, sid, parent, name, code_key, message))
    batch.lines, batch.spans = lines, spans
    out = batch.partials
    for tid, p in partials.items():
        entries = p.entries
        sids, pids = p.sids, p.pids
        out.append((
            tid, p.first_off, len(entries), p.start, p.end, p.err, p.tool_err, p.miss_ident,
            sum(1 for x in pids if x not in sids), sum([e[2] for e in entries]), p.in_tok,
            p.out_tok, p.project, p.root, p.services, p.models, p.agents, p.agent_ids, p.projects,
            p.tools, p.runs, p.errors, orjson.dumps([list(sids), list(pids)]),
            orjson.dumps(entries)[1:-1] + b",", p.outcome, duration_ms(p.start, p.end),
            p.cost, p.model_tokens or None,
        ))
    return batch


def normalize_line(line: bytes) -> str | tuple:
    """What the rollups take from one span line, or why it is a bad line.

    The index's reading of a span, field by field as halo-engine 0.3.5's
    `_RowAccumulator.absorb` reads it; `_scan.c` reads the lines it is sure of
    the same way and hands this function the others. The tuple: trace id, span
    id, parent, start, end, name, status key (an index into STATUS_CODES, or a
    string), is error, is tool error, error message (None unless an error),
    service, has the projection, has attributes, model, agent, agent id, input
    tokens, output tokens, project, tool, run (None where the span has none), and
    the outcome: None, or (passed, score, task id, label) for a span marked with
    `inference.outcome.passed` (passed True/False/None, score a float or None), and the
    reported cost: `inference.llm.cost.total` as a float when it is a number (not a bool), else None.
    """
    try:
        span = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not JSON"
    if type(span) is not dict:
        return "not a JSON object"
    tid = span.get("trace_id")
    sid = span.get("span_id")
    if type(tid) is not str or type(sid) is not str:
        return "not a span (no trace_id/span_id string)"
    parent = span.get("parent_span_id") or ""
    if type(parent) is not str:
        parent = str(parent)
    start = span.get("start_time") or ""
    end = span.get("end_time") or ""
    if type(start) is not str or type(end) is not str:  # the reference rejects these lines
        start, end = str(start), str(end)
    attrs = span.get("attributes")
    if type(attrs) is not dict:
        attrs = {}
    name = span.get("name") or ""
    if type(name) is not str:
        name = str(name)
    status = span.get("status")
    code = status.get("code") if type(status) is dict else None
    is_error = code == _ERROR
    message = None
    if is_error:
        message = status.get("message") or ""
        if type(message) is not str:
            message = str(message)
    service = None
    resource = span.get("resource")
    if type(resource) is dict:
        rattrs = resource.get("attributes")
        if type(rattrs) is dict:
            svc = rattrs.get(_SERVICE)
            if isinstance(svc, str):
                service = svc
    key = _CODES.get(code) if type(code) is str else None  # a list would not hash
    if key is None:
        key = code if isinstance(code, str) else ""
    get = attrs.get
    return (
        tid, sid, parent, start, end, name, key, is_error,
        is_error and get(_OI_KIND) == "TOOL", message, service, _OBS_KIND in attrs, bool(attrs),
        _text(get(_MODEL) or get(_OI_MODEL)), _text(get(_AGENT)),
        _text(get(_AGENT_ID) or get(_OI_AGENT_ID)), _tokens(get(_IN_TOKENS)), _tokens(get(_OUT_TOKENS)),
        _text(get(_PROJECT)), _text(get(_TOOL) or get(_GENAI_TOOL)), _text(get(_RUN)),  # ours: tools, runs
        _outcome(attrs) if _OUT_PASSED in attrs else None,  # ours: the outcome
        _cost(get(_COST)),  # ours: the reported cost
    )


def _outcome(attrs: dict) -> tuple:
    passed, score = attrs[_OUT_PASSED], attrs.get(_SCORE)
    return (passed if type(passed) is bool else None,
            float(score) if type(score) in (int, float) else None,  # not a bool
            _text(attrs.get(_TASK)), _text(attrs.get(_LABEL)))


def _cost(value) -> float | None:
    return float(value) if type(value) in (int, float) else None  # a bool is not a cost


def _add_model_tokens(sums: dict[str, list[int]], model: str, in_tok: int | None,
                      out_tok: int | None) -> None:
    pair = sums.get(model)
    if pair is None:
        pair = sums[model] = [0, 0]
    if in_tok is not None:
        pair[0] += in_tok
    if out_tok is not None:
        pair[1] += out_tok


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _tokens(value) -> int | None:
    return int(value) if isinstance(value, int) else None  # a bool counts, as in the reference


def _parse_native(data: bytes, fileno: int, base: int) -> Batch:
    # the scanner's tuples are whole: it works out the duration of canonical times itself
    # and calls duration_ms for any other
    lines, spans, bad_count, unprojected, cut, bad, traces, duplicates = _scan.scan(
        data, fileno, base, normalize_line, MAX_BAD_RECORDED, duration_ms)
    return Batch(fileno=fileno, start=base, end=base + cut, lines=lines, spans=spans,
                 bad_count=bad_count, unprojected=unprojected, bad=bad, partials=traces,
                 duplicates=duplicates)


def _ns(value: str) -> int | None:
    # Fast path for the canonical "YYYY-MM-DDTHH:MM:SS.fffffffffZ"; anything else the slow way.
    if len(value) == 30 and value[19] == "." and value[29] == "Z":
        try:
            secs = datetime.fromisoformat(value[:19]).replace(tzinfo=timezone.utc).timestamp()
            return int(secs) * 1_000_000_000 + int(value[20:29])
        except ValueError:
            return None
    return canonical.ns_from_iso(value)


def duration_ms(start: str, end: str) -> float | None:
    """end - start in milliseconds; None when either does not parse."""
    a, b = _ns(start), _ns(end)
    if a is None or b is None:
        return None
    return (b - a) / 1e6


def _bad(batch: Batch, off: int, reason: str) -> None:
    batch.bad_count += 1
    if len(batch.bad) < MAX_BAD_RECORDED:
        batch.bad.append((off, reason))


_OI_KIND = canonical.OI_SPAN_KIND
_OBS_KIND = canonical.INF_OBSERVATION_KIND
_SERVICE = canonical.SERVICE_NAME
_MODEL = canonical.INF_LLM_MODEL_NAME
_OI_MODEL = canonical.OI_LLM_MODEL_NAME
_AGENT = canonical.INF_AGENT_NAME
_AGENT_ID = canonical.INF_AGENT_ID
_OI_AGENT_ID = canonical.OI_AGENT_ID
_IN_TOKENS = canonical.INF_LLM_INPUT_TOKENS
_OUT_TOKENS = canonical.INF_LLM_OUTPUT_TOKENS
_PROJECT = canonical.INF_PROJECT_ID
_TOOL = canonical.OI_TOOL_NAME
_GENAI_TOOL = canonical.GENAI_TOOL_NAME
_RUN = canonical.INF_RUN_ID
_OUT_PASSED = canonical.INF_OUTCOME_PASSED
_SCORE = canonical.GENAI_EVALUATION_SCORE_VALUE
_TASK = canonical.INF_OUTCOME_TASK_ID
_LABEL = canonical.GENAI_EVALUATION_SCORE_LABEL
_COST = canonical.INF_LLM_COST_TOTAL

if _scan is not None:
    # The scanner's names, in the order of the enum at the top of _scan.c's fields section.
    _scan.configure(
        ("trace_id", "span_id", "parent_span_id", "start_time", "end_time", "name", "status",
         "resource", "attributes", "code", "message", "attributes", _SERVICE,
         _OI_KIND, _OBS_KIND, _MODEL, _OI_MODEL, _AGENT, _AGENT_ID, _OI_AGENT_ID, _IN_TOKENS,
         _OUT_TOKENS, _PROJECT, _TOOL, _GENAI_TOOL, _RUN, _OUT_PASSED, _SCORE, _TASK, _LABEL, _COST),
        canonical.STATUS_CODES, canonical.STATUS_CODES.index(_ERROR), "TOOL")
NATIVE = _scan is not None and os.environ.get(config.HALO_INDEX_NATIVE, "1") != "0"


def parser_name() -> str:
    """The span parser this process uses, in words (`halo-live --version` shows it)."""
    if NATIVE:
        return "compiled"
    if _scan is not None:
        return f"pure Python ({config.HALO_INDEX_NATIVE}=0)"
    return "pure Python (the compiled scanner was not built: no C compiler at install)"
