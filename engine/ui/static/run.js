// Run: live counters, the error signatures (ranked as everywhere in halo), traces over time.
import { getJSON, onCounters } from "./api.js";
import { clear, fmtCompact, fmtInt, fmtPct, h, shortTime, svg } from "./dom.js";

const COUNTERS = [
  ["traces", "Traces", (c) => fmtInt(c.traces)],
  ["spans", "Spans", (c) => fmtInt(c.spans)],
  ["errors", "Error traces", (c) => `${fmtInt(c.error_traces)} (${fmtPct(c.error_share)})`],
  ["error_spans", "Error spans", (c) => fmtInt(c.error_spans)],
  ["tokens", "Tokens in / out", (c) => `${fmtCompact(c.input_tokens)} / ${fmtCompact(c.output_tokens)}`],
  ["in_progress", "In progress", (c) => fmtInt(c.in_progress)],
  ["pass_rate", "Pass rate", (c) => (c.pass_rate === null ? "—" : fmtPct(c.pass_rate))],
  ["last", "Last span", (c) => shortTime(c.last_span_arrival)],
];

export function renderRun(root) {
  const cards = h("section", { class: "counters", "aria-label": "counters" });
  const values = {};
  for (const [key, label] of COUNTERS) {
    values[key] = h("div", { class: "value", "data-counter": key, text: "…" });
    const note = key === "pass_rate" ? "shown once the run records task outcomes" : null;
    cards.append(h("div", { class: "card", title: note }, h("div", { class: "label", text: label }), values[key]));
  }
  const histogram = h("section", { class: "panel" }, h("h2", { text: "Traces over time" }), h("p", { class: "muted", text: "…" }));
  const sigs = h("section", { class: "panel" }, h("h2", { text: "Error signatures" }), h("p", { class: "muted", text: "…" }));
  root.append(h("h1", { text: "Run" }), cards, histogram, sigs);

  let version = null;
  let loading = false;
  let again = false;

  async function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      const data = await getJSON("/api/run");
      showCounters(data.counters);
      drawHistogram(histogram, data.histogram);
      drawSignatures(sigs, data.signatures, data.ranking);
    } catch (err) {
      sigs.prepend(h("p", { class: "error", text: err.message }));
    } finally {
      loading = false;
      if (again) { again = false; refresh(); }
    }
  }

  function showCounters(c) {
    for (const [key, , fmt] of COUNTERS) values[key].textContent = fmt(c);
  }

  const off = onCounters((c) => {
    showCounters(c);
    const v = JSON.stringify(c.version);
    if (v !== version) {
      version = v;
      refresh(); // the signatures and the histogram changed too; one request per event at most
    }
  });
  refresh();
  return { leave: off };
}

function drawHistogram(panel, hist) {
  const title = panel.firstChild;
  clear(panel).append(title);
  if (!hist.counts.length) {
    panel.append(h("p", { class: "muted", text: "No traces yet." }));
    return;
  }
  const W = 900, H = 120, n = hist.counts.length, max = Math.max(...hist.counts, 1);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 4}`, preserveAspectRatio: "none", class: "histogram", role: "img",
    "aria-label": `traces started per ${hist.bucket_seconds.toFixed(1)} s` });
  hist.counts.forEach((count, i) => {
    const bh = Math.max((count / max) * H, count ? 1 : 0);
    const rect = svg("rect", { x: (i * W) / n + 1, y: H - bh, width: Math.max(W / n - 2, 1), height: bh, class: "bar" });
    const tip = svg("title");
    tip.textContent = `${fmtInt(count)} traces from ${shortTime(hist.edges[i])}`;
    rect.append(tip);
    chart.append(rect);
  });
  panel.append(chart, h("div", { class: "axis" },
    h("span", { text: shortTime(hist.start) }),
    h("span", { class: "muted", text: `${fmtInt(hist.counts.reduce((a, b) => a + b, 0))} traces, ${hist.bucket_seconds.toFixed(1)} s a bar` }),
    h("span", { text: shortTime(hist.end) })));
}

function drawSignatures(panel, signatures, rule) {
  const title = panel.firstChild;
  clear(panel).append(title, h("p", { class: "muted", text: `Ranked by ${rule}. Click one for its traces.` }));
  if (!signatures.length) {
    panel.append(h("p", { class: "muted", text: "No error spans." }));
    return;
  }
  const body = h("tbody");
  for (const s of signatures) {
    const q = new URLSearchParams({ sig_name: s.span_name, sig_message: s.status_message });
    body.append(h("tr", { class: "sig" },
      h("td", { class: "num", text: fmtInt(s.trace_count) }),
      h("td", { class: "num", text: fmtInt(s.error_span_count) }),
      h("td", {}, h("a", { href: `#/traces?${q}`, class: "sig-link", text: s.span_name })),
      h("td", { class: "sig-msg", text: s.status_message || "(no message)" })));
  }
  panel.append(h("table", { class: "grid signatures" },
    h("thead", {}, h("tr", {}, h("th", { text: "traces" }), h("th", { text: "error spans" }),
      h("th", { text: "span" }), h("th", { text: "status message" }))), body));
}
