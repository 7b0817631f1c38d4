// The DAG: repos and pipelines as the server laid them out (grandalf), redrawn every 2 s;
// plus the forms that create a repo or a pipeline.
import { api, get, post } from "./api.js";
import { action, every } from "./shell.js";
import { badge, bytes, h, link } from "./util.js";

export function dagView(main) {
  const svgBox = h("div", { class: "card", id: "dag-card" }, h("h2", { text: "DAG" }),
    h("p", { class: "muted", text: "Loading…" }));
  const summary = h("div", { class: "card", id: "dag-list" });
  main.append(h("h1", { text: "Repos and pipelines" }), svgBox,
    h("div", { class: "grid" }, summary, createRepoForm(), createPipelineForm()));
  let last = "";
  every(2000, async () => {
    const dag = await get(api("dag"));
    const key = JSON.stringify(dag);
    if (key === last) return;
    last = key;
    svgBox.replaceChildren(h("h2", { text: "DAG" }), draw(dag));
    summary.replaceChildren(h("h2", { text: "States" }), list(dag));
    if (!performance.getEntriesByName("tusk-dag-drawn").length) performance.mark("tusk-dag-drawn");
  });
}

function href(node) {
  return node.kind === "pipeline" ? `#/pipeline/${encodeURIComponent(node.id)}`
    : `#/repo/${encodeURIComponent(node.id)}`;
}

function draw(dag) {
  if (!dag.nodes.length) {
    return h("p", { class: "muted", text: "No repos yet: create one below, or run " +
      "`tusk create-repo NAME`." });
  }
  const svg = h("svg", { class: "dag", viewBox: `0 0 ${dag.width} ${dag.height}`,
    width: dag.width, height: dag.height, role: "img", "aria-label": "DAG of repos and pipelines",
    preserveAspectRatio: "xMidYMin meet" });
  svg.style.maxWidth = `${dag.width}px`; // shrinks to a narrow screen, never grows past its size
  const defs = h("defs");
  const marker = h("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  h("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a94a6" }));
  defs.append(marker);
  svg.append(defs);
  const boxes = Object.fromEntries(dag.nodes.map((n) => [n.id, n]));
  for (const e of dag.edges) {
    // grandalf routes from centre to centre: end the line on the target box's top edge
    const pts = e.points.map(([x, y]) => [x, y]);
    const t = boxes[e.target];
    const s = boxes[e.source];
    if (pts.length >= 2 && t && s) {
      pts[0] = [pts[0][0], s.y + s.h];
      pts[pts.length - 1] = [pts[pts.length - 1][0], t.y];
    }
    svg.append(h("polyline", { class: "edge", points: pts.map((p) => p.join(",")).join(" "),
      "marker-end": "url(#arrow)", "data-edge": `${e.source}->${e.target}` }));
  }
  for (const n of dag.nodes) {
    const state = n.kind === "pipeline" ? n.state : "repo";
    const g = h("g", { class: `node ${n.kind} st-${state}`, "data-node": n.id, "data-kind": n.kind,
      "data-state": state, transform: `translate(${n.x},${n.y})`, tabindex: 0 });
    g.append(h("title", { text: `${n.kind} ${n.id}` }));
    g.append(h("rect", { width: n.w, height: n.h }));
    g.append(h("text", { class: "name", x: 10, y: 18, text: n.id }));
    let sub = bytes(n.size_bytes);
    if (n.kind === "pipeline") {
      const j = n.last_job;
      sub = `${n.stopped ? "stopped" : n.state}` +
        (j ? ` · job ${j.state} ${j.processed + j.skipped}/${j.total}` : " · no job yet");
    }
    g.append(h("text", { class: "sub", x: 10, y: 35, text: sub }));
    const go = () => { location.hash = href(n); };
    g.addEventListener("click", go);
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
    svg.append(g);
  }
  return h("div", { class: "scroll" }, svg);
}

function list(dag) {
  const items = dag.nodes.slice().sort((a, b) => a.id.localeCompare(b.id));
  return h("ul", { class: "plain" }, items.map((n) => h("li", {},
    link(href(n), n.id), " ",
    n.kind === "pipeline" ? [badge(n.stopped ? "paused" : n.state),
      n.last_job ? [" last job ", badge(n.last_job.state)] : null]
      : h("span", { class: "muted", text: `repo, ${bytes(n.size_bytes)}` }))));
}

function createRepoForm() {
  const name = h("input", { name: "repo-name", placeholder: "name", required: true });
  const description = h("input", { name: "repo-description", placeholder: "description" });
  const form = h("form", { class: "card", id: "create-repo" }, h("h2", { text: "Create a repo" }),
    h("div", { class: "row" }, name, description, h("button", { type: "submit" }, "Create")));
  form.addEventListener("submit", action(async () => {
    await post(api("repos"), { name: name.value.trim(), description: description.value });
    location.hash = `#/repo/${encodeURIComponent(name.value.trim())}`;
  }, "repo created"));
  return form;
}

function createPipelineForm() {
  const spec = h("textarea", { name: "spec", placeholder: '{"pipeline": {"name": "…"}, …}',
    spellcheck: "false" });
  const form = h("form", { class: "card", id: "create-pipeline" },
    h("h2", { text: "Create a pipeline" }),
    h("p", { class: "muted", text: "A spec in JSON or YAML, as for create-pipeline -f." }), spec,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Create pipeline")));
  form.addEventListener("submit", action(async () => {
    const out = await post(api("pipelines"), { spec: spec.value });
    const first = out.items[0];
    if (first) location.hash = `#/pipeline/${encodeURIComponent(first.name)}`;
  }, "pipeline created"));
  return form;
}
