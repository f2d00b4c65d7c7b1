"""Langfuse v4's read path, as the traces the one Langfuse mapping reads.

Langfuse v4 has no trace list (`GET /api/public/traces` is gone on Langfuse
Cloud from 2026-11-16 and on a self-hosted server once it runs v4): a trace
is the observations that share its id. This module reads
`GET /api/public/v2/observations` (cursor-paged, filtered by `fromStartTime`
or `traceId`, field groups chosen by `fields`) and `GET /api/public/v3/scores`
(cursor-paged, filtered by `traceId`, its `subject` naming the trace or
observation scored), and turns them into the shape of v3's
`GET /api/public/traces/{id}` so `langfuse.trace_parts` maps both alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from halo_live.exporter.importers.http import NotFound
from halo_live.exporter.importers.resume import ImportFailed

OBSERVATIONS = "/api/public/v2/observations"
SCORES = "/api/public/v3/scores"
# Every group the mapping reads; `core` and `basic` alone when only listing traces.
OBSERVATION_FIELDS = "core,basic,time,io,metadata,model,usage,trace_context"
LIST_FIELDS = "core,basic"
SCORE_FIELDS = "details,subject"
SCORES_PAGE_MAX = 100  # the scores endpoint answers 400 above this

Get = Callable[[str, dict | None, threading.Event], Any]
Stamp = Callable[[Any], int | None]  # an ISO time -> ns since the epoch (None if not a time)


def pages(get: Get, path: str, params: dict[str, Any], stop: threading.Event) -> Iterator[list[Any]]:
    """Each page of a cursor-paged list, until its `meta.cursor` is absent."""
    cursor = None
    while not stop.is_set():
        answer = get(path, {**params, "cursor": cursor}, stop)
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise ImportFailed(f"Langfuse answered GET {path} with something that is not a page of results")
        yield answer["data"]
        cursor = (answer.get("meta") or {}).get("cursor")
        if not cursor or not answer["data"]:
            return


def _is_root(obs: dict[str, Any]) -> bool:
    return bool(obs.get("isRootObservation")) or not obs.get("parentObservationId")


def discover(get: Get, start: str | None, page_size: int, stop: threading.Event,
             ns: Stamp) -> list[tuple[str, str, int]]:
    """(start time, trace id, observations seen) of each trace whose root starts at or after `start`, oldest first.

    As v3's `fromTimestamp` filters traces by their own timestamp, a trace
    counts here from its root observation; its later observations are counted
    so `--follow` can tell a trace that grew.
    """
    first: dict[str, tuple[int, str]] = {}
    seen: dict[str, int] = {}
    for page in pages(get, OBSERVATIONS, {"fields": LIST_FIELDS, "limit": page_size, "fromStartTime": start}, stop):
        for obs in page:
            if not isinstance(obs, dict) or not obs.get("traceId"):
                continue  # an observation outside any trace: nothing to hang it on
            trace_id = str(obs["traceId"])
            seen[trace_id] = seen.get(trace_id, 0) + 1
            when = ns(obs.get("startTime"))
            if _is_root(obs) and when is not None and (trace_id not in first or when < first[trace_id][0]):
                first[trace_id] = (when, str(obs["startTime"]))
    ordered = sorted((when, stamp, trace_id) for trace_id, (when, stamp) in first.items())
    return [(stamp, trace_id, seen[trace_id]) for _, stamp, trace_id in ordered]


def fetch_trace(get: Get, trace_id: str, page_size: int, stop: threading.Event,
                ns: Stamp) -> dict[str, Any] | None:
    """One trace in the shape of v3's `GET /api/public/traces/{id}`, or None if it has no observations.

    A server whose scores endpoint answers 404 (it was behind a feature flag
    in early v4 releases) gives the trace with `scores` None.
    """
    observations = [o for page in pages(get, OBSERVATIONS, {"traceId": trace_id, "fields": OBSERVATION_FIELDS,
                                                            "limit": page_size}, stop)
                    for o in page if isinstance(o, dict)]
    if not observations:
        return None
    try:
        scores: list[dict[str, Any]] | None = [
            s for page in pages(get, SCORES, {"traceId": trace_id, "fields": SCORE_FIELDS,
                                              "limit": min(page_size, SCORES_PAGE_MAX)}, stop)
            for s in page if isinstance(s, dict)]
    except NotFound:
        scores = None
    timed = [o for o in observations if ns(o.get("startTime")) is not None]
    roots = [o for o in timed if _is_root(o)] or timed
    first = min(roots, key=lambda o: ns(o["startTime"])) if roots else {}
    earliest = min(timed, key=lambda o: ns(o["startTime"]))["startTime"] if timed else None
    # The trace-level fields every v4 observation carries (`basic`, `trace_context`);
    # the trace's own input, output and metadata are not among them.
    return {"id": trace_id, "timestamp": earliest, "name": first.get("traceName"),
            "userId": first.get("userId"), "sessionId": first.get("sessionId"), "tags": first.get("tags"),
            "release": first.get("release"), "environment": first.get("environment"),
            "observations": [_observation(o) for o in observations],
            "scores": None if scores is None else [_score(s) for s in scores]}


def _observation(obs: dict[str, Any]) -> dict[str, Any]:
    """A v2 observation under the v3 names the mapping reads."""
    return {**obs, "model": obs.get("providedModelName"), "calculatedTotalCost": obs.get("totalCost")}


def _score(score: dict[str, Any]) -> dict[str, Any]:
    """A v3 score (one `value` typed by `dataType`) as a v1 score (`value` a number, `stringValue` a label)."""
    data_type, value = score.get("dataType"), score.get("value")
    subject = score.get("subject") or {}
    out = {k: score.get(k) for k in ("name", "source", "comment", "timestamp", "dataType")}
    if data_type == "BOOLEAN" or isinstance(value, bool):
        out["value"], out["stringValue"] = (1.0, "True") if value else (0.0, "False")
    elif isinstance(value, (int, float)):
        out["value"] = value
    elif value is not None:
        out["stringValue"] = str(value)
    out["observationId"] = subject.get("id") if subject.get("kind") == "observation" else None
    return out
