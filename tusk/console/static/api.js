// The console's calls to tuskd: JSON in and out, the CSRF token on every change.

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)tusk_csrf=([^;]*)/);
  return m ? m[1] : "";
}

async function answer(r) {
  if (r.ok) return r.json();
  let message = `${r.status} ${r.statusText}`;
  let hint;
  try {
    const body = await r.json();
    if (body.error) { message = body.error.message; hint = body.error.hint; }
  } catch { /* not JSON */ }
  if (r.status === 401) window.dispatchEvent(new CustomEvent("tusk-login"));
  throw new ApiError(r.status, message, hint);
}

export async function get(path, params = {}) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return answer(await fetch(path + (s ? `?${s}` : ""), { credentials: "same-origin" }));
}

export async function post(path, body = {}, params = {}) {
  const u = new URLSearchParams(params).toString();
  const raw = body instanceof Blob;
  return answer(await fetch(path + (u ? `?${u}` : ""), {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": raw ? "application/octet-stream" : "application/json",
      "X-Tusk-CSRF": csrf(),
    },
    body: raw ? body : JSON.stringify(body),
  }));
}

export const api = (p) => `/console/api/${p.split("/").map(encodeURIComponent).join("/")}`;
