// Repos: the list, one repo (branches, commit history, file browser with previews, upload),
// one commit (provenance, diff) and one commit set (the whole wave of a global ID).
import { api, get, post } from "./api.js";
import { action, current, every, session } from "./shell.js";
import { badge, bytes, h, link, pager, qs, short, table, when } from "./util.js";

const enc = encodeURIComponent;
export const repoHref = (repo, params = {}) => `#/repo/${enc(repo)}${qs(params)}`;
export const commitHref = (repo, id) => `#/commit/${enc(repo)}/${enc(id)}`;

export function reposView(main) {
  const box = h("div", { class: "card" });
  main.append(h("h1", { text: "Repos" }), box);
  let offset = 0;
  const load = async () => {
    const pg = await get(api("repos"), { limit: 100, offset });
    box.replaceChildren(table(["Name", "Kind", "Size", "Branches", "Created"],
      pg.items.map((r) => [link(repoHref(r.name), r.name), r.kind, bytes(r.size_bytes),
        r.branches.join(", "), when(r.created)])),
    pager(pg, (o) => { offset = o; load(); }));
  };
  every(5000, load);
}

export function repoView(main, [repo], params) {
  const ref = params.get("commit") || params.get("branch") || "";
  const path = params.get("path") || "/";
  const head = h("div", { class: "card" });
  const history = h("div", { class: "card", id: "commits" });
  const browser = h("div", { class: "card", id: "files" });
  const preview = h("div", { class: "card preview", id: "preview" });
  main.append(h("h1", {}, "Repo ", h("span", { class: "mono", text: repo })), head,
    h("div", { class: "grid" }, browser, preview), history);
  let info;
  const live = current();
  (async () => {
    info = await get(api(`repos/${repo}`));
    if (!live()) return;
    const branchNames = info.branches.map((b) => b.branch.name);
    const at = ref || (branchNames.includes("master") ? "master" : branchNames[0] || "");
    head.replaceChildren(h("div", { class: "kv" },
      h("span", { text: "kind" }), h("span", {}, info.repo.kind,
        info.pipeline ? [" of pipeline ", link(`#/pipeline/${enc(info.pipeline)}`, info.pipeline)] : ""),
      h("span", { text: "size" }), h("span", { text: bytes(info.repo.size_bytes) }),
      h("span", { text: "description" }), h("span", { text: info.repo.description || "—" }),
      h("span", { text: "branches" }), h("span", {}, info.branches.map((b) => [
        link(repoHref(repo, { branch: b.branch.name }), b.branch.name), " → ",
        b.head ? link(commitHref(repo, b.head), short(b.head), { class: "mono" }) : "(no head)",
        b.provenance.length ? h("span", { class: "muted", text: ` ⟵ ${b.provenance.map(
          (p) => `${p.repo}/${p.name}`).join(", ")}` }) : "", h("br")]))),
    info.repo.kind === "user"
      ? uploadForm(repo, branchNames.includes(at) ? at : "master") : "");
    if (at) browse(repo, at, path, browser, preview, params.get("file"));
    else browser.replaceChildren(h("p", { class: "muted", text: "No branch yet: upload a file." }));
    loadCommits(repo, params.get("branch") || "", history, 0);
  })().catch((err) => head.replaceChildren(h("div", { class: "reason", text: err.message })));
}

async function loadCommits(repo, branch, box, offset) {
  const pg = await get(api(`repos/${repo}/commits`), { branch, limit: 25, offset });
  box.replaceChildren(h("h2", { text: `Commits${branch ? ` of ${branch}` : ""}` }),
    table(["Commit", "Branch", "Started", "Size", "Origin", "Provenance", ""],
      pg.items.map((c) => [
        link(commitHref(repo, c.commit.id), short(c.commit.id), { class: "mono" }),
        c.branch || "", when(c.started), bytes(c.size_bytes), c.origin,
        h("span", { class: "muted", text: provenanceText(c) }),
        [c.failed ? badge("failure") : c.finished ? "" : badge("running", "open"), " ",
          link(repoHref(repo, { commit: c.commit.id }), "files")],
      ])),
    pager(pg, (o) => loadCommits(repo, branch, box, o)));
}

function provenanceText(c) {
  const inputs = c.provenance.filter((p) => p.commit.repo !== "__spec__");
  return inputs.map((p) => `${p.commit.repo}@${short(p.commit.id)}`).join(", ");
}

function browse(repo, ref, path, box, preview, file) {
  let offset = 0;
  const crumbs = () => {
    const parts = path.split("/").filter(Boolean);
    const out = [link(repoHref(repo, { commit: ref, path: "/" }), `${repo}@${short(ref)}:/`)];
    parts.forEach((p, i) => {
      out.push(link(repoHref(repo, { commit: ref, path: `/${parts.slice(0, i + 1).join("/")}` }),
        `${p}/`));
    });
    return h("div", { class: "crumbs" }, out);
  };
  const load = async () => {
    const pg = await get(api(`repos/${repo}/files`), { ref, path, limit: 200, offset });
    box.replaceChildren(h("h2", { text: "Files" }), crumbs(),
      table(["Name", "Size", ""], pg.items.map((f) => {
        const name = f.path.split("/").pop() + (f.type === "dir" ? "/" : "");
        return [h("span", { class: "mono", "data-file": f.path, text: name }),
          bytes(f.size_bytes), f.type === "dir" ? h("span", { class: "muted", text: "dir" }) : ""];
      }), (i) => {
        const f = pg.items[i];
        if (f.type === "dir") location.hash = repoHref(repo, { commit: ref, path: f.path });
        else showPreview(repo, ref, f.path, preview);
      }),
      pager(pg, (o) => { offset = o; load(); }));
  };
  load().catch((err) => box.replaceChildren(h("h2", { text: "Files" }), crumbs(),
    h("div", { class: "reason", text: err.message })));
  if (file) showPreview(repo, ref, file, preview);
  else preview.replaceChildren(h("h2", { text: "Preview" }),
    h("p", { class: "muted", text: "Choose a file." }));
}

export async function showPreview(repo, ref, path, box) {
  box.replaceChildren(h("h2", { text: path }), h("p", { class: "muted", text: "Loading…" }));
  const p = await get(api(`repos/${repo}/preview`), { ref, path });
  const raw = `${api(`repos/${repo}/raw`)}${qs({ ref, path })}`;
  let body;
  if (p.kind === "image") body = h("img", { src: raw, alt: path });
  else if (p.kind === "table") {
    const [head, ...rows] = p.rows;
    body = table(head || [], rows);
  } else if (p.kind === "json" || p.kind === "text") body = h("pre", { text: p.text });
  else body = h("p", { class: "muted", text: "No preview for this kind of file." });
  const tools = h("div", { class: "row" }, h("a", { href: raw, download: path.split("/").pop() },
    "Download"), h("span", { class: "muted", text: `${bytes(p.size_bytes)}${p.truncated
    ? " · preview shows the start" : ""}` }));
  if (session.lineage_url) {
    tools.append(link(`#/lineage${qs({ repo, commit: ref, path })}`, "Lineage"));
  }
  box.replaceChildren(h("h2", {}, h("span", { class: "mono", text: path })), tools,
    h("div", { "data-preview": p.kind }, body));
}

function uploadForm(repo, branch) {
  const file = h("input", { type: "file", name: "upload-file", required: true });
  const target = h("input", { name: "upload-path", placeholder: "path in the repo (default: the " +
    "file's name)" });
  const br = h("input", { name: "upload-branch", value: branch, size: 10 });
  const form = h("form", { id: "upload" }, h("h2", { text: "Upload a file" }),
    h("div", { class: "row" }, file, target, br, h("button", { type: "submit" }, "Upload")));
  form.addEventListener("submit", action(async () => {
    const f = file.files[0];
    if (!f) throw new Error("choose a file first");
    const path = target.value.trim() || `/${f.name}`;
    const out = await post(api(`repos/${repo}/upload`), f, { branch: br.value.trim(), path });
    location.hash = repoHref(repo, { commit: out.result.commit.id, file: path });
  }, "uploaded"));
  return form;
}

export function commitView(main, [repo, id]) {
  const box = h("div", { class: "card" });
  const diffBox = h("div", { class: "card", id: "diff" });
  main.append(h("h1", {}, "Commit ", h("span", { class: "mono", text: `${repo}@${id}` })), box,
    diffBox);
  (async () => {
    const { commit: c } = await get(api(`repos/${repo}/commits/${id}`));
    const prov = c.provenance.map((p) => h("li", {},
      p.commit.repo === "__spec__" ? h("span", { class: "muted", text: "spec " }) : "",
      p.commit.repo === "__spec__" ? h("span", { class: "mono", text: `${p.branch || ""}@${short(p.commit.id)}` })
        : link(commitHref(p.commit.repo, p.commit.id), `${p.commit.repo}@${short(p.commit.id)}`,
          { class: "mono", "data-provenance": p.commit.repo }),
      p.branch && p.commit.repo !== "__spec__" ? h("span", { class: "muted", text: ` (${p.branch})` }) : ""));
    box.replaceChildren(h("div", { class: "kv" },
      h("span", { text: "branch" }), h("span", { text: c.branch || "—" }),
      h("span", { text: "global ID" }), h("span", {}, link(`#/wave/${enc(c.commit.id)}`, c.commit.id,
        { class: "mono", id: "wave-link" }), h("span", { class: "muted", text: " (the whole wave)" })),
      h("span", { text: "parent" }), h("span", {}, c.parent ? link(commitHref(repo, c.parent),
        short(c.parent), { class: "mono" }) : "—"),
      h("span", { text: "started" }), h("span", { text: when(c.started) }),
      h("span", { text: "finished" }), h("span", { text: c.finished ? when(c.finished) : "open" }),
      h("span", { text: "size" }), h("span", { text: bytes(c.size_bytes) }),
      h("span", { text: "origin" }), h("span", { text: c.origin }),
      h("span", { text: "description" }), h("span", { text: c.description || "—" }),
      h("span", { text: "files" }), h("span", {}, link(repoHref(repo, { commit: c.commit.id }), "browse")),
      h("span", { text: "provenance" }), h("ul", { class: "plain", id: "provenance" }, prov),
      h("span", { text: "subvenance" }), h("ul", { class: "plain" }, c.subvenance.map((s) =>
        h("li", {}, link(commitHref(s.repo, s.id), `${s.repo}@${short(s.id)}`, { class: "mono" }))))),
    c.failed ? h("div", { class: "reason", text: c.reason || "failed" }) : "");
    diffView(repo, c, diffBox, "", 0);
  })().catch((err) => box.replaceChildren(h("div", { class: "reason", text: err.message })));
}

async function diffView(repo, c, box, old, offset) {
  const other = h("input", { name: "diff-old", value: old, placeholder: "another commit (default: the parent)" });
  const form = h("form", { class: "row" }, "Compare with ", other, h("button", { type: "submit" }, "Diff"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); diffView(repo, c, box, other.value.trim(), 0); });
  box.replaceChildren(h("h2", { text: "Diff" }), form, h("p", { class: "muted", text: "Loading…" }));
  try {
    const pg = await get(api(`repos/${repo}/diff`), { ref: c.commit.id, old, limit: 200, offset });
    box.replaceChildren(h("h2", { text: `Diff from ${old || (c.parent ? short(c.parent) : "nothing")}` }), form,
      table(["Path", "Change", "Old size", "New size"], pg.items.map((d) => [
        h("span", { class: "mono", text: d.path }), badge(d.change), bytes(d.old_size), bytes(d.new_size)])),
      pager(pg, (o) => diffView(repo, c, box, old, o)));
  } catch (err) {
    box.replaceChildren(h("h2", { text: "Diff" }), form, h("div", { class: "reason", text: err.message }));
  }
}

export function waveView(main, [id]) {
  const box = h("div", { id: "wave" });
  main.append(h("h1", {}, "Global ID ", h("span", { class: "mono", text: id })),
    h("p", { class: "muted", text: "Everything one change made: the commits with this ID, the " +
      "input commits and spec versions they came from, and the jobs that ran." }), box);
  every(3000, async () => {
    const w = await get(api(`commitsets/${id}`));
    const inputs = w.provenance.filter((p) => !p.spec);
    const specs = w.provenance.filter((p) => p.spec);
    box.replaceChildren(h("div", { class: "grid" },
      h("div", { class: "card" }, h("h2", { text: "Commits of this ID" }),
        table(["Commit", "Branch", "Origin", "Size"], w.commits.map((c) => [
          link(commitHref(c.commit.repo, c.commit.id), `${c.commit.repo}@${short(c.commit.id)}`,
            { class: "mono", "data-wave-commit": c.commit.repo }),
          c.branch || "", c.origin, bytes(c.size_bytes)]))),
      h("div", { class: "card" }, h("h2", { text: "Input commits" }),
        table(["Commit", "Branch"], inputs.map((p) => [
          link(commitHref(p.repo, p.id), `${p.repo}@${short(p.id)}`,
            { class: "mono", "data-wave-input": p.repo }), p.branch || ""]))),
      h("div", { class: "card" }, h("h2", { text: "Spec versions" }),
        table(["Pipeline", "Spec commit"], specs.map((p) => [
          link(`#/pipeline/${enc(p.branch || "")}`, p.branch || ""), h("span", { class: "mono", text: short(p.id) })]))),
      h("div", { class: "card" }, h("h2", { text: "Jobs" }),
        table(["Pipeline", "Version", "State", "Progress"], w.jobs.map((j) => [
          link(`#/job/${enc(j.pipeline)}/${enc(j.id)}`, j.pipeline, { "data-wave-job": j.pipeline }),
          `v${j.version}`, badge(j.state), `${j.processed} + ${j.skipped} / ${j.total}`])))));
  });
}
