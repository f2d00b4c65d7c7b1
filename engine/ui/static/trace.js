// Trace: the span tree and a waterfall on one time axis; a span's conversation, attributes, raw line.
import { getJSON, onCounters } from "./api.js";
import { clear, fmtInt, fmtMs, h, shortTime } from "./dom.js";

export function renderTrace(root, route) {
  const traceId = route.traceId;
  const head = h("div", { class: "trace-head" }, h("h1", {}, "Trace ", h("span", { class: "mono", text: traceId })));
  const tree = h("div", { class: "tree", role: "tree", "aria-label": "spans" });
  const detail = h("aside", { class: "detail", "aria-label": "span" }, h("p", { class: "muted", text: "Loading…" }));
  root.append(head, h("div", { class: "trace-layout" }, h("section", { class: "tree-pane" }, tree), detail));

  let outline = null;
  let selected = route.spanId;
  const rowsById = new Map();
  const collapsed = new Set();
  let order = [];

  const loadOutline = (first) => getJSON(`/api/trace/${encodeURIComponent(traceId)}/outline`).then((data) => {
    outline = data;
    while (head.childNodes.length > 1) head.lastChild.remove();
    drawHead(head, data);
    order = flatten(data.spans);
    drawTree();
    if (first) select(selected || defaultSpan(data.spans), !selected);
  }).catch((err) => {
    clear(detail).append(h("p", { class: "error", text: err.message }));
  });
  loadOutline(true);

  // A trace still in progress grows in place as its spans arrive.
  let version = null;
  let reloading = false;
  const off = onCounters((c) => {
    const v = JSON.stringify(c.version);
    if (version !== null && v !== version && outline && !outline.complete && !reloading) {
      reloading = true;
      loadOutline(false).finally(() => { reloading = false; });
    }
    version = v;
  });

  // Rows go in slices, each its own task, so a trace of thousands of spans never holds the
  // page for long; offscreen rows skip layout (content-visibility in style.css).
  const SLICE = 200;
  let drawing = 0;
  let pendingScroll = null;
  function drawTree() {
    const mine = ++drawing;
    clear(tree);
    rowsById.clear();
    const t0 = outline.start_ns, span = Math.max((outline.end_ns || 0) - (t0 || 0), 1);
    const visible = [];
    let hiddenBelow = null;
    for (const item of order) {
      if (hiddenBelow !== null && item.depth > hiddenBelow) continue;
      hiddenBelow = collapsed.has(item.s.span_id) ? item.depth : null;
      visible.push(item);
    }
    const step = (from) => {
      if (mine !== drawing) return;
      const frag = document.createDocumentFragment();
      for (const item of visible.slice(from, from + SLICE)) frag.append(drawRow(item, t0, span));
      tree.append(frag);
      markSelected();
      if (from + SLICE < visible.length) setTimeout(() => step(from + SLICE), 0);
      else tree.dataset.drawn = String(visible.length);
    };
    delete tree.dataset.drawn;
    step(0);
  }

  function drawRow({ s, depth, hasChildren }, t0, span) {
    const isErr = s.status === "STATUS_CODE_ERROR";
    const toggle = hasChildren
      ? h("button", { class: "toggle", type: "button", "aria-label": "collapse", text: collapsed.has(s.span_id) ? "▸" : "▾",
        onclick: (e) => { e.stopPropagation(); collapsed.has(s.span_id) ? collapsed.delete(s.span_id) : collapsed.add(s.span_id); drawTree(); } })
      : h("span", { class: "toggle" });
    const name = h("div", { class: "name" }, toggle,
      h("span", { class: `kind k-${s.kind}`, text: s.kind }),
      h("span", { class: "span-name", text: s.name }),
      s.model ? h("span", { class: "meta", text: s.model }) : null,
      s.tool ? h("span", { class: "meta", text: s.tool }) : null,
      isErr ? h("span", { class: "err-mark", title: s.status_message, text: "error" }) : null);
    name.style.paddingLeft = `${depth * 14}px`;
    const bar = h("div", { class: "bar" });
    const dur = s.start_ns !== null && s.end_ns !== null ? (s.end_ns - s.start_ns) / 1e6 : null;
    if (s.start_ns !== null && t0 !== null) {
      bar.style.left = `${((s.start_ns - t0) / span) * 100}%`;
      bar.style.width = `${Math.max(((s.end_ns - s.start_ns) / span) * 100, 0.3)}%`;
    }
    const row = h("div", { class: `row${isErr ? " err" : ""}`, role: "treeitem", "data-span-id": s.span_id, "data-status": s.status,
      onclick: () => { location.hash = `#/trace/${encodeURIComponent(traceId)}/span/${encodeURIComponent(s.span_id)}`; } },
      name, h("div", { class: "wf" }, bar), h("div", { class: "dur", text: fmtMs(dur) }));
    rowsById.set(s.span_id, row);
    return row;
  }

  function markSelected() {
    for (const row of tree.querySelectorAll(".row.selected")) {
      row.classList.remove("selected");
      row.removeAttribute("aria-selected");
    }
    const row = rowsById.get(selected);
    if (row) {
      row.classList.add("selected");
      row.setAttribute("aria-selected", "true");
      if (pendingScroll === selected) {
        pendingScroll = null;
        row.scrollIntoView({ block: "nearest" });
      }
    }
  }

  let request = 0;
  async function select(spanId, implicit = false) {
    selected = spanId;
    pendingScroll = implicit ? null : spanId;
    markSelected();
    if (!spanId) {
      clear(detail).append(h("p", { class: "muted", text: "No spans." }));
      return;
    }
    const mine = ++request;
    try {
      const data = await getJSON(`/api/trace/${encodeURIComponent(traceId)}/span/${encodeURIComponent(spanId)}`);
      if (mine === request) drawDetail(detail, data, outline.spans.find((s) => s.span_id === spanId), implicit);
    } catch (err) {
      if (mine === request) clear(detail).append(h("p", { class: "error", text: err.message }));
    }
  }

  return { leave: off, update: (next) => select(next.spanId || defaultSpan(outline ? outline.spans : []), !next.spanId) };
}

function drawHead(head, data) {
  const errors = data.spans.filter((s) => s.status === "STATUS_CODE_ERROR").length;
  head.append(h("p", { class: "facts" },
    h("span", { text: `${fmtInt(data.span_count)} spans` }),
    h("span", { text: `started ${shortTime(data.start_time)}` }),
    h("span", { text: fmtMs(data.duration_ms) }),
    h("span", { class: errors ? "bad" : "", text: `${errors} error span${errors === 1 ? "" : "s"}` }),
    h("span", { text: data.complete ? "complete" : "in progress" }),
    data.truncated ? h("span", { class: "bad", text: "outline cut: too many spans" }) : null));
  if (data.outcome) head.append(outcomeView(data.outcome, data.trace_id));
}

// The task outcome recorded in the trace (its latest outcome span): all text, from the data.
function outcomeView(o, traceId) {
  const facts = [o.task_id ? `task ${o.task_id}` : null, o.score !== null ? `score ${o.score}` : null, o.label || null].filter(Boolean);
  return h("div", { class: `outcome-box o-${o.status}`, "data-outcome": o.status },
    h("b", { class: "outcome-status", text: o.status }),
    facts.length ? h("span", { class: "outcome-facts", text: facts.join(" · ") }) : null,
    o.span_id ? h("a", { href: `#/trace/${encodeURIComponent(traceId)}/span/${encodeURIComponent(o.span_id)}`, text: "outcome span" }) : null,
    o.explanation ? h("pre", { class: "outcome-explanation", text: o.explanation }) : null);
}

// Depth-first, children by start time; spans whose parent is not in the trace become roots.
function flatten(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && ids.has(s.parent_span_id) && s.parent_span_id !== s.span_id) {
      if (!kids.has(s.parent_span_id)) kids.set(s.parent_span_id, []);
      kids.get(s.parent_span_id).push(s);
    } else roots.push(s);
  }
  const byStart = (a, b) => (a.start_ns ?? 0) - (b.start_ns ?? 0);
  const out = [];
  const seen = new Set();
  const stack = roots.sort(byStart).reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [s, depth] = stack.pop();
    if (seen.has(s.span_id)) continue;
    seen.add(s.span_id);
    const children = (kids.get(s.span_id) || []).sort(byStart);
    out.push({ s, depth, hasChildren: children.length > 0 });
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i], depth + 1]);
  }
  return out;
}

// With no span in the URL: the last LLM call (its input holds the conversation so far), else the root.
function defaultSpan(spans) {
  const llms = spans.filter((s) => s.kind === "LLM");
  if (llms.length) return llms.reduce((a, b) => ((b.end_ns ?? 0) >= (a.end_ns ?? 0) ? b : a)).span_id;
  const root = spans.find((s) => !s.parent_span_id);
  return (root || spans[0] || {}).span_id || null;
}

function drawDetail(detail, data, s, implicit) {
  clear(detail);
  const span = data.view_spans.result.spans[0] || null;
  detail.append(h("h2", {}, s ? s.name : "span", " ", h("span", { class: "muted mono", text: s ? s.span_id : "" })));
  if (implicit) detail.append(h("p", { class: "muted", text: "The trace's last LLM call; click a span to open it." }));
  if (s) {
    detail.append(h("p", { class: "facts" },
      h("span", { class: `kind k-${s.kind}`, text: s.kind }),
      h("span", { text: shortTime(s.start_time) }),
      h("span", { text: fmtMs(s.start_ns !== null && s.end_ns !== null ? (s.end_ns - s.start_ns) / 1e6 : null) }),
      h("span", { class: s.status === "STATUS_CODE_ERROR" ? "bad" : "", text: s.status.replace("STATUS_CODE_", "") })));
    if (s.status_message) detail.append(h("pre", { class: "status-message", text: s.status_message }));
  }
  const command = h("code", { class: "command", text: data.command });
  const copy = h("button", { type: "button", text: "Copy", onclick: async () => {
    try { await navigator.clipboard.writeText(data.command); copy.textContent = "Copied"; } catch {
      const range = document.createRange(); range.selectNodeContents(command);
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range); copy.textContent = "Selected";
    }
  } });
  detail.append(h("div", { class: "command-box" }, command, copy));

  const tabs = [
    ["conversation", `Conversation (${data.conversation.length})`, () => conversationView(data.conversation)],
    ["attributes", `Attributes (${span ? Object.keys(span.attributes || {}).length : 0})`, () => attributesView(span)],
    ["raw", "Raw JSON", () => h("pre", { class: "raw", text: pretty(data.raw) + (data.raw_truncated ? `\n… (${fmtInt(data.raw_bytes)} bytes in all)` : "") })],
  ];
  const bar = h("div", { class: "tabs", role: "tablist" });
  const panes = h("div", { class: "panes" });
  let first = data.conversation.length ? "conversation" : "attributes";
  for (const [key, label, build] of tabs) {
    const pane = h("div", { class: "pane", "data-pane": key, hidden: key !== first }, build());
    const button = h("button", { type: "button", role: "tab", "data-tab": key, "aria-selected": String(key === first), text: label,
      onclick: () => {
        for (const p of panes.children) p.hidden = p.dataset.pane !== key;
        for (const b of bar.children) b.setAttribute("aria-selected", String(b.dataset.tab === key));
      } });
    bar.append(button);
    panes.append(pane);
  }
  detail.append(bar, panes);
}

function pretty(raw) {
  try { return JSON.stringify(JSON.parse(raw), null, 2); } catch { return raw; }
}

function conversationView(messages) {
  if (!messages.length) return h("p", { class: "muted", text: "No messages in this span." });
  return h("ol", { class: "conversation" }, messages.map((m) => h("li", { class: `msg role-${m.role.replace(/[^a-z_]/gi, "")}`, "data-role": m.role },
    h("div", { class: "msg-head" }, h("b", { text: m.role }), m.side === "output" ? h("span", { class: "meta", text: "output" }) : null,
      m.name ? h("span", { class: "meta", text: m.name }) : null,
      m.tool_call_id ? h("span", { class: "meta mono", text: `result of ${m.tool_call_id}` }) : null),
    m.text ? h("pre", { class: "msg-text", text: m.text }) : null,
    m.tool_calls.map((c) => h("div", { class: "tool-call" }, h("div", {}, "→ calls ", h("b", { text: c.name }), c.id ? h("span", { class: "meta mono", text: c.id }) : null),
      h("pre", { text: pretty(c.arguments) }))))));
}

function attributesView(span) {
  if (!span) return h("p", { class: "muted", text: "Not found." });
  const rows = Object.entries(span.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  return h("table", { class: "grid attrs" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {},
    h("th", { class: "mono", text: k }),
    h("td", {}, h("pre", { text: typeof v === "string" ? v : JSON.stringify(v, null, 2) }))))));
}
