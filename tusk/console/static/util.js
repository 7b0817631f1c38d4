// Small DOM and formatting helpers shared by every view.

// h("div", {class: "card", onclick: fn}, child, "text", [more children]): an element.
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "path", "rect", "text", "polyline", "title", "marker", "defs"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// A time: an ISO string or epoch seconds.
export function when(t) {
  if (t === null || t === undefined) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return d.toLocaleString();
}

export function short(id) { return id ? id.slice(0, 12) : ""; }

export function badge(state, extra = "") {
  return h("span", { class: `badge s-${state} ${extra}`, "data-state": state, text: state });
}

// Progress of a job: processed, skipped and failed parts of its total.
export function progress(j) {
  const total = Math.max(j.total || 0, 1);
  const bar = h("div", { class: "progress", title:
    `${j.processed} processed, ${j.skipped} skipped, ${j.failed} failed of ${j.total}` });
  for (const k of ["processed", "skipped", "failed"]) {
    const part = h("span", { class: `p-${k}` });
    part.style.width = `${(100 * (j[k] || 0)) / total}%`;
    bar.append(part);
  }
  return h("div", {}, bar,
    h("span", { class: "muted", text: `${j.processed} + ${j.skipped} / ${j.total}` +
      (j.failed ? `, ${j.failed} failed` : "") }));
}

export function table(headers, rows, onRow) {
  const body = h("tbody");
  rows.forEach((cells, i) => {
    const tr = h("tr", onRow ? { class: "clickable", onclick: () => onRow(i) } : {},
      cells.map((c) => h("td", {}, c)));
    body.append(tr);
  });
  return h("div", { class: "scroll" },
    h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { text: x })))), body));
}

// "Prev / Next" for a page {total, limit, offset} (or {more} when the total is not known).
export function pager(pg, go) {
  const end = pg.offset + pg.items.length;
  const more = pg.more !== undefined ? pg.more : end < pg.total;
  const of = pg.more !== undefined ? "" : ` of ${pg.total}`;
  return h("div", { class: "pager" },
    h("button", { class: "secondary", disabled: pg.offset === 0,
      onclick: () => go(Math.max(0, pg.offset - pg.limit)) }, "Prev"),
    h("span", { class: "muted", text: pg.items.length ? `${pg.offset + 1}–${end}${of}` : `0${of}` }),
    h("button", { class: "secondary", disabled: !more, onclick: () => go(pg.offset + pg.limit) },
      "Next"));
}

export function link(href, text, attrs = {}) { return h("a", { href, ...attrs }, text); }

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : "";
}
