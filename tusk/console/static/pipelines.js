// One pipeline: state and actions, spec (rendered and raw), versions with what changed,
// workers, and its jobs with progress.
import { api, get, post } from "./api.js";
import { action, current, every } from "./shell.js";
import { badge, bytes, h, link, pager, progress, seconds, short, table, when } from "./util.js";

const enc = encodeURIComponent;

export function jobRows(items) {
  return items.map((j) => [
    link(`#/job/${enc(j.pipeline)}/${enc(j.id)}`, short(j.id), { class: "mono", "data-job": j.id }),
    j.pipeline, `v${j.version}`, badge(j.state), progress(j),
    `${bytes(j.bytes_down)} / ${bytes(j.bytes_up)}`,
    seconds(j.duration_seconds ?? (j.started ? Date.now() / 1000 - j.started : null)),
    when(j.created),
  ]);
}
export const JOB_HEADERS = ["Job", "Pipeline", "Ver.", "State", "Progress", "DL / UL", "Duration",
  "Created"];

export function pipelineView(main, [name]) {
  const head = h("div", { class: "card", id: "pipeline-head" });
  const specBox = h("div", { class: "card", id: "spec" });
  const versions = h("div", { class: "card", id: "versions" });
  const workers = h("div", { class: "card", id: "workers" });
  const jobsBox = h("div", { class: "card", id: "jobs" });
  const update = h("div", { class: "card", id: "update" });
  main.append(h("h1", {}, "Pipeline ", h("span", { class: "mono", text: name })), head, jobsBox,
    h("div", { class: "grid" }, specBox, versions), workers, update);
  let jobOffset = 0;
  let specShown = "";
  let mode = "rendered";
  const live = current();
  const loadJobs = async () => {
    const pg = await get(api("jobs"), { pipeline: name, limit: 20, offset: jobOffset });
    if (!live()) return;
    jobsBox.replaceChildren(h("h2", { text: "Jobs" }), table(JOB_HEADERS, jobRows(pg.items)),
      pager(pg, (o) => { jobOffset = o; loadJobs(); }));
  };
  const showSpec = (d) => {
    const tabs = h("div", { class: "tabs" }, ["rendered", "raw"].map((m) => h("button", {
      class: m === mode ? "active" : "secondary", type: "button",
      onclick: () => { mode = m; showSpec(d); } }, m)));
    specBox.replaceChildren(h("h2", { text: "Spec" }), tabs,
      mode === "raw" ? h("pre", { id: "raw-spec", text: d.raw_spec }) : rendered(d.pipeline));
  };
  every(2000, async () => {
    const d = await get(api(`pipelines/${name}`));
    if (!live()) return;
    const p = d.pipeline;
    head.replaceChildren(h("div", { class: "row" }, badge(p.stopped ? "paused" : p.state),
      h("span", { text: `version ${p.version}` }), h("span", { class: "muted", text: p.input_summary }),
      link(`#/repo/${enc(name)}`, "output repo"),
      p.stopped
        ? h("button", { id: "start-pipeline", onclick: action(() => post(api(`pipelines/${name}/start`)), "started") }, "Start")
        : h("button", { id: "stop-pipeline", class: "danger", onclick: action(() => post(api(`pipelines/${name}/stop`)), "stopped") }, "Stop")),
    p.reason ? h("div", { class: "reason", text: p.reason }) : "",
    p.warnings.length ? h("ul", { class: "muted" }, p.warnings.map((w) => h("li", { text: w }))) : "",
    h("div", { class: "muted", text: Object.entries(p.job_counts).map(([k, v]) => `${k}: ${v}`).join(" · ") }));
    if (d.raw_spec !== specShown) {
      specShown = d.raw_spec;
      showSpec(d);
      update.replaceChildren(updateForm(name, d.raw_spec));
    }
    versions.replaceChildren(h("h2", { text: "Versions" }), table(["Version", "Created", "What changed"],
      d.versions.map((v) => [`v${v.version}`, when(v.created),
        h("ul", { class: "plain" }, v.changes.map((c) => h("li", { class: "mono", text: c })))])));
    workers.replaceChildren(h("h2", { text: `Workers (${d.workers.length})` }),
      table(["Name", "Version", "State", "Restarts", "Age"], d.workers.map((w) => [
        h("span", { class: "mono", text: w.name }), `v${w.version}`, badge(w.state), w.restarts,
        seconds(w.age_seconds)])));
    await loadJobs();
  });
}

function rendered(p) {
  const s = p.spec;
  const t = s.transform || {};
  const rows = [
    ["image", t.image || "—"],
    ["cmd", h("code", { text: (t.cmd || []).join(" ") })],
    ["stdin", t.stdin ? h("pre", { text: t.stdin.join("\n") }) : "—"],
    ["input", h("pre", { text: JSON.stringify(s.input, null, 2) })],
    ["parallelism", JSON.stringify(s.parallelism_spec || s.parallelism || "default")],
    ["output branch", s.output_branch || "master"],
    ["datum tries", s.datum_tries ?? "default"],
    ["timeouts", `datum ${p.datum_timeout_seconds ?? "none"}, job ${p.job_timeout_seconds ?? "none"}`],
  ];
  if (s.description) rows.unshift(["description", s.description]);
  return h("div", { class: "kv" }, rows.flatMap(([k, v]) => [h("span", { text: k }), h("span", {}, v)]));
}

function updateForm(name, raw) {
  const spec = h("textarea", { name: "update-spec", spellcheck: "false" });
  spec.value = raw;
  const reprocess = h("input", { type: "checkbox", name: "reprocess" });
  const form = h("form", {}, h("h2", { text: "Update the pipeline" }), spec,
    h("div", { class: "row" }, h("label", {}, reprocess, " reprocess every datum"),
      h("button", { type: "submit" }, "Update")));
  form.addEventListener("submit", action(() => post(api("pipelines"),
    { spec: spec.value, update: true, reprocess: reprocess.checked }), `${name} updated`));
  return form;
}
