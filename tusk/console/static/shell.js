// What every view shares: messages, polling tied to the shown view, action buttons, the session.

const flashEl = () => document.getElementById("flash");
const liveEl = () => document.getElementById("live");
export const session = { lineage_url: null };
let timers = [];
let generation = 0;

// A new view is shown: stop the polling of the one before.
export function newView() {
  generation += 1;
  timers.forEach(clearInterval);
  timers = [];
}

export function flash(message, ok = false) {
  const el = flashEl();
  el.textContent = message;
  el.className = ok ? "flash ok" : "flash";
  el.hidden = !message;
}

export function errorText(err) {
  return err.hint ? `${err.message}\n  hint: ${err.hint}` : String(err.message || err);
}

// Run fn now and every `ms` while this view is shown; an error marks the page stale.
export function every(ms, fn) {
  const gen = generation;
  let busy = false;
  const tick = async () => {
    if (busy || gen !== generation) return;
    busy = true;
    try {
      await fn();
      liveEl().classList.remove("stale");
    } catch (err) {
      liveEl().classList.add("stale");
      if (err.status !== 401) flash(errorText(err));
    } finally { busy = false; }
  };
  const first = tick();
  timers.push(setInterval(tick, ms));
  return first;
}

// Whether the view that called this is still the one shown.
export function current() {
  const gen = generation;
  return () => gen === generation;
}

// An action button's handler: runs fn, then shows its error, or `done` when it worked.
export function action(fn, done = "") {
  return async (ev) => {
    if (ev && ev.preventDefault && ev.type === "submit") ev.preventDefault();
    const button = ev && ev.currentTarget instanceof HTMLButtonElement ? ev.currentTarget : null;
    if (button) button.disabled = true;
    try {
      const out = await fn();
      flash(done, true);
      return out;
    } catch (err) {
      flash(errorText(err));
      return undefined;
    } finally { if (button) button.disabled = false; }
  };
}
