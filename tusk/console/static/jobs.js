// Jobs and datums: the list of jobs, one job (progress, datums, logs followed live), one datum
// (inputs, failure, logs, restart) and a file's lineage (the datums and inputs that made it).
import { api, get, post } from "./api.js";
import { action, current, every, session } from "./shell.js";
import { JOB_HEADERS, jobRows } from "./pipelines.js";
import { commitHref, repoHref } from "./repos.js";
import { badge, bytes, h, link, pager, progress, qs, seconds, short, table, when } from "./util.js";

const enc = encodeURIComponent;
const MAX_LOG_LINES = 5000; // kept on the page; older ones are dropped

export function jobsView(main) {
  const box = h("div", { class: "card", id: "jobs" });
  main.append(h("h1", { text: "Jobs" }), box);
  let offset = 0;
  const load = async () => {
    const pg = await get(api("jobs"), { limit: 50, offset });
    box.replaceChildren(table(JOB_HEADERS, jobRows(pg.items)), pager(pg, (o) => { offset = o; load(); }));
  };
  every(2000, load);
}

// Follow the log lines of a job or datum: new ones are appended every 1.5 s.
function followLogs(box, params) {
  const pre = h("pre", { class: "logs", id: "logs" });
  const status = h("span", { class: "muted", text: "following…" });
  box.replaceChildren(h("h2", { text: params.datum ? "Logs of this datum" : "Logs of the job" }),
    h("div", { class: "row" }, status), pre);
  let after = 0;
  let count = 0;
  every(1500, async () => {
    for (let round = 0; round < 10; round += 1) {
      const out = await get(api("logs"), { ...params, after });
      after = out.after;
      if (out.lines.length) {
        const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(out.lines.map((l) => `${new Date(l.ts * 1000).toLocaleTimeString()} ` +
          `${l.datum_id ? short(l.datum_id) : "master"} ${l.message}\n`).join(""));
        count += out.lines.length;
        while (pre.childNodes.length > MAX_LOG_LINES / 100) pre.removeChild(pre.firstChild);
        if (stick) pre.scrollTop = pre.scrollHeight;
      }
      status.textContent = `${count} lines, following…`;
      if (!out.more) break;
    }
  });
}

export function jobView(main, [pipeline, id]) {
  const head = h("div", { class: "card", id: "job-head" });
  const datums = h("div", { class: "card", id: "datums" });
  const logs = h("div", { class: "card", id: "job-logs" });
  main.append(h("h1", {}, "Job ", h("span", { class: "mono", text: id }), " of ",
    link(`#/pipeline/${enc(pipeline)}`, pipeline)), head, datums, logs);
  let state = "";
  let offset = 0;
  const live = current();
  const loadDatums = async () => {
    const pg = await get(api(`jobs/${pipeline}/${id}/datums`), { state, limit: 50, offset });
    if (!live()) return;
    const filter = h("select", { name: "datum-state", onchange: (ev) => {
      state = ev.target.value; offset = 0; loadDatums();
    } }, h("option", { value: "", text: "every state" }),
    Object.entries(pg.counts).map(([k, v]) => h("option", { value: k, text: `${k} (${v})`,
      selected: k === state })));
    datums.replaceChildren(h("h2", { text: "Datums" }), h("div", { class: "row" }, filter),
      table(["Datum", "State", "Time", "Tries", "Inputs", "Failure"], pg.items.map((d) => [
        link(`#/datum/${enc(pipeline)}/${enc(id)}/${enc(d.id)}`, short(d.id),
          { class: "mono", "data-datum": d.id, "data-datum-state": d.state }),
        badge(d.state), seconds(d.seconds), d.tries,
        h("span", { class: "mono", text: d.inputs.map((i) => `${i.repo}:${i.path}`).join(", ") }),
        d.reason ? h("span", { class: "reason", text: d.reason }) : ""])),
      pager(pg, (o) => { offset = o; loadDatums(); }));
  };
  const first = every(2000, async () => {
    const datumsDrawn = loadDatums(); // at the same time as the job
    const { job: j } = await get(api(`jobs/${pipeline}/${id}`));
    if (!live()) return;
    const ended = ["success", "failure", "killed"].includes(j.state);
    head.replaceChildren(h("div", { class: "row" }, badge(j.state), h("span", { text: `v${j.version}` }),
      ended ? "" : h("button", { class: "danger", id: "stop-job",
        onclick: action(() => post(api(`jobs/${pipeline}/${id}/stop`)), "job stopped") }, "Stop job")),
    j.reason ? h("div", { class: "reason", id: "job-reason", text: j.reason }) : "",
    h("div", { class: "kv" },
      h("span", { text: "progress" }), progress(j),
      h("span", { text: "downloaded" }), h("span", { text: `${bytes(j.bytes_down)} in ${seconds(j.seconds_download)}` }),
      h("span", { text: "uploaded" }), h("span", { text: `${bytes(j.bytes_up)} in ${seconds(j.seconds_upload)}` }),
      h("span", { text: "processing" }), h("span", { text: seconds(j.seconds_process) }),
      h("span", { text: "duration" }), h("span", { text: j.duration_seconds !== null
        ? seconds(j.duration_seconds) : j.started ? `${seconds(Date.now() / 1000 - j.started)} so far` : "not started" }),
      h("span", { text: "created" }), h("span", { text: when(j.created) }),
      h("span", { text: "image" }), h("span", { class: "mono", text: `${j.image} ${j.runtime ? `(${j.runtime})` : ""}` }),
      h("span", { text: "inputs" }), h("ul", { class: "plain" }, j.inputs.filter((i) => i.repo !== "__spec__").map((i) =>
        h("li", {}, link(commitHref(i.repo, i.id), `${i.repo}@${short(i.id)}`, { class: "mono" }),
          i.branch ? h("span", { class: "muted", text: ` (${i.branch})` }) : "")) ),
      h("span", { text: "output" }), h("span", {}, j.output_commit
        ? link(commitHref(j.output_commit.repo, j.output_commit.id), `${j.output_commit.repo}@${short(j.output_commit.id)}`,
          { class: "mono", id: "output-commit" }) : "—"),
      h("span", { text: "global ID" }), link(`#/wave/${enc(j.id)}`, j.id, { class: "mono" })));
    await datumsDrawn;
  });
  // the log (up to 500 lines a call) once the job and its first datums are drawn
  first.then(() => { if (live()) followLogs(logs, { pipeline, job: id }); });
}

export function datumView(main, [pipeline, job, id]) {
  const head = h("div", { class: "card", id: "datum-head" });
  const logs = h("div", { class: "card", id: "datum-logs" });
  main.append(h("h1", {}, "Datum ", h("span", { class: "mono", text: short(id) }), " of job ",
    link(`#/job/${enc(pipeline)}/${enc(job)}`, short(job), { class: "mono" })), head, logs);
  const live = current();
  every(2000, async () => {
    const [{ datum: d }, { job: j }] = await Promise.all([
      get(api(`jobs/${pipeline}/${job}/datums/${id}`)), get(api(`jobs/${pipeline}/${job}`))]);
    if (!live()) return;
    const running = !["success", "failure", "killed"].includes(j.state);
    head.replaceChildren(h("div", { class: "row" }, badge(d.state), h("span", { class: "mono", text: d.id }),
      running && d.state === "running" ? h("button", { id: "restart-datum", onclick: action(() =>
        post(api(`jobs/${pipeline}/${job}/restart-datum`), { datum_id: d.id }), "datum restarted") }, "Restart datum") : ""),
    d.reason ? h("div", { class: "reason", id: "datum-reason", text: d.reason }) : "",
    h("div", { class: "kv" },
      h("span", { text: "tries" }), h("span", { id: "datum-tries", text: d.tries }),
      h("span", { text: "worker" }), h("span", { class: "mono", text: d.worker || "—" }),
      h("span", { text: "time" }), h("span", { text: `download ${seconds(d.seconds_download)}, process ${seconds(d.seconds)}, upload ${seconds(d.seconds_upload)}` }),
      h("span", { text: "moved" }), h("span", { text: `${bytes(d.bytes_down)} down, ${bytes(d.bytes_up)} up` })),
    h("h2", { text: "Input files" }),
    table(["Input", "Repo", "Commit", "Path", "Size"], d.inputs.map((i) => [i.name, i.repo,
      link(commitHref(i.repo, i.commit), short(i.commit), { class: "mono" }),
      link(repoHref(i.repo, { commit: i.commit, file: i.path, path: parent(i.path) }), i.path, { class: "mono" }),
      bytes(i.size)])));
  });
  followLogs(logs, { pipeline, job, datum: id });
}

function parent(path) {
  const i = path.replace(/\/$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export function lineageView(main, _args, params) {
  const repo = params.get("repo");
  const commit = params.get("commit");
  const path = params.get("path");
  const box = h("div", { class: "card", id: "lineage" });
  main.append(h("h1", {}, "Lineage of ", h("span", { class: "mono", text: `${repo}@${short(commit)}:${path}` })), box);
  if (!session.lineage_url) {
    box.append(h("p", { class: "muted", text: "This server has no lineage endpoint." }));
    return;
  }
  (async () => {
    const r = await fetch(session.lineage_url + qs({ repo, commit, path }), { credentials: "same-origin" });
    const l = await r.json();
    if (!r.ok) throw new Error(l.error ? l.error.message : r.statusText);
    if (!l.pipeline) {
      box.replaceChildren(h("p", { text: `${path} was put into ${repo} by a user: it has no datums.` }));
      return;
    }
    box.replaceChildren(h("div", { class: "kv" },
      h("span", { text: "pipeline" }), link(`#/pipeline/${enc(l.pipeline)}`, l.pipeline),
      h("span", { text: "job" }), l.job_id ? link(`#/job/${enc(l.pipeline)}/${enc(l.job_id)}`, short(l.job_id), { class: "mono" }) : "—"),
    h("h2", { text: "Datums that wrote it" }),
    table(["Datum", "State", "Input files"], l.datums.map((d) => [
      link(`#/datum/${enc(l.pipeline)}/${enc(d.job_id)}/${enc(d.datum_id)}`, short(d.datum_id), { class: "mono", "data-lineage-datum": d.datum_id }),
      badge(d.state),
      h("ul", { class: "plain" }, d.inputs.map((i) => h("li", {}, link(repoHref(i.repo, { commit: i.commit, file: i.path, path: parent(i.path) }),
        `${i.repo}@${short(i.commit)}:${i.path}`, { class: "mono", "data-lineage-input": i.repo }))))])));
  })().catch((err) => box.replaceChildren(h("div", { class: "reason", text: err.message })));
}
