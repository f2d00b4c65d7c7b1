"""`halo import langfuse`: Langfuse traces, observations and scores -> canonical lines.

Reads Langfuse's public API with the project's keys (HTTP basic auth):
`GET /api/public/projects` (checks the keys, names the project), then
v3's `GET /api/public/traces?orderBy=timestamp.asc` page by page and
`GET /api/public/traces/{id}` for each trace's observations and scores; a
server without that trace list (Langfuse v4) is read through
`GET /api/public/v2/observations` and `GET /api/public/v3/scores` instead
(`langfuse_v4`), into the same trace shape and the same mapping.
Each trace becomes a root span (its name, input/output, user, session, tags,
metadata) with its observations below it: GENERATION -> LLM (model, usage,
cost), AGENT/TOOL/CHAIN/GUARDRAIL/... -> that OpenInference kind, EVENT -> a
zero-length span, level ERROR -> an error status. Scores (outcomes do not
exist yet) become the OTel GenAI evaluation-result attributes on the span
they score (the trace's root span for trace scores), the latest one winning,
with every score in `langfuse.scores`. Ids that are not OTel hex are hashed
to OTel widths; the originals stay in `langfuse.trace.id` /
`langfuse.observation.id`. The checkpoint is the timestamp of the last trace
imported and the ids imported at that instant (both readers give a trace the
same span ids, so a server upgraded mid-import never has a span written twice).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from halo_live.exporter import canonical
from halo_live.exporter.importers import langfuse_v4
from halo_live.exporter.importers.http import NotFound, Unreachable, get_json
from halo_live.exporter.importers.resume import (
    ImportFailed, ImportTarget, Notify, Progress, no_progress, outage_wait, warn,
)
from halo_live.exporter.otlp_convert import Conversion, ScopeContext, SpanBatch, SpanParts, span_head

HOST_ENVS = ("LANGFUSE_HOST", "LANGFUSE_BASE_URL")
# The OTel GenAI evaluation result's attribute names (outcomes, issue 14, will own them).
EVAL_NAME = "gen_ai.evaluation.name"
EVAL_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVAL_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVAL_EXPLANATION = "gen_ai.evaluation.explanation"
SCORES = "langfuse.scores"

_KINDS = {"GENERATION": "LLM", "AGENT": "AGENT", "TOOL": "TOOL", "CHAIN": "CHAIN",
          "GUARDRAIL": "GUARDRAIL", "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING",
          "EVALUATOR": "EVALUATOR"}  # SPAN and EVENT name no kind
_FOLLOW_LOOKBACK = timedelta(minutes=10)  # --follow re-reads this window: traces still growing


def host_from_env() -> str | None:
    """The Langfuse host from the SDK's own variables."""
    import os

    return next((os.environ[name] for name in HOST_ENVS if os.environ.get(name)), None)


def _hex_id(value: Any, width: int) -> str:
    text = str(value or "")
    try:
        if len(text) == width and int(text, 16):
            return text.lower()
    except ValueError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:width]


def _ns(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return canonical.ns_from_iso(canonical.iso_from_datetime(
            datetime.fromisoformat(value.replace("Z", "+00:00"))))
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "" and value != [] and value != {}:
        attrs[key] = value


def _score_attrs(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest score as the evaluation result, every score in `langfuse.scores`."""
    ordered = sorted(scores, key=lambda s: str(s.get("timestamp") or ""))
    latest = ordered[-1]
    attrs: dict[str, Any] = {EVAL_NAME: str(latest.get("name") or "")}
    if isinstance(latest.get("value"), (int, float)) and latest.get("dataType") != "TEXT":
        attrs[EVAL_SCORE_VALUE] = latest["value"]
    _put(attrs, EVAL_SCORE_LABEL, latest.get("stringValue"))
    _put(attrs, EVAL_EXPLANATION, latest.get("comment"))
    attrs[SCORES] = json.dumps([{k: s.get(k) for k in ("name", "value", "stringValue", "dataType",
                                                       "source", "comment", "timestamp")
                                 if s.get(k) is not None} for s in ordered], ensure_ascii=False)
    return attrs


def trace_parts(trace: dict[str, Any], ctx: ScopeContext) -> list[SpanParts]:
    """One trace of `GET /api/public/traces/{id}` as decoded spans: its root, then its observations."""
    trace_id = _hex_id(trace.get("id"), 32)
    root_id = _hex_id(f"trace:{trace.get('id')}", 16)
    observations = [o for o in trace.get("observations") or () if isinstance(o, dict) and o.get("id")]
    ids = {str(o["id"]): _hex_id(o["id"], 16) for o in observations}
    scores: dict[str | None, list[dict[str, Any]]] = {}
    for score in trace.get("scores") or ():
        if isinstance(score, dict):
            target = score.get("observationId")
            scores.setdefault(str(target) if target in ids else None, []).append(score)

    start = _ns(trace.get("timestamp"))
    if start is None:
        raise ImportFailed(f"Langfuse trace {trace.get('id')!r} has no timestamp")
    parts = []
    end = start
    for obs in observations:
        o_start = _ns(obs.get("startTime")) or start
        o_end = _ns(obs.get("endTime")) or o_start
        end = max(end, o_end)
        kind = str(obs.get("type") or "SPAN").upper()
        attrs: dict[str, Any] = {"langfuse.observation.id": str(obs["id"]), "langfuse.observation.type": kind}
        _put(attrs, canonical.OI_SPAN_KIND, _KINDS.get(kind))
        name = str(obs.get("name") or kind.lower())
        if kind == "AGENT":
            attrs[canonical.OI_AGENT_NAME] = name
        elif kind == "TOOL":
            attrs[canonical.OI_TOOL_NAME] = name
        _put(attrs, canonical.OI_INPUT_VALUE, _text(obs.get("input")))
        _put(attrs, canonical.OI_OUTPUT_VALUE, _text(obs.get("output")))
        _put(attrs, "metadata", _text(obs.get("metadata")))
        _put(attrs, canonical.OI_LLM_MODEL_NAME, obs.get("model"))
        _put(attrs, "llm.invocation_parameters", _text(obs.get("modelParameters")))
        usage = obs.get("usageDetails") or {}
        legacy = obs.get("usage") or {}
        _put(attrs, canonical.OI_TOKENS_PROMPT, usage.get("input", legacy.get("input")))
        _put(attrs, canonical.OI_TOKENS_COMPLETION, usage.get("output", legacy.get("output")))
        _put(attrs, "llm.token_count.total", usage.get("total", legacy.get("total")))
        cost = (obs.get("costDetails") or {}).get("total", obs.get("calculatedTotalCost"))
        _put(attrs, canonical.OI_COST_TOTAL, cost)
        level = str(obs.get("level") or "DEFAULT")
        attrs["langfuse.observation.level"] = level
        message = str(obs.get("statusMessage") or "")
        if level != "ERROR":
            _put(attrs, "langfuse.observation.status_message", message)
        _put(attrs, "langfuse.environment", obs.get("environment"))
        _put(attrs, "langfuse.version", obs.get("version"))
        if str(obs["id"]) in scores:
            attrs.update(_score_attrs(scores[str(obs["id"])]))
        parent = ids.get(str(obs.get("parentObservationId") or ""), root_id)
        status = canonical.STATUS_ERROR if level == "ERROR" else canonical.STATUS_UNSET
        head = span_head(trace_id, ids[str(obs["id"])], parent, "", name, canonical.SPAN_KIND_INTERNAL,
                         o_start, o_end, status, message if level == "ERROR" else "")
        parts.append(SpanParts(head, attrs, [], [], (0, 0, 0), ctx))

    attrs = {"langfuse.trace.id": str(trace.get("id")), canonical.OI_SPAN_KIND: "CHAIN"}
    _put(attrs, canonical.OI_INPUT_VALUE, _text(trace.get("input")))
    _put(attrs, canonical.OI_OUTPUT_VALUE, _text(trace.get("output")))
    _put(attrs, "metadata", _text(trace.get("metadata")))
    _put(attrs, canonical.OI_USER_ID, trace.get("userId"))
    _put(attrs, canonical.OI_SESSION_ID, trace.get("sessionId"))
    _put(attrs, "tag.tags", list(trace.get("tags") or []))
    _put(attrs, "langfuse.release", trace.get("release"))
    _put(attrs, "langfuse.version", trace.get("version"))
    _put(attrs, "langfuse.environment", trace.get("environment"))
    if None in scores:
        attrs.update(_score_attrs(scores[None]))
    head = span_head(trace_id, root_id, "", "", str(trace.get("name") or "trace"),
                     canonical.SPAN_KIND_INTERNAL, start, end, canonical.STATUS_UNSET, "")
    return [*parts, SpanParts(head, attrs, [], [], (0, 0, 0), ctx)]


def _counts(trace: dict[str, Any]) -> tuple[int, int]:
    return len(trace.get("observations") or ()), len(trace.get("scores") or ())


class LangfuseImport:
    """Imports a Langfuse project into `target`, once or (`follow`) as traces appear."""

    def __init__(self, host: str, public_key: str, secret_key: str, target: ImportTarget, *,
                 since: datetime | None = None, page_size: int = 50, project_id: str = "",
                 notify: Notify = warn) -> None:
        if not host.startswith(("http://", "https://")):
            raise ImportFailed(f"--host {host!r} is not an http(s) address")
        self.host = host.rstrip("/")
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.target = target
        self.since = since
        self.page_size = min(page_size, 100)
        self.project_id = project_id
        self.notify = notify
        self._known: dict[str, tuple[int, int]] = {}  # trace id -> (observations, scores) imported
        # "v3" reads the trace list, "v4" the observations; None until the server has said which
        # it has. v3 first where both exist: only it gives the trace's own input, output and metadata.
        self.api: str | None = None

    def _get(self, path: str, params: dict | None, stop: threading.Event) -> Any:
        return get_json(self.host, path, params, headers=self.headers, what="Langfuse", stop=stop,
                        auth_hint="check LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (the project's API keys) "
                                  "and that --host is that project's server")

    def _project(self, stop: threading.Event) -> str:
        try:
            answer = self._get("/api/public/projects", None, stop)
        except NotFound:
            raise ImportFailed(f"{self.host} has no Langfuse public API (GET /api/public/projects: 404)") from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not data:
            raise ImportFailed(f"Langfuse at {self.host} names no project for these keys")
        return str(data[0].get("name") or data[0].get("id") or "langfuse")

    def run(self, *, follow: bool = False, stop: threading.Event | None = None,
            poll_interval: float = 2.0, progress: Progress = no_progress) -> None:
        """Import every trace after the checkpoint; with `follow`, keep going until `stop`."""
        stop = stop or threading.Event()
        ctx = ScopeContext(self.project_id or self._project(stop), {}, "langfuse", "", {})
        done = [0]
        failures = 0
        while not stop.is_set():
            try:
                self._pass(ctx, follow, stop, progress, done)
                failures = 0
            except Unreachable as exc:
                if not follow or stop.is_set():
                    raise
                failures += 1
                self.notify(f"{exc}; trying again in {outage_wait(failures):.0f}s")
                stop.wait(outage_wait(failures))
                continue
            if not follow or stop.wait(poll_interval):
                break

    def _pass(self, ctx: ScopeContext, follow: bool, stop: threading.Event, progress: Progress,
              done: list[int]) -> None:
        """One walk over the traces from the checkpoint (minus the look-back when following)."""
        state = self.target.state
        start = state.get("from") or (self.since.isoformat() if self.since else None)
        if follow and state.get("from"):
            start = (datetime.fromisoformat(state["from"].replace("Z", "+00:00")) - _FOLLOW_LOOKBACK).isoformat()
        at_edge = set(state.get("ids_at_from") or ())
        if self.api != "v4":
            try:
                self._pass_v3(ctx, follow, stop, progress, done, start, at_edge)
                self.api = "v3"
                return
            except NotFound:
                if self.api == "v3":  # upgraded under a --follow: go on through v4, no span twice
                    self.notify(f"Langfuse at {self.host} no longer has GET /api/public/traces; "
                                "reading its v4 observations and scores")
            self.api = "v4"
        self._pass_v4(ctx, follow, stop, progress, done, start, at_edge)

    def _pass_v3(self, ctx: ScopeContext, follow: bool, stop: threading.Event, progress: Progress,
                 done: list[int], start: str | None, at_edge: set) -> None:
        """v3: the trace list page by page, then each trace (NotFound if the server has no trace list)."""
        page, total = 1, None
        while not stop.is_set():
            answer = self._get("/api/public/traces", {
                "page": page, "limit": self.page_size, "orderBy": "timestamp.asc",
                "fromTimestamp": start}, stop)
            if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
                raise ImportFailed(f"Langfuse at {self.host} answered GET /api/public/traces with "
                                   "something that is not a page of traces")
            meta = answer.get("meta") or {}
            total = meta.get("totalItems", total)
            for summary in answer["data"]:
                if stop.is_set():
                    break
                if not isinstance(summary, dict) or not summary.get("id"):
                    self.target.stats.skip("trace summaries without an id")
                    continue
                if self._unchanged(summary, at_edge, follow):
                    continue
                self._import_trace(summary, ctx, stop)
                done[0] += 1
                progress(done[0], total)
            if not answer["data"] or page >= int(meta.get("totalPages") or page):
                break
            page += 1

    def _pass_v4(self, ctx: ScopeContext, follow: bool, stop: threading.Event, progress: Progress,
                 done: list[int], start: str | None, at_edge: set) -> None:
        """v4: the traces whose roots start from `start` (one observations walk), then each trace."""
        try:
            traces = langfuse_v4.discover(self._get, start, self.page_size, stop, _ns)
        except NotFound:
            raise ImportFailed(f"Langfuse at {self.host} has neither GET /api/public/traces (v3) nor "
                               "GET /api/public/v2/observations and /api/public/v3/scores (v4)") from None
        for stamp, trace_id, observations in traces:
            if stop.is_set():
                break
            # Following, a trace is fetched again only when it has grown (the span ids
            # a new score would land on are written already, as on the v3 path).
            known = self._known.get(trace_id)
            if (known is not None and known[0] == observations) if follow else trace_id in at_edge:
                continue
            trace = langfuse_v4.fetch_trace(self._get, trace_id, self.page_size, stop, _ns)
            if trace is None:
                self.target.stats.skip("traces listed but gone when fetched", 1, trace_id)
                continue
            if trace["scores"] is None:
                self.target.stats.skip("traces imported without scores (no GET /api/public/v3/scores)",
                                       1, trace_id)
            self._write_trace(trace_id, trace, stamp, ctx)
            done[0] += 1
            progress(done[0], len(traces))

    def _unchanged(self, summary: dict[str, Any], at_edge: set, follow: bool) -> bool:
        """A trace imported before that has nothing new (--follow re-reads a window of them)."""
        if not follow:
            return summary["id"] in at_edge
        known = self._known.get(str(summary["id"]))
        return known is not None and known == _counts(summary)

    def _import_trace(self, summary: dict[str, Any], ctx: ScopeContext, stop: threading.Event) -> None:
        trace_id = str(summary["id"])
        try:
            trace = self._get(f"/api/public/traces/{urllib.parse.quote(trace_id, safe='')}", None, stop)
        except NotFound:
            self.target.stats.skip("traces listed but gone when fetched", 1, trace_id)
            return
        self._write_trace(trace_id, trace, str(trace.get("timestamp") or summary.get("timestamp")), ctx)

    def _write_trace(self, trace_id: str, trace: dict[str, Any], stamp: str, ctx: ScopeContext) -> None:
        """Map one trace (v3's shape, whichever API it came from), write it, move the checkpoint."""
        try:
            parts = trace_parts(trace, ctx)
        except (ImportFailed, AttributeError, TypeError, ValueError) as exc:
            self.target.stats.skip("traces Langfuse returned that are not usable", 1, f"{trace_id}: {exc}")
            return
        out = Conversion()
        batch = SpanBatch(out)
        for part in parts:
            batch.add(part)
        self.target.write(batch.finish().lines)
        self._known[trace_id] = _counts(trace)
        state = self.target.state
        at_edge = list(state.get("ids_at_from") or ()) if state.get("from") == stamp else []
        if stamp >= str(state.get("from") or ""):
            self.target.save(**{"from": stamp, "ids_at_from": [*at_edge, trace_id]})
