// Traces: the filtered, sorted, paged table (pages come from the index), with "follow latest".
import { getJSON, onCounters } from "./api.js";
import { clear, durationMs, fmtInt, fmtMs, h, shortId, shortTime } from "./dom.js";

const PAGE = 50;
const SELECTS = [
  ["model", "model_names", "model"],
  ["agent", "agent_names", "agent"],
  ["service", "service_names", "service"],
  ["tool", "tool_names", "tool"],
];
const HEAD_SORTS = { start: "newest", spans: "spans", duration: "duration", tokens: "tokens" };
const FIELDS = ["errors", "outcome", "model", "agent", "service", "tool", "since", "until", "q", "regex", "sort", "sig_name", "sig_message", "complete"];

export function renderTraces(root, route) {
  const params = route.params;
  const state = Object.fromEntries(FIELDS.map((k) => [k, params.get(k) || ""]));
  state.sort = state.sort || "newest";
  let offset = Number(params.get("offset") || 0) || 0;
  let paused = params.get("paused") === "1";

  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); apply(); } });
  const controls = {};
  const select = (name, label, options) => {
    const el = h("select", { name, "aria-label": label },
      options.map(([value, text]) => h("option", { value, text, selected: state[name] === value })));
    controls[name] = el;
    return h("label", {}, h("span", { text: label }), el);
  };
  const input = (name, label, placeholder) => {
    const el = h("input", { name, "aria-label": label, placeholder, value: state[name] });
    controls[name] = el;
    return h("label", {}, h("span", { text: label }), el);
  };
  form.append(
    select("errors", "errors", [["", "any"], ["true", "with errors"], ["false", "without errors"]]),
    select("outcome", "outcome", [["", "any"], ["passed", "passed"], ["failed", "failed"], ["unknown", "unknown"]]),
    ...SELECTS.map(([name, , label]) => select(name, label, [["", "any"]].concat(state[name] ? [[state[name], state[name]]] : []))),
    select("complete", "state", [["", "any"], ["true", "complete"], ["false", "in progress"]]),
    input("since", "from", "2026-01-01T00:00:00Z"),
    input("until", "to", "2026-01-02T00:00:00Z"),
    input("q", "search", "text in any span"),
    h("label", { class: "check" }, controls.regex = h("input", { type: "checkbox", name: "regex", checked: state.regex === "true" }), h("span", { text: "regex" })),
    select("sort", "sort", [["newest", "latest first"], ["oldest", "earliest first"], ["duration", "longest"], ["tokens", "most tokens"], ["spans", "most spans"]]),
    h("button", { type: "submit", text: "Apply" }),
    h("button", { type: "button", class: "link", text: "Clear", onclick: () => { location.hash = "#/traces"; } }),
  );
  if (state.sig_name) {
    form.append(h("p", { class: "chip" }, "error signature: ", h("b", { text: state.sig_name }), " — ", state.sig_message || "(no message)"));
  }
  for (const name of ["errors", "outcome", "model", "agent", "service", "tool", "complete", "sort", "regex"]) {
    controls[name].addEventListener("change", apply);
  }

  const pauseButton = h("button", { type: "button", id: "pause", onclick: () => setPaused(!paused) });
  const status = h("span", { class: "muted", id: "traces-status" });
  const countAll = h("button", { type: "button", class: "link", id: "count-all", text: "count all", hidden: true,
    title: "read every candidate trace for the exact number of matches (slower)", onclick: () => { exact = true; load(); } });
  const prev = h("button", { type: "button", text: "‹ Prev", onclick: () => go(offset - PAGE) });
  const next = h("button", { type: "button", text: "Next ›", onclick: () => go(offset + PAGE) });
  const body = h("tbody", { id: "traces-body" });
  const error = h("p", { class: "error", hidden: true });
  root.append(
    h("h1", { text: "Traces" }), form,
    h("div", { class: "toolbar" }, pauseButton, status, countAll, h("span", { class: "spacer" }), prev, next),
    error,
    h("table", { class: "grid traces" },
      h("thead", {}, h("tr", {}, ...["start", "trace", "agents", "models", "spans", "duration", "tokens", "errors", "outcome", "state"].map((t) => {
        const sort = HEAD_SORTS[t];
        if (!sort) return h("th", { text: t });
        const on = state.sort === sort || (t === "start" && state.sort === "oldest");
        return h("th", { class: `sortable${on ? " on" : ""}`, "aria-sort": on ? (state.sort === "oldest" ? "ascending" : "descending") : null,
          title: "sort by this column",
          onclick: () => { controls.sort.value = t === "start" && state.sort === "newest" ? "oldest" : sort; apply(); } },
        t, on ? (state.sort === "oldest" ? " ▲" : " ▼") : "");
      }))),
      body));

  function following() { return state.sort === "newest" && offset === 0 && !paused; }
  function setPaused(value) {
    paused = value;
    pauseButton.textContent = paused ? "▶ Resume" : "❚❚ Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    updateStatus();
    if (!paused) load();
  }
  let lastTotal = null;
  let lowerBound = false;
  let exact = false;  // "count all": the next loads read every candidate for the exact total
  function updateStatus() {
    const shown = body.children.length;
    const of = `${fmtInt(lastTotal)}${lowerBound ? "+" : ""}`;
    const range = lastTotal === null ? "…" : lastTotal === 0 ? "no traces match" : `${fmtInt(offset + (shown ? 1 : 0))}–${fmtInt(offset + shown)} of ${of}`;
    const mode = following() ? " · following latest" : paused ? " · paused" : "";
    status.textContent = range + mode;
    countAll.hidden = !lowerBound;
  }

  function query() {
    const q = {};
    for (const k of FIELDS) {
      const v = k === "regex" ? (controls.regex.checked ? "true" : "") : controls[k] ? controls[k].value : state[k];
      if (v) q[k] = v;
    }
    return q;
  }
  function apply() {
    const q = new URLSearchParams(query());
    if (paused) q.set("paused", "1");
    location.hash = `#/traces?${q}`;
  }
  function go(to) {
    const q = new URLSearchParams(query());
    if (to > 0) q.set("offset", String(to));
    if (paused) q.set("paused", "1");
    location.hash = `#/traces?${q}`;
  }

  let loading = false;
  let again = false;
  async function load() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      const data = await getJSON("/api/traces", { ...query(), offset, limit: PAGE, ...(exact ? { exact: "1" } : {}) });
      error.hidden = true;
      lastTotal = data.total;
      lowerBound = !!data.total_is_lower_bound;
      fill(data.traces);
    } catch (err) {
      error.hidden = false;
      error.textContent = err.message;
    } finally {
      loading = false;
      updateStatus();
      prev.disabled = offset <= 0;
      next.disabled = lastTotal === null || offset + PAGE >= lastTotal;
      if (again) { again = false; load(); }
    }
  }

  function fill(traces) {
    clear(body);
    for (const t of traces) {
      const link = `#/trace/${encodeURIComponent(t.trace_id)}`;
      body.append(h("tr", { class: t.has_errors ? "err" : "", "data-trace-id": t.trace_id, onclick: (e) => { if (e.target.tagName !== "A") location.hash = link; } },
        h("td", { class: "time", text: shortTime(t.start_time) }),
        h("td", {}, h("a", { href: link, class: "mono", title: t.trace_id, text: shortId(t.trace_id) })),
        h("td", { text: t.agent_names.join(", ") }),
        h("td", { text: t.model_names.join(", ") }),
        h("td", { class: "num", text: fmtInt(t.span_count) }),
        h("td", { class: "num", text: t.complete ? fmtMs(durationMs(t.start_time, t.end_time)) : "—" }),
        h("td", { class: "num", text: fmtInt(t.total_input_tokens + t.total_output_tokens) }),
        h("td", { class: "num", text: t.otel_error_span_count ? fmtInt(t.otel_error_span_count) : "" }),
        outcomeCell(t.outcome),
        h("td", { text: t.complete ? "complete" : "in progress" })));
    }
  }

  // An outcome's status as the index names it; the score and label as a tooltip.
  function outcomeCell(o) {
    if (!o) return h("td", { class: "outcome", "data-outcome": "unknown", text: "" });
    const status = o.passed === null ? "unknown" : o.passed ? "passed" : "failed";
    const tip = [o.task_id && `task ${o.task_id}`, o.score !== null && `score ${o.score}`, o.label].filter(Boolean).join(" · ");
    return h("td", { class: `outcome o-${status}`, "data-outcome": status, title: tip || null, text: status });
  }

  // Facets for the selects, once.
  getJSON("/api/run").then((run) => {
    for (const [name, facet] of SELECTS) {
      const el = controls[name];
      for (const value of run.facets[facet]) {
        if (value !== state[name]) el.append(h("option", { value, text: value }));
      }
    }
  }).catch(() => {});

  // Live: a changed index re-reads the first page while following; other pages keep still.
  let version = null;
  const off = onCounters((c) => {
    const v = JSON.stringify(c.version);
    if (version !== null && v !== version && following()) load();
    version = v;
  });
  setPaused(paused);
  if (paused) load();
  return { leave: off };
}
