// The console's shell: session and login, the hash router, polling, messages.
import { api, get, post } from "./api.js";
import { h } from "./util.js";
import { errorText, flash, newView, session } from "./shell.js";
import { dagView } from "./dag.js";
import { commitView, repoView, reposView, waveView } from "./repos.js";
import { pipelineView } from "./pipelines.js";
import { datumView, jobView, jobsView, lineageView } from "./jobs.js";

const main = document.getElementById("main");

const routes = [
  [/^\/$/, () => dagView],
  [/^\/repos$/, () => reposView],
  [/^\/repo\/([^/]+)$/, () => repoView],
  [/^\/commit\/([^/]+)\/([^/]+)$/, () => commitView],
  [/^\/wave\/([^/]+)$/, () => waveView],
  [/^\/pipeline\/([^/]+)$/, () => pipelineView],
  [/^\/jobs$/, () => jobsView],
  [/^\/job\/([^/]+)\/([^/]+)$/, () => jobView],
  [/^\/datum\/([^/]+)\/([^/]+)\/([^/]+)$/, () => datumView],
  [/^\/lineage$/, () => lineageView],
];

function route() {
  newView();
  flash("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      const args = m.slice(1).map(decodeURIComponent);
      main.replaceChildren();
      view()(main, args, params);
      return;
    }
  }
  main.replaceChildren(h("p", { text: `Nothing here: ${path}` }), h("a", { href: "#/" }, "DAG"));
}

function loginView() {
  newView();
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password",
    placeholder: "auth token", required: true });
  const form = h("form", { class: "card", id: "login" },
    h("h2", { text: "Sign in" }),
    h("p", { class: "muted", text: "This server has an auth token (TUSK_AUTH_TOKEN). Give it " +
      "once; the browser keeps a session cookie." }),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await post(api("login"), { token: input.value });
      await start();
    } catch (err) { flash(errorText(err)); }
  });
  main.replaceChildren(form);
  input.focus();
}

async function start() {
  const s = await get(api("session"));
  session.lineage_url = s.lineage_url;
  if (!s.signed_in) { loginView(); return; }
  flash("");
  route();
}

window.addEventListener("hashchange", route);
window.addEventListener("tusk-login", () => { if (!document.getElementById("login")) loginView(); });
start().catch((err) => flash(errorText(err)));
