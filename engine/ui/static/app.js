// The router: one page per hash route, so every view has a URL that can be pasted.
//   #/                           Run
//   #/traces?errors=true&...     Traces (filters in the query)
//   #/trace/ID                   Trace
//   #/trace/ID/span/SPAN_ID      Trace, with that span open
import { connectEvents } from "./api.js";
import { clear, h } from "./dom.js";
import { renderRun } from "./run.js";
import { renderTraces } from "./traces.js";
import { renderTrace } from "./trace.js";

const main = document.getElementById("main");
let leave = null;
let current = null;

export function parseRoute(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "traces") return { page: "traces", params };
  if (parts[0] === "trace" && parts[1]) {
    return { page: "trace", traceId: parts[1], spanId: parts[2] === "span" ? parts[3] || null : null, params };
  }
  return { page: "run", params };
}

function route() {
  const next = parseRoute(location.hash);
  // Same trace, another span: let the page move its selection without a reload.
  if (current && current.page === "trace" && next.page === "trace" && current.traceId === next.traceId && current.update) {
    current.update(next);
    current = { ...next, update: current.update };
    return;
  }
  if (leave) leave();
  leave = null;
  clear(main);
  document.getElementById("nav-run").classList.toggle("on", next.page === "run");
  document.getElementById("nav-traces").classList.toggle("on", next.page !== "run");
  const render = { run: renderRun, traces: renderTraces, trace: renderTrace }[next.page];
  const handle = render(main, next) || {};
  leave = handle.leave || null;
  current = { ...next, update: handle.update || null };
}

const live = document.getElementById("live");
connectEvents((text, state, counters) => {
  live.textContent = text;
  live.className = `live ${state}`;
  if (counters) {
    live.dataset.traces = String(counters.traces);
    live.title = `${counters.traces.toLocaleString("en-US")} traces, ${counters.spans.toLocaleString("en-US")} spans indexed`;
  }
});
window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (event) => {
  main.prepend(h("p", { class: "error", role: "alert", text: String(event.reason && event.reason.message || event.reason) }));
});
route();
