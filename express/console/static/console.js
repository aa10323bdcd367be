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
    filter: "all", timers: [], validateTimer: null, validateSeq: 0, recording: true, metrics: false,
  };

  // ------------------------------------------------------------------ helpers
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
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
            h("span", { title: "p99 duration (recent, else since start)" },
              "p99 " + fmtSeconds(s.recent_p99_s ?? s.p99_s)))));
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
            m.logging.includeExecutionData ? " with execution data" : "")),
        h("div", { class: "counters", id: "counters" })),
      h("div", { class: "machine-body" },
        h("div", { class: "left" },
          h("div", { class: "panel" }, h("div", { class: "panel-title" }, "Graph",
            h("span", { class: "legend" },
              h("span", { class: "lg visited" }, "path taken"), h("span", { class: "lg failed" }, "failed"),
              h("span", { class: "lg catch" }, "catch"))), graphBox),
          h("div", { class: "panel", id: "detail" })),
        h("div", { class: "right" },
          h("div", { class: "panel" },
            h("div", { class: "panel-title" }, "Recent executions",
              h("span", { class: "filters" },
                h("button", { class: "filter" + (state.filter === "all" ? " on" : ""), "data-filter": "all", onclick: () => setFilter("all") }, "All"),
                h("button", { class: "filter" + (state.filter === "failed" ? " on" : ""), "data-filter": "failed", onclick: () => setFilter("failed") }, "Failed"))),
            h("ul", { class: "executions", id: "executions" }))))));
    renderCounters();
    try {
      state.graph = await ExpressGraph.render(graphBox, m.graph, { name: name });
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
    box.appendChild(item("p99 duration", fmtSeconds(s.recent_p99_s ?? s.p99_s)));
    box.appendChild(item("executions", s.executions === undefined ? "–" : String(s.executions)));
  }

  function setFilter(f) {
    state.filter = f;
    for (const b of document.querySelectorAll("button.filter")) b.classList.toggle("on", b.dataset.filter === f);
    renderExecutions();
  }

  async function loadExecutions() {
    if (!state.route || state.route.view !== "machine") return;
    try {
      const data = await api("machines/" + encodeURIComponent(state.route.machine) + "/executions");
      state.executions = data.executions;
      state.recording = data.recording;
      renderExecutions();
    } catch (err) { /* connection indicator */ }
  }

  function renderExecutions() {
    const ul = document.getElementById("executions");
    if (!ul) return;
    ul.textContent = "";
    const shown = state.executions.filter((e) => state.filter === "all" || e.status !== "SUCCEEDED");
    if (!state.recording) ul.appendChild(h("li", { class: "muted" }, "This server does not record executions."));
    else if (!shown.length) ul.appendChild(h("li", { class: "muted empty" }, "No executions yet."));
    for (const e of shown) {
      const selected = state.selected && state.selected.id === e.id;
      ul.appendChild(h("li", { class: "execution" + (selected ? " selected" : ""), "data-execution": e.id,
        "data-status": e.status, onclick: () => { location.hash = "#/machines/" + encodeURIComponent(state.route.machine) + "/executions/" + e.id; } },
        badge(e.status),
        h("span", { class: "e-name", title: e.name }, e.name),
        h("span", { class: "e-dur" }, fmtDuration(e.duration_ms)),
        h("span", { class: "e-time muted" }, fmtTime(e.start_time)),
        e.error ? h("div", { class: "e-error" }, e.error) : null));
    }
  }

  async function selectExecution(id) {
    if (!id) { state.selected = null; if (state.graph) ExpressGraph.clear(state.graph); renderDetail(null); renderExecutions(); return; }
    let detail;
    try {
      detail = await api("machines/" + encodeURIComponent(state.route.machine) + "/executions/" + id);
    } catch (err) {
      renderDetail(null, "Execution " + id + " is not kept any more.");
      return;
    }
    state.selected = detail;
    if (state.graph) ExpressGraph.highlight(state.graph, detail);
    renderDetail(detail);
    renderExecutions();
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
      h("dt", {}, "Started"), h("dd", {}, fmtTime(d.start_time)),
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
    if (!d.history) {
      box.appendChild(h("p", { class: "muted small" },
        "No event history: the machine's logging level is OFF (set it to ALL, ERROR or FATAL to see the path on the graph)."));
    }
    if (d.execution_data) {
      const io = h("div", { class: "io" });
      if (d.input) io.appendChild(h("div", {}, h("div", { class: "k" }, "Input"), h("pre", {}, pretty(d.input.text))));
      if (d.output) io.appendChild(h("div", {}, h("div", { class: "k" }, "Output"), h("pre", {}, pretty(d.output.text))));
      box.appendChild(io);
    } else if (d.history) {
      box.appendChild(h("p", { class: "muted small" }, "Input and output are shown when the machine's logging includes execution data."));
    }
    if (d.events && d.events.length) {
      const t0 = d.events[0].timestamp;
      box.appendChild(h("table", { class: "table events" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Type"), h("th", {}, "State"), h("th", {}, "+ms"), h("th", {}, "Details"))),
        h("tbody", {}, d.events.map((ev) => h("tr", { class: /Failed|TimedOut|Aborted/.test(ev.type) ? "bad" : "", "data-event": ev.type },
          h("td", {}, ev.id), h("td", {}, ev.type), h("td", {}, ev.details.name || ""),
          h("td", {}, ((ev.timestamp - t0) * 1000).toFixed(1)),
          h("td", { class: "small" }, eventDetails(ev.details)))))));
      if (d.events_truncated) box.appendChild(h("p", { class: "muted small" }, "(more events not shown)"));
    }
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function eventDetails(details) {
    const parts = [];
    for (const [k, v] of Object.entries(details)) {
      if (k === "name") continue;
      const text = v && typeof v === "object" ? v.text : String(v);
      parts.push(k + ": " + (text.length > 120 ? text.slice(0, 119) + "…" : text));
    }
    return parts.join("  ·  ");
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
