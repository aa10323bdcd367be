/* The express console: state machines, their graphs, recent executions with their history on the
   graph, live counters, and validation as you type. Plain JS; talks to /console/api/. Polls only
   while the page is visible. */
"use strict";

(function () {
  const API = "/console/api/";
  const STATS_EVERY_MS = 2000;
  const EXECUTIONS_EVERY_MS = 3000;
  const VALIDATE_DEBOUNCE_MS = 350;
  const SAMPLE = {
    Comment: "Paste or type a state machine definition (Amazon States Language)",
    StartAt: "Check",
    States: {
      Check: { Type: "Choice", Choices: [{ Variable: "$.ok", BooleanEquals: true, Next: "Work" }], Default: "Rejected" },
      Work: { Type: "Task", Resource: "work", Catch: [{ ErrorEquals: ["States.ALL"], Next: "Rejected" }], End: true },
      Rejected: { Type: "Fail", Error: "Rejected", Cause: "not ok" },
    },
  };

  const state = {
    machines: [], stats: {}, route: null, machine: null, graph: null, executions: [], selected: null,
    filter: "all", search: "", timers: [], validateTimer: null, validateSeq: 0, recording: true, metrics: false, workers: null,
    inspected: null, visitPick: {}, startInput: {},
  };
  const EVENT_SHORT = 120;

  // ------------------------------------------------------------------ helpers
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  async function api(path, init) {
    let r;
    try {
      r = await fetch(API + path, Object.assign({ cache: "no-store" }, init || {}));
    } catch (err) {
      setConn(false);
      throw err;
    }
    setConn(true);
    const body = await r.json().catch(() => ({}));
    if (r.status === 401 && body.login) showLogin();
    if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
    return body;
  }

  function setConn(ok) {
    const c = document.getElementById("conn");
    c.className = "conn " + (ok ? "ok" : "down");
    c.textContent = ok ? "live" : "offline";
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  }
  function fmtSeconds(s) { return s === null || s === undefined ? "–" : fmtDuration(s * 1000); }
  function fmtRate(r) { return r === null || r === undefined ? "–" : r < 10 ? r.toFixed(2) : r.toFixed(0); }
  function fmtTime(epoch) {
    if (!epoch) return "";
    const d = new Date(epoch * 1000);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function pad(n, w) { return String(n).padStart(w || 2, "0"); }
  /* local date and time: 2026-12-01 22:54:12.345 */
  function fmtDate(epoch) {
    if (!epoch) return "";
    const d = new Date(epoch * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + fmtTime(epoch);
  }
  /* a percentile of the observed durations of recent executions; only a server that records no
     executions falls back to the metrics histogram's estimate */
  function observedP(s, key) {
    const o = s && s.observed;
    if (o && o[key] !== null && o[key] !== undefined) return o[key];
    return key === "p99_s" && s && !state.recording ? (s.recent_p99_s ?? s.p99_s) : null;
  }
  function badge(status) {
    return h("span", { class: "badge status-" + status, "data-status": status }, status.replace("_", " "));
  }
  function clearTimers() { for (const t of state.timers) clearInterval(t); state.timers = []; }
  function every(ms, fn) {
    state.timers.push(setInterval(() => { if (!document.hidden) fn(); }, ms));
  }

  // ------------------------------------------------------------------ sidebar
  async function loadMachines() {
    const data = await api("machines");
    state.machines = data.machines;
    state.recording = data.recording;
    state.metrics = data.metrics;
    renderSidebar();
  }

  function renderSidebar() {
    const list = document.getElementById("machine-list");
    list.textContent = "";
    document.getElementById("machine-count").textContent = "(" + state.machines.length + ")";
    const current = state.route && state.route.machine;
    for (const m of state.machines) {
      const s = state.stats[m.name] || {};
      const li = h("li", { class: "machine-item" + (m.name === current ? " active" : ""), "data-machine": m.name },
        h("a", { href: "#/machines/" + encodeURIComponent(m.name) },
          h("span", { class: "m-name" }, m.name),
          h("span", { class: "m-counters", "data-counters": m.name },
            h("span", { title: "executions per second (last seconds)" }, fmtRate(s.executions_per_s) + "/s"),
            h("span", { class: (s.failures ? "fail" : ""), title: "failed or timed-out executions (total)" },
              "✕ " + (s.failures === undefined ? "–" : s.failures)),
            h("span", { title: "p99 of the observed durations of recent executions" },
              "p99 " + fmtSeconds(observedP(s, "p99_s"))))));
      list.appendChild(li);
    }
    const note = document.getElementById("side-note");
    note.textContent = (state.recording ? "" : "Recent executions are not recorded by this server. ") +
      (state.metrics ? "" : "Metrics are off: no live counters.");
  }

  async function loadStats() {
    try {
      const data = await api("stats");
      state.stats = data.machines || {};
      renderSidebar();
      renderCounters();
    } catch (err) { /* shown by the connection indicator */ }
  }

  // ------------------------------------------------------------------ routing
  function parseRoute() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "validate") return { view: "validate" };
    if (parts[0] === "machines" && parts[1]) {
      return { view: "machine", machine: parts[1], execution: parts[2] === "executions" ? Number(parts[3]) : null };
    }
    return { view: "home" };
  }

  async function route() {
    const next = parseRoute();
    const prev = state.route;
    state.route = next;
    for (const a of document.querySelectorAll("header nav a")) a.classList.remove("active");
    document.getElementById(next.view === "validate" ? "nav-validate" : "nav-machines").classList.add("active");
    renderSidebar();
    if (next.view === "machine" && prev && prev.view === "machine" && prev.machine === next.machine && state.graph) {
      await selectExecution(next.execution);
      return;
    }
    clearTimers();
    every(STATS_EVERY_MS, loadStats);
    state.selected = null;
    if (next.view === "validate") return showValidate();
    if (next.view === "machine") return showMachine(next.machine, next.execution);
    return showHome();
  }

  function showHome() {
    const main = document.getElementById("main");
    main.textContent = "";
    main.appendChild(h("section", { class: "home" },
      h("h2", {}, "State machines"),
      state.machines.length ? h("p", { class: "muted" }, "Pick a state machine to see its graph and recent executions.")
        : h("p", { class: "muted" }, "No state machines yet: create one over the API or put NAME.asl.json in the machines folder."),
      h("table", { class: "table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "States"), h("th", {}, "Logging"),
          h("th", {}, "Recent ok"), h("th", {}, "Recent failed"))),
        h("tbody", {}, state.machines.map((m) => h("tr", {},
          h("td", {}, h("a", { href: "#/machines/" + encodeURIComponent(m.name) }, m.name)),
          h("td", {}, m.states), h("td", {}, m.logging.level + (m.logging.includeExecutionData ? " + data" : "")),
          h("td", {}, m.recent.succeeded), h("td", {}, m.recent.failed)))))));
  }

  // ------------------------------------------------------------------ machine view
  async function showMachine(name, executionId) {
    const main = document.getElementById("main");
    main.textContent = "";
    state.inspected = null;
    state.visitPick = {};
    let m;
    try {
      m = await api("machines/" + encodeURIComponent(name));
    } catch (err) {
      main.appendChild(h("p", { class: "error" }, "Cannot load " + name + ": " + err.message));
      return;
    }
    state.machine = m;
    const graphBox = h("div", { class: "graph-box", id: "graph" }, h("p", { class: "muted" }, "Laying out…"));
    main.appendChild(h("section", { class: "machine", "data-machine-view": name },
      h("div", { class: "machine-head" },
        h("div", {},
          h("h2", {}, name),
          h("div", { class: "muted small arn" }, m.arn),
          h("div", { class: "small" }, "Logging: ", h("b", {}, m.logging.level),
            m.logging.includeExecutionData ? " with execution data" : ""),
          h("div", { class: "actions" },
            h("button", { class: "action primary", id: "start-open", onclick: () => togglePanel("start") }, "Start execution"),
            h("button", { class: "action", id: "definition-open", onclick: () => togglePanel("definition") }, "Definition"))),
        h("div", { class: "counters", id: "counters" })),
      h("div", { class: "panel hidden", id: "start-panel" }),
      h("div", { class: "panel hidden", id: "definition-panel" }),
      h("div", { class: "machine-body" },
        h("div", { class: "panel graph-panel" }, h("div", { class: "panel-title" }, "Graph",
          h("span", { class: "legend" },
            h("span", { class: "lg visited" }, "path taken"), h("span", { class: "lg failed" }, "failed"),
            h("span", { class: "lg catch" }, "catch"))), graphBox,
          h("p", { class: "muted small hint" }, "Click a state to inspect it.")),
        h("div", { class: "panel list-panel" },
          h("div", { class: "panel-title" }, "Recent executions", h("span", { class: "muted small", id: "exec-count" })),
          h("div", { class: "exec-tools" },
            h("input", { id: "exec-search", type: "search", placeholder: "Search by name", value: state.search,
              "aria-label": "Search executions by name", oninput: (e) => { state.search = e.target.value; renderExecutions(); } }),
            statusSelect()),
          h("ul", { class: "executions", id: "executions" })),
        h("div", { class: "panel", id: "inspector" }),
        h("div", { class: "panel", id: "detail" }))));
    renderCounters();
    renderInspector();
    try {
      state.graph = await ExpressGraph.render(graphBox, m.graph, { name: name, onSelect: (n) => inspect(n.id) });
      graphBox.setAttribute("data-ready", "true");
    } catch (err) {
      graphBox.textContent = "Cannot lay out the graph: " + err;
    }
    await loadExecutions();
    every(EXECUTIONS_EVERY_MS, loadExecutions);
    if (executionId) await selectExecution(executionId);
    else renderDetail(null);
  }

  function renderCounters() {
    const box = document.getElementById("counters");
    if (!box || !state.route || !state.route.machine) return;
    const s = state.stats[state.route.machine] || {};
    box.textContent = "";
    const item = (label, value, cls) => h("div", { class: "counter " + (cls || "") }, h("div", { class: "v" }, value), h("div", { class: "l" }, label));
    box.appendChild(item("executions/s", fmtRate(s.executions_per_s)));
    box.appendChild(item("failures", s.failures === undefined ? "–" : String(s.failures), s.failures ? "bad" : ""));
    box.appendChild(item("failures/s", fmtRate(s.failures_per_s)));
    const o = s.observed || {};
    const sample = o.observed ? " (last " + o.observed + ")" : "";
    box.appendChild(item("p50 duration" + sample, fmtSeconds(observedP(s, "p50_s")), "p50"));
    box.appendChild(item("p99 duration" + sample, fmtSeconds(observedP(s, "p99_s")), "p99"));
    box.appendChild(item("executions", s.executions === undefined ? "–" : String(s.executions)));
  }

  function statusSelect() {
    const sel = h("select", { id: "exec-status", "aria-label": "Filter by status",
      onchange: (e) => { state.filter = e.target.value; renderExecutions(); } },
      [["all", "All statuses"], ["failed", "Failed or timed out"], ["SUCCEEDED", "Succeeded"], ["FAILED", "Failed"],
        ["TIMED_OUT", "Timed out"]].map(([v, label]) => h("option", { value: v, selected: state.filter === v }, label)));
    return sel;
  }

  function matches(e) {
    const f = state.filter;
    if (f === "failed" && e.status === "SUCCEEDED") return false;
    if (f !== "all" && f !== "failed" && e.status !== f) return false;
    const q = state.search.trim().toLowerCase();
    return !q || e.name.toLowerCase().includes(q);
  }

  async function loadExecutions() {
    if (!state.route || state.route.view !== "machine") return;
    try {
      const data = await api("machines/" + encodeURIComponent(state.route.machine) + "/executions");
      state.executions = data.executions;
      state.recording = data.recording;
      state.workers = data.workers || null;
      renderExecutions();
    } catch (err) { /* connection indicator */ }
  }

  function renderExecutions() {
    const ul = document.getElementById("executions");
    if (!ul) return;
    ul.textContent = "";
    const shown = state.executions.filter(matches);
    const count = document.getElementById("exec-count");
    if (count) count.textContent = shown.length === state.executions.length ? "(" + shown.length + ")" : "(" + shown.length + " of " + state.executions.length + ")";
    const w = state.workers;
    if (w && w.unanswered && w.unanswered.length) {
      ul.appendChild(h("li", { class: "muted", id: "exec-unanswered" }, (w.unanswered.length === 1 ? "Worker " : "Workers ") +
        w.unanswered.join(", ") + " did not answer in time: " + w.answered + " of " + w.of + " workers listed."));
    }
    if (!state.recording) ul.appendChild(h("li", { class: "muted" }, "This server does not record executions."));
    else if (!state.executions.length) ul.appendChild(h("li", { class: "muted empty" }, "No executions yet."));
    else if (!shown.length) ul.appendChild(h("li", { class: "muted empty" }, "No execution matches."));
    for (const e of shown) {
      const selected = state.selected && state.selected.id === e.id;
      ul.appendChild(h("li", { class: "execution" + (selected ? " selected" : ""), "data-execution": e.id,
        "data-status": e.status, onclick: () => { location.hash = "#/machines/" + encodeURIComponent(state.route.machine) + "/executions/" + e.id; } },
        badge(e.status),
        h("span", { class: "e-name", title: e.name }, e.name),
        h("span", { class: "e-dur" }, fmtDuration(e.duration_ms)),
        h("span", { class: "e-time muted", title: fmtDate(e.start_time) }, fmtDate(e.start_time)),
        e.error ? h("div", { class: "e-error" }, e.error) : null));
    }
  }

  async function selectExecution(id) {
    if (!id) { state.selected = null; if (state.graph) ExpressGraph.clear(state.graph); renderDetail(null); renderExecutions(); renderInspector(); return; }
    let detail;
    try {
      detail = await api("machines/" + encodeURIComponent(state.route.machine) + "/executions/" + id);
    } catch (err) {
      renderDetail(null, "Execution " + id + " is not kept any more.");
      return;
    }
    state.selected = detail;
    state.visitPick = {};
    if (state.graph) ExpressGraph.highlight(state.graph, detail);
    renderDetail(detail);
    renderExecutions();
    renderInspector();
  }

  function renderDetail(d, message) {
    const box = document.getElementById("detail");
    if (!box) return;
    box.textContent = "";
    if (!d) {
      box.appendChild(h("div", { class: "panel-title" }, "Execution"));
      box.appendChild(h("p", { class: "muted" }, message || "Select an execution to see its history on the graph."));
      return;
    }
    box.setAttribute("data-execution-detail", d.id);
    box.appendChild(h("div", { class: "panel-title" }, "Execution ", h("span", { class: "mono" }, d.name), " ", badge(d.status)));
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Started"), h("dd", {}, fmtDate(d.start_time)),
      h("dt", {}, "Duration"), h("dd", {}, fmtDuration(d.duration_ms)),
      h("dt", {}, "State transitions"), h("dd", {}, d.state_transitions));
    if (d.execution_arn) facts.append(h("dt", {}, "ARN"), h("dd", { class: "mono small" }, d.execution_arn));
    box.appendChild(facts);
    if (d.status !== "SUCCEEDED") {
      box.appendChild(h("div", { class: "failure", "data-failure": "true" },
        h("div", {}, d.status === "TIMED_OUT" ? "Timed out" : "Failed",
          d.failed_state ? [" in state ", h("b", { "data-failed-state": d.failed_state }, d.failed_state)] : ""),
        d.error ? h("div", {}, h("span", { class: "k" }, "Error "), h("code", { "data-error": "true" }, d.error)) : null,
        d.cause ? h("div", {}, h("span", { class: "k" }, "Cause "), h("code", { class: "cause" }, d.cause)) : null));
    }
    if (d.trace) {
      box.appendChild(h("p", { class: "muted small", "data-trace": "true" },
        "Logging is OFF: no event history or data is kept. The path and timings come from the console's light trace (state names and times only)."));
    } else if (d.sampled_out) {
      box.appendChild(h("p", { class: "muted small", "data-sampled-out": "true" },
        "Not traced: at logging OFF the console traces a limited number of executions per second of each machine (EXPRESS_CONSOLE_TRACE); this one was over it."));
    } else if (!d.history) {
      box.appendChild(h("p", { class: "muted small" },
        "No event history: the machine's logging level is OFF (set it to ALL, ERROR or FATAL to see the path on the graph)."));
    }
    if (d.path && d.path.length) box.appendChild(timeline(d));
    if (d.execution_data) {
      const io = h("div", { class: "io" });
      if (d.input) io.appendChild(h("div", {}, h("div", { class: "k" }, "Input"), h("pre", {}, pretty(d.input.text))));
      if (d.output) io.appendChild(h("div", {}, h("div", { class: "k" }, "Output"), h("pre", {}, pretty(d.output.text))));
      box.appendChild(io);
    } else if (d.history) {
      box.appendChild(h("p", { class: "muted small" }, "Input and output are shown when the machine's logging includes execution data."));
    }
    if (d.events && d.events.length && d.trace) {
      box.appendChild(h("details", { class: "trace-events" }, h("summary", { class: "small" }, "Trace (" + d.events.length + " entries)"),
        eventsTable(d, d.events)));
    } else if (d.events && d.events.length) {
      box.appendChild(eventsTable(d, d.events));
    }
    if (d.events_truncated) box.appendChild(h("p", { class: "muted small" }, "(more events not shown)"));
  }

  function eventsTable(d, events) {
    const t0 = d.start_time;
    return h("table", { class: "table events" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Type"), h("th", {}, "State"), h("th", {}, "+ms"), h("th", {}, "Details"))),
      h("tbody", {}, events.map((ev) => h("tr", { class: /Failed|TimedOut|Aborted/.test(ev.type) ? "bad" : "", "data-event": ev.type },
        h("td", {}, ev.id), h("td", {}, ev.type), h("td", {}, ev.details.name || ""),
        h("td", {}, ((ev.timestamp - t0) * 1000).toFixed(1)),
        h("td", { class: "small ev-details" }, eventDetails(ev.details))))));
  }

  /* the states in the order they were entered, with when and how long: shown at every level */
  function timeline(d) {
    const rows = [];
    for (const [name, visits] of Object.entries(d.states || {})) {
      for (const v of visits) rows.push([name, v]);
    }
    rows.sort((a, b) => a[1].entered_s - b[1].entered_s);
    const shown = rows.slice(0, 200);
    const status = (name, v) => v.error ? "failed" : v.unfinished ? (d.status === "TIMED_OUT" ? "timed out" : "unfinished") : "ok";
    return h("div", { class: "timeline", id: "timeline" },
      h("div", { class: "k" }, "Path taken (" + d.path.length + " state" + (d.path.length === 1 ? "" : "s") + ", " + rows.length + " visit" + (rows.length === 1 ? "" : "s") + ")"),
      h("table", { class: "table events" },
        h("thead", {}, h("tr", {}, h("th", {}, "State"), h("th", {}, "Iteration"), h("th", {}, "Entered +ms"), h("th", {}, "Duration"), h("th", {}, "Outcome"))),
        h("tbody", {}, shown.map(([name, v]) => h("tr", { class: v.error ? "bad" : "", "data-visit": name, onclick: () => { state.visitPick[name] = d.states[name].indexOf(v); inspectByName(name); } },
          h("td", {}, h("button", { class: "link" }, name)), h("td", {}, v.iteration ?? ""),
          h("td", {}, (v.entered_s * 1000).toFixed(1)), h("td", { "data-duration": name }, fmtDuration(v.duration_ms)),
          h("td", {}, status(name, v) + (v.error ? ": " + v.error : "")))))),
      rows.length > shown.length ? h("p", { class: "muted small" }, "(" + (rows.length - shown.length) + " more visits)") : null);
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  /* one line per detail; a long one is cut, with the whole of it (pretty-printed) a click away */
  function eventDetails(details) {
    const parts = [];
    for (const [k, v] of Object.entries(details)) {
      if (k === "name") continue;
      const text = v && typeof v === "object" ? v.text : String(v);
      if (text.length <= EVENT_SHORT) { parts.push(h("div", {}, h("span", { class: "k" }, k + ": "), text)); continue; }
      parts.push(h("details", { class: "ev-more", "data-detail": k },
        h("summary", {}, h("span", { class: "k" }, k + ": "), text.slice(0, EVENT_SHORT - 1) + "…"),
        h("pre", { class: "ev-full" }, pretty(text)),
        v && v.truncated ? h("div", { class: "muted small" }, "(cut at the console's limit)") : null));
    }
    return parts;
  }

  // ------------------------------------------------------------------ inspector
  /* The state at a graph node's id (its JSON pointer in the definition). */
  function atPointer(doc, pointer) {
    let v = doc;
    for (const raw of pointer.split("/").slice(1)) {
      const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      if (v === null || typeof v !== "object") return undefined;
      v = v[key];
    }
    return v;
  }

  function inspect(id) {
    state.inspected = id;
    if (state.graph) ExpressGraph.select(state.graph, id);
    renderInspector();
  }

  function inspectByName(name) {
    const n = state.machine && state.machine.graph.nodes.find((x) => x.kind === "state" && x.name === name);
    if (n) { inspect(n.id); const box = document.getElementById("inspector"); if (box) box.scrollIntoView({ block: "nearest" }); }
  }

  function nodeById(id) { return state.machine ? state.machine.graph.nodes.find((n) => n.id === id) : null; }

  /* "Branch 2" / "Item processor" the node lies in, outermost first */
  function enclosing(n) {
    const out = [];
    let p = n && n.parent ? nodeById(n.parent) : null;
    while (p) { if (p.kind === "group") out.unshift(nodeById(p.parent).name + " › " + p.name); p = p.parent ? nodeById(p.parent) : null; }
    return out;
  }

  function renderInspector() {
    const box = document.getElementById("inspector");
    if (!box) return;
    box.textContent = "";
    const n = state.inspected && nodeById(state.inspected);
    if (!n) {
      box.classList.add("hidden");
      return;
    }
    box.classList.remove("hidden");
    box.setAttribute("data-inspected", n.name);
    const d = state.selected;
    box.appendChild(h("div", { class: "panel-title" }, "State ", h("span", { class: "mono" }, n.name),
      h("span", { class: "badge type" }, n.type),
      h("button", { class: "close", title: "close", onclick: () => inspect(null) }, "×")));
    const where = enclosing(n);
    if (where.length) box.appendChild(h("div", { class: "small muted", "data-where": "true" }, "In " + where.join(" › ")));
    const cols = h("div", { class: "inspector-body" });
    box.appendChild(cols);
    const left = h("div", { class: "insp-run" }), right = h("div", { class: "insp-def" });
    cols.append(left, right);
    right.appendChild(h("div", { class: "k" }, "Definition"));
    right.appendChild(h("pre", { class: "state-def", "data-state-definition": n.name },
      JSON.stringify(atPointer(state.machine.definition, n.id), null, 2)));
    if (!d) {
      left.appendChild(h("p", { class: "muted small" }, "Select an execution to see this state's input, output, events and timing in it."));
      return;
    }
    const visits = (d.states || {})[n.name] || [];
    left.appendChild(h("div", { class: "small" }, "Execution ", h("span", { class: "mono" }, d.name), " ", badge(d.status)));
    if (n.compound) left.appendChild(compoundSummary(n, d));
    if (!visits.length) {
      left.appendChild(h("p", { class: "muted small", "data-not-entered": "true" },
        d.history || d.trace ? "Not entered in this execution." : "Nothing recorded: this execution has no history or trace."));
      return;
    }
    let pick = state.visitPick[n.name] ?? 0;
    if (pick >= visits.length) pick = 0;
    if (visits.length > 1) {
      const label = (v, i) => (v.iteration !== null && v.iteration !== undefined ? "Iteration " + v.iteration : "Visit " + (i + 1)) +
        " · " + fmtDuration(v.duration_ms) + (v.error ? " · " + v.error : "");
      left.appendChild(h("label", { class: "small pick" }, "Show ",
        h("select", { id: "inspector-visit", onchange: (e) => { state.visitPick[n.name] = Number(e.target.value); renderInspector(); } },
          visits.map((v, i) => h("option", { value: i, selected: i === pick }, label(v, i)))),
        " of " + visits.length));
    }
    const v = visits[pick];
    const facts = h("dl", { class: "facts", "data-visit-facts": "true" },
      h("dt", {}, "Entered"), h("dd", {}, "+" + (v.entered_s * 1000).toFixed(1) + " ms"),
      h("dt", {}, "Duration"), h("dd", { "data-inspector-duration": "true" }, fmtDuration(v.duration_ms) + (v.unfinished ? " (did not finish)" : "")));
    if (v.iteration !== null && v.iteration !== undefined) facts.append(h("dt", {}, "Map iteration"), h("dd", {}, v.map + " #" + v.iteration));
    left.appendChild(facts);
    if (v.error || v.cause) {
      left.appendChild(h("div", { class: "failure", "data-inspector-error": "true" },
        v.error ? h("div", {}, h("span", { class: "k" }, "Error "), h("code", {}, v.error)) : null,
        v.cause ? h("div", {}, h("span", { class: "k" }, "Cause "), h("code", { class: "cause" }, v.cause)) : null));
    }
    if (v.input || v.output) {
      const io = h("div", { class: "io" });
      io.appendChild(h("div", {}, h("div", { class: "k" }, "Input"), h("pre", { "data-inspector-input": "true" }, v.input ? pretty(v.input.text) : "–")));
      io.appendChild(h("div", {}, h("div", { class: "k" }, "Output"), h("pre", { "data-inspector-output": "true" }, v.output ? pretty(v.output.text) : "–")));
      left.appendChild(io);
    } else if (d.trace) {
      left.appendChild(h("p", { class: "muted small" }, "No input or output: the machine's logging is OFF."));
    } else if (!d.execution_data) {
      left.appendChild(h("p", { class: "muted small" }, "Input and output are shown when the machine's logging includes execution data."));
    }
    const byId = new Map((d.events || []).map((e) => [e.id, e]));
    const events = v.events.map((i) => byId.get(i)).filter(Boolean);
    if (events.length) {
      left.appendChild(h("div", { class: "k" }, "Events"));
      left.appendChild(eventsTable(d, events));
    }
  }

  /* A Map's iterations or a Parallel's branches in the selected execution, to pick from */
  function compoundSummary(n, d) {
    const inner = state.machine.graph.nodes.filter((x) => x.kind === "state" && x.id.startsWith(n.id + "/"));
    const wrap = h("div", { class: "compound-summary" });
    if (n.type === "Parallel") {
      const branches = state.machine.graph.nodes.filter((x) => x.kind === "group" && x.parent === n.id);
      wrap.appendChild(h("div", { class: "k" }, "Branches"));
      wrap.appendChild(h("ul", { class: "branches" }, branches.map((b) => {
        const states = inner.filter((x) => x.id.startsWith(b.id + "/"));
        const entered = states.filter((x) => (d.states || {})[x.name]);
        const failed = entered.some((x) => d.states[x.name].some((v) => v.error));
        return h("li", { "data-branch": b.name, class: failed ? "bad" : "" }, b.name + ": ",
          entered.length ? entered.map((x, i) => [i ? " → " : "", h("button", { class: "link", onclick: () => inspect(x.id) }, x.name)]) : h("span", { class: "muted" }, "not run"));
      })));
    } else if (n.type === "Map") {
      const byIteration = new Map();
      for (const x of inner) {
        for (const v of (d.states || {})[x.name] || []) {
          if (v.map !== n.name || v.iteration === null || v.iteration === undefined) continue;
          if (!byIteration.has(v.iteration)) byIteration.set(v.iteration, []);
          byIteration.get(v.iteration).push([x, v]);
        }
      }
      const keys = [...byIteration.keys()].sort((a, b) => a - b);
      wrap.appendChild(h("div", { class: "k" }, "Iterations (" + keys.length + ")"));
      if (!keys.length) { wrap.appendChild(h("p", { class: "muted small" }, "No iteration recorded.")); return wrap; }
      let pick = state.visitPick["#" + n.name] ?? keys[0];
      if (!byIteration.has(pick)) pick = keys[0];
      wrap.appendChild(h("select", { id: "inspector-iteration", onchange: (e) => { state.visitPick["#" + n.name] = Number(e.target.value); renderInspector(); } },
        keys.map((k) => h("option", { value: k, selected: k === pick }, "Iteration " + k + (byIteration.get(k).some(([, v]) => v.error) ? " (failed)" : "")))));
      wrap.appendChild(h("ul", { class: "branches", "data-iteration": pick }, byIteration.get(pick).map(([x, v]) => h("li", { class: v.error ? "bad" : "" },
        h("button", { class: "link", onclick: () => { state.visitPick[x.name] = d.states[x.name].indexOf(v); inspect(x.id); } }, x.name),
        " " + fmtDuration(v.duration_ms) + (v.error ? " · " + v.error : "")))));
    }
    return wrap;
  }

  // ------------------------------------------------------------------ start an execution, definition
  function togglePanel(which) {
    const start = document.getElementById("start-panel"), def = document.getElementById("definition-panel");
    const target = which === "start" ? start : def, other = which === "start" ? def : start;
    other.classList.add("hidden");
    if (!target.classList.contains("hidden")) { target.classList.add("hidden"); return; }
    target.classList.remove("hidden");
    if (which === "start") renderStart(target); else renderDefinition(target);
  }

  function renderDefinition(box) {
    const m = state.machine;
    box.textContent = "";
    box.appendChild(h("div", { class: "panel-title" }, "Definition",
      h("span", { class: "muted small" }, Object.keys(m.definition.States || {}).length + " top-level states"),
      h("button", { class: "close", title: "close", onclick: () => box.classList.add("hidden") }, "×")));
    box.appendChild(h("pre", { class: "definition-text", id: "definition-text" }, pretty(m.definition_text || JSON.stringify(m.definition))));
  }

  function renderStart(box) {
    const name = state.machine.name;
    box.textContent = "";
    const input = h("textarea", { id: "start-input", spellcheck: "false", "aria-label": "Execution input (JSON)", rows: 8 });
    input.value = state.startInput[name] ?? "{\n  \n}";
    const verdict = h("span", { id: "start-verdict", class: "small" });
    const check = () => {
      state.startInput[name] = input.value;
      try { if (input.value.trim()) JSON.parse(input.value); verdict.textContent = "✓ valid JSON"; verdict.className = "small ok"; return true; }
      catch (e) { verdict.textContent = "✕ " + e.message; verdict.className = "small bad"; return false; }
    };
    input.addEventListener("input", check);
    const execName = h("input", { id: "start-name", placeholder: "name (optional)", maxlength: 80 });
    const result = h("div", { id: "start-result" });
    const run = h("button", { class: "action primary", id: "start-run", onclick: async () => {
      if (!check()) return;
      run.disabled = true;
      result.textContent = "Running…";
      let r;
      try {
        r = await api("machines/" + encodeURIComponent(name) + "/executions", { method: "POST",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ input: input.value, name: execName.value.trim() || undefined }) });
      } catch (err) {
        result.textContent = "";
        result.appendChild(h("p", { class: "error", "data-start-error": "true" }, err.message));
        return;
      } finally { run.disabled = false; }
      result.textContent = "";
      result.setAttribute("data-status", r.status);
      result.appendChild(h("div", { class: "start-outcome" }, badge(r.status), " ", h("span", { class: "mono" }, r.name),
        " · " + fmtDuration(r.duration_ms) + " · " + r.state_transitions + " transitions",
        r.id ? [" · ", h("a", { id: "start-show", href: "#/machines/" + encodeURIComponent(name) + "/executions/" + r.id }, "show on the graph")] : null));
      if (r.error || r.cause) {
        result.appendChild(h("div", { class: "failure" },
          r.error ? h("div", {}, h("span", { class: "k" }, "Error "), h("code", { "data-start-error-name": "true" }, r.error)) : null,
          r.cause ? h("div", {}, h("span", { class: "k" }, "Cause "), h("code", { class: "cause" }, r.cause)) : null));
      }
      if (r.output) result.appendChild(h("div", {}, h("div", { class: "k" }, "Output"), h("pre", { id: "start-output" }, pretty(r.output.text))));
      loadExecutions();
    } }, "Start");
    box.appendChild(h("div", { class: "panel-title" }, "Start an execution of ", h("span", { class: "mono" }, name),
      h("button", { class: "close", title: "close", onclick: () => box.classList.add("hidden") }, "×")));
    box.appendChild(h("div", { class: "start-body" },
      h("div", { class: "start-editor" }, h("div", { class: "k" }, "Input (JSON) ", verdict), input,
        h("div", { class: "start-row" }, execName, run)),
      result));
    check();
    input.focus();
  }

  // ------------------------------------------------------------------ validator
  function showValidate() {
    const main = document.getElementById("main");
    main.textContent = "";
    const initial = state.machine ? JSON.stringify(state.machine.definition, null, 2) : JSON.stringify(SAMPLE, null, 2);
    const area = h("textarea", { id: "definition", spellcheck: "false", "aria-label": "State machine definition" });
    area.value = initial;
    area.addEventListener("input", () => {
      clearTimeout(state.validateTimer);
      document.getElementById("verdict").textContent = "…";
      state.validateTimer = setTimeout(validateNow, VALIDATE_DEBOUNCE_MS);
    });
    main.appendChild(h("section", { class: "validate" },
      h("h2", {}, "Validate a definition"),
      h("p", { class: "muted small" }, "Type or paste Amazon States Language: problems appear with their JSON pointers, and the graph as far as it can be drawn."),
      h("div", { class: "validate-body" },
        h("div", { class: "editor" }, area),
        h("div", { class: "results" },
          h("div", { class: "panel" }, h("div", { class: "panel-title" }, "Problems ", h("span", { id: "verdict" })),
            h("ul", { id: "problems", class: "problems" })),
          h("div", { class: "panel" }, h("div", { class: "panel-title" }, "Graph"),
            h("div", { class: "graph-box", id: "vgraph" }))))));
    validateNow();
  }

  async function validateNow() {
    const area = document.getElementById("definition");
    if (!area) return;
    const seq = ++state.validateSeq;
    let result;
    try {
      result = await api("validate", { method: "POST", body: area.value, headers: { "Content-Type": "application/json" } });
    } catch (err) {
      return;
    }
    if (seq !== state.validateSeq) return; // a newer one is on its way
    const verdict = document.getElementById("verdict");
    verdict.textContent = result.valid ? "✓ valid" : result.problems.length + " problem" + (result.problems.length === 1 ? "" : "s");
    verdict.className = result.valid ? "ok" : "bad";
    verdict.setAttribute("data-valid", String(result.valid));
    const ul = document.getElementById("problems");
    ul.textContent = "";
    for (const p of result.problems) {
      ul.appendChild(h("li", { class: "problem", "data-pointer": p.pointer, "data-code": p.code,
        onclick: () => selectProblem(p) },
        h("code", { class: "pointer" }, p.pointer || "/"),
        h("span", { class: "code" }, p.code),
        h("div", { class: "message" }, p.message + (p.line ? " (line " + p.line + ", column " + p.column + ")" : ""))));
    }
    const box = document.getElementById("vgraph");
    if (result.graph && result.graph.nodes.length) {
      try {
        state.vgraph = await ExpressGraph.render(box, result.graph, { name: "definition", idSuffix: "-v" });
        if (seq !== state.validateSeq) return;
        for (const p of result.problems) {
          const g = p.node && state.vgraph.nodes.get(p.node);
          if (g) g.classList.add("problem");
        }
        box.setAttribute("data-ready", "true");
      } catch (err) {
        box.textContent = "Cannot lay out the graph: " + err;
      }
    } else {
      state.vgraph = null;
      box.textContent = "";
      box.appendChild(h("p", { class: "muted" }, "No graph: the definition needs a States object."));
    }
  }

  function selectProblem(p) {
    if (!state.vgraph) return;
    for (const g of state.vgraph.nodes.values()) g.classList.remove("selected");
    const g = p.node && state.vgraph.nodes.get(p.node);
    if (g) { g.classList.add("selected"); g.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  }

  // ------------------------------------------------------------------ login
  // The console's own token (never the API's secret key); the server answers with an HttpOnly
  // session cookie, so the token is not kept by the page.
  function showLogin() {
    if (document.getElementById("login")) return;
    const input = h("input", { id: "login-token", type: "password", autocomplete: "current-password",
      placeholder: "console token", required: true });
    const error = h("p", { id: "login-error", class: "error small" });
    const form = h("form", { class: "login-box", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      let r;
      try {
        r = await fetch(API + "login", { method: "POST", cache: "no-store", credentials: "same-origin",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: input.value }) });
      } catch (err) {
        error.textContent = "Cannot reach the server.";
        return;
      }
      if (!r.ok) { error.textContent = "Wrong token."; input.select(); return; }
      document.getElementById("login").remove();
      await restart();
    } },
      h("h2", {}, "Sign in"),
      h("p", { class: "muted small" }, "This server requires the console token: see its start-up log, or [console] token in its configuration."),
      input, h("button", { id: "login-submit", type: "submit" }, "Sign in"), error);
    document.body.appendChild(h("div", { id: "login", class: "login" }, form));
    input.focus();
  }

  async function restart() {
    try { await loadMachines(); } catch (err) { /* connection indicator */ }
    await loadStats();
    state.route = null;
    await route();
  }

  // ------------------------------------------------------------------ start
  async function start() {
    try { await loadMachines(); } catch (err) { /* connection indicator */ }
    await loadStats();
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) { loadStats(); loadExecutions(); } });
    await route();
    setInterval(() => { if (!document.hidden) loadMachines().catch(() => {}); }, 10000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
