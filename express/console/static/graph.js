/* Graph of a state machine: the server's graph model (express/console/graph.py) laid out with
   ELK (vendor/elk.bundled.js, layered algorithm, nested groups laid out with their parents) and
   drawn as SVG. Every drawn element carries data attributes (data-node, data-kind,
   data-state-type, data-state-name, data-edge, data-edge-kind) for tests and highlighting. */
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const FONT = "13px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const SMALL_FONT = "10px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const TITLE_FONT = "600 12.5px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const GROUP_FONT = "11.5px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const LABEL_FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  let elk = null;
  let measureCtx = null;

  function textWidth(text, font) {
    if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
    measureCtx.font = font;
    return Math.ceil(measureCtx.measureText(text).width);
  }

  /* text, shortened with an ellipsis to fit in `room` pixels */
  function fit(text, font, room) {
    if (textWidth(text, font) <= room) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (textWidth(text.slice(0, mid) + "…", font) <= room) lo = mid; else hi = mid - 1;
    }
    return lo > 0 ? text.slice(0, lo) + "…" : "…";
  }

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  function toElk(model) {
    const byId = new Map();
    const root = {
      id: "__root",
      layoutOptions: {
        "elk.algorithm": "layered",
        "elk.direction": "DOWN",
        "elk.hierarchyHandling": "INCLUDE_CHILDREN",
        "elk.json.shapeCoords": "ROOT",
        "elk.json.edgeCoords": "ROOT",
        "elk.edgeRouting": "ORTHOGONAL",
        "elk.layered.spacing.nodeNodeBetweenLayers": "34",
        "elk.spacing.nodeNode": "26",
        "elk.spacing.edgeNode": "14",
        "elk.spacing.edgeEdge": "10",
        "elk.spacing.edgeLabel": "4",
        "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
        "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
        "elk.padding": "[top=16,left=16,bottom=16,right=16]",
      },
      children: [],
      edges: [],
    };
    byId.set(null, root);
    for (const n of model.nodes) {
      const node = { id: n.id, children: [], edges: [], layoutOptions: {} };
      if (n.kind === "terminal") {
        node.width = 64; node.height = 28;
      } else if (n.kind === "group" || n.compound) {
        // (with INCLUDE_CHILDREN, ELK sizes containers by their content: titles are clipped to fit)
        node.layoutOptions["elk.padding"] = "[top=34,left=14,bottom=14,right=14]";
      } else {
        const w = Math.max(textWidth(n.name, FONT), textWidth(n.type.toUpperCase(), SMALL_FONT));
        node.width = Math.max(96, w + 34); node.height = 44;
      }
      byId.set(n.id, node);
    }
    for (const n of model.nodes) {
      const parent = byId.get(n.parent === undefined ? null : n.parent) || root;
      parent.children.push(byId.get(n.id));
    }
    const parentOf = new Map(model.nodes.map((n) => [n.id, n.parent]));
    for (const e of model.edges) {
      const edge = { id: e.id, sources: [e.source], targets: [e.target] };
      if (e.label) {
        edge.labels = [{ id: e.id + "_l", text: e.label, width: textWidth(e.label, LABEL_FONT) + 8, height: 16 }];
      }
      const container = byId.get(parentOf.get(e.source) ?? null) || root;
      container.edges.push(edge);
    }
    return root;
  }

  function collect(node, out) {
    for (const c of node.children || []) { out.nodes.set(c.id, c); collect(c, out); }
    for (const e of node.edges || []) out.edges.set(e.id, e);
    return out;
  }

  /* Lays out and draws `model` into `container` (emptied first). Resolves to a handle with the
     SVG element, the node elements by id and by state name, and the edge elements. */
  async function render(container, model, options) {
    options = options || {};
    if (!elk) elk = new ELK();
    const laid = await elk.layout(toElk(model));
    const geo = collect(laid, { nodes: new Map(), edges: new Map() });
    container.textContent = "";
    const width = Math.ceil(laid.width || 0), height = Math.ceil(laid.height || 0);
    const svg = el("svg", {
      class: "graph", width: width, height: height, viewBox: "0 0 " + width + " " + height,
      "data-graph": options.name || "", role: "img",
      "aria-label": "State machine graph" + (options.name ? " of " + options.name : ""),
    });
    const defs = el("defs", {}, svg);
    for (const kind of ["next", "catch", "taken"]) {
      const m = el("marker", { id: "arrow-" + kind + (options.idSuffix || ""), viewBox: "0 0 10 10", refX: 9, refY: 5,
        markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse", class: "marker-" + kind }, defs);
      el("path", { d: "M 0 0 L 10 5 L 0 10 z" }, m);
    }
    const layers = { groups: el("g", { class: "layer-groups" }, svg), edges: el("g", { class: "layer-edges" }, svg),
      nodes: el("g", { class: "layer-nodes" }, svg), labels: el("g", { class: "layer-labels" }, svg) };
    const handle = { svg, suffix: options.idSuffix || "", nodes: new Map(), byName: new Map(), edges: new Map(), model, callouts: el("g", { class: "layer-callouts" }, svg) };

    // containers first, outermost first (model order has parents before children)
    for (const n of model.nodes) {
      const g = geo.nodes.get(n.id);
      if (!g) continue;
      const attrs = { "data-node": n.id, "data-kind": n.kind, "data-state-type": n.type, "data-state-name": n.name };
      let group;
      if (n.kind === "group" || n.compound) {
        group = el("g", Object.assign({ class: "node container " + (n.kind === "group" ? "group" : "state compound type-" + n.type) }, attrs), layers.groups);
        if (n.compound) group.setAttribute("data-compound", "true");
        el("rect", { x: g.x, y: g.y, width: g.width, height: g.height, rx: n.kind === "group" ? 6 : 10 }, group);
        const t = el("text", { x: g.x + 12, y: g.y + 21, class: "title" }, group);
        const room = g.width - 24;
        if (n.kind === "group") {
          t.textContent = fit(n.name, GROUP_FONT, room);
        } else {
          const type = n.type.toUpperCase() + "  ";
          const ty = el("tspan", { class: "type" }, t); ty.textContent = type;
          const nm = el("tspan", { class: "name" }, t);
          nm.textContent = fit(n.name, TITLE_FONT, room - textWidth(type, SMALL_FONT));
        }
      } else if (n.kind === "terminal") {
        group = el("g", Object.assign({ class: "node terminal" }, attrs), layers.nodes);
        el("rect", { x: g.x, y: g.y, width: g.width, height: g.height, rx: g.height / 2 }, group);
        const t = el("text", { x: g.x + g.width / 2, y: g.y + g.height / 2 + 4, "text-anchor": "middle" }, group);
        t.textContent = n.name;
      } else {
        group = el("g", Object.assign({ class: "node state leaf type-" + n.type.replace(/[^A-Za-z?]/g, "") }, attrs), layers.nodes);
        el("rect", { x: g.x, y: g.y, width: g.width, height: g.height, rx: n.type === "Choice" ? 14 : 6 }, group);
        el("rect", { x: g.x, y: g.y, width: 5, height: g.height, rx: 2, class: "stripe" }, group);
        const ty = el("text", { x: g.x + g.width / 2, y: g.y + 15, "text-anchor": "middle", class: "type" }, group);
        ty.textContent = n.type.toUpperCase();
        const nm = el("text", { x: g.x + g.width / 2, y: g.y + 33, "text-anchor": "middle", class: "name" }, group);
        nm.textContent = n.name;
      }
      if (n.start && n.parent) group.classList.add("start");
      const tip = el("title", {}, group);
      tip.textContent = n.type + ": " + n.name + (n.resource ? "\n" + n.resource : "") + (n.comment ? "\n" + n.comment : "");
      handle.nodes.set(n.id, group);
      if (n.kind === "state" && options.onSelect) {
        // the inspector: a click on a state (a compound state's title area included) selects it
        group.classList.add("selectable");
        group.addEventListener("click", (ev) => {
          if (ev.target.closest(".node.selectable") !== group) return; // the innermost state only
          ev.stopPropagation();
          options.onSelect(n);
        });
      }
      if (n.kind === "state") {
        if (!handle.byName.has(n.name)) handle.byName.set(n.name, []);
        handle.byName.get(n.name).push(group);
      }
      group.__geo = g;
    }
    for (const e of model.edges) {
      const g = geo.edges.get(e.id);
      if (!g || !g.sections || !g.sections.length) continue;
      const grp = el("g", { class: "edge kind-" + e.kind, "data-edge": e.id, "data-edge-kind": e.kind,
        "data-source": e.source, "data-target": e.target }, layers.edges);
      let d = "";
      for (const s of g.sections) {
        d += "M" + s.startPoint.x + " " + s.startPoint.y;
        for (const b of s.bendPoints || []) d += " L" + b.x + " " + b.y;
        d += " L" + s.endPoint.x + " " + s.endPoint.y + " ";
      }
      const marker = "url(#arrow-" + (e.kind === "catch" ? "catch" : "next") + (options.idSuffix || "") + ")";
      el("path", { d: d.trim(), "marker-end": marker }, grp);
      for (const l of g.labels || []) {
        const lg = el("g", { class: "edge-label kind-" + e.kind, "data-edge-label": e.id }, layers.labels);
        el("rect", { x: l.x, y: l.y, width: l.width, height: l.height, rx: 3 }, lg);
        const t = el("text", { x: l.x + l.width / 2, y: l.y + 12, "text-anchor": "middle" }, lg);
        t.textContent = l.text;
      }
      const tip = el("title", {}, grp);
      tip.textContent = e.kind + (e.label ? ": " + e.label : "");
      handle.edges.set(e.id, grp);
    }
    // never shrink below a readable size: scroll instead (a narrow window, a wide graph)
    svg.style.minWidth = Math.min(width, 520) + "px";
    container.appendChild(svg);
    return handle;
  }

  /* Marks an execution on a drawn graph: the states it entered, the edges it took, the state it
     failed in (with its error and cause) and the states it left unfinished. */
  function highlight(handle, execution) {
    clear(handle);
    if (!execution) return;
    const visited = new Set(execution.path || []);
    const nodeName = new Map(handle.model.nodes.map((n) => [n.id, n]));
    const isVisited = (id) => {
      const n = nodeName.get(id);
      if (!n) return false;
      // End only with a known path: without history or trace, nothing is known to have run
      if (n.kind === "terminal") return visited.size > 0 && (n.type === "Start" || execution.status === "SUCCEEDED");
      return visited.has(n.name);
    };
    handle.svg.classList.add("has-execution");
    for (const [id, g] of handle.nodes) {
      if (isVisited(id)) g.classList.add("visited");
    }
    for (const e of handle.model.edges) {
      const g = handle.edges.get(e.id);
      if (!g) continue;
      let taken = isVisited(e.source) && isVisited(e.target);
      if (e.target === "end") taken = isVisited(e.source) && execution.status === "SUCCEEDED";
      if (taken) {
        g.classList.add("taken");
        g.querySelector("path").setAttribute("marker-end", "url(#arrow-taken" + (handle.suffix || "") + ")");
      }
    }
    for (const name of execution.open_states || []) {
      for (const g of handle.byName.get(name) || []) g.classList.add("aborted");
    }
    if (execution.failed_state) {
      for (const g of handle.byName.get(execution.failed_state) || []) {
        g.classList.add("failed");
        g.setAttribute("data-failed", "true");
        callout(handle, g, execution);
      }
    }
  }

  function callout(handle, node, execution) {
    const geo = node.__geo;
    const text = (execution.error || execution.status) + (execution.cause ? ": " + execution.cause : "");
    const shown = fit("✕ " + (execution.error || execution.status.replace("_", " ")), LABEL_FONT, 220);
    const w = textWidth(shown, LABEL_FONT) + 14;
    const x = geo.x + geo.width + 8, y = geo.y + 4;
    const g = el("g", { class: "callout", "data-callout": execution.failed_state }, handle.callouts);
    el("rect", { x: x, y: y, width: w, height: 20, rx: 4 }, g);
    const t = el("text", { x: x + 7, y: y + 14 }, g);
    t.textContent = shown;
    const tip = el("title", {}, g);
    tip.textContent = text;
    // grow the drawing if the callout sticks out
    const right = Math.ceil(x + w + 8);
    const vb = handle.svg.viewBox.baseVal;
    if (right > vb.width) {
      handle.svg.setAttribute("viewBox", "0 0 " + right + " " + vb.height);
      handle.svg.setAttribute("width", right);
    }
  }

  function clear(handle) {
    handle.svg.classList.remove("has-execution");
    for (const g of handle.nodes.values()) {
      g.classList.remove("visited", "failed", "aborted", "problem", "selected");
      g.removeAttribute("data-failed");
    }
    for (const g of handle.edges.values()) {
      g.classList.remove("taken");
      const kind = g.getAttribute("data-edge-kind");
      g.querySelector("path").setAttribute("marker-end", "url(#arrow-" + (kind === "catch" ? "catch" : "next") + (handle.suffix || "") + ")");
    }
    handle.callouts.textContent = "";
  }

  /* Marks one node as the inspected one (id null: none). */
  function select(handle, id) {
    for (const g of handle.nodes.values()) g.classList.remove("inspected");
    const g = id && handle.nodes.get(id);
    if (g) g.classList.add("inspected");
  }

  window.ExpressGraph = { render, highlight, clear, select };
})();
