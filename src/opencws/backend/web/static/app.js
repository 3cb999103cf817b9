// The UI's shell: who is signed in, the navigation, and a hash router that mounts one view at a time.
// Each view resolves when its data is on the page; the time from the route change to then is kept in
// window.opencwsTimings (the browser tests report it).

import { api, setSession, whenSignedOut } from "/ui/api.js";
import { h, message } from "/ui/dom.js";
import { auditView } from "/ui/audit.js";
import { eventsView } from "/ui/events.js";
import { rulesView } from "/ui/rules.js";
import { signalView, signalsView } from "/ui/signals.js";
import { signInView } from "/ui/signin.js";
import { treeView } from "/ui/tree.js";
import { usersView } from "/ui/users.js";

const routes = [
  [/^events$/, "events", () => eventsView],
  [/^events\/([0-9a-f]+)\/tree$/, "tree", (m) => (ctx) => treeView(ctx, m[1])],
  [/^signals$/, "signals", () => signalsView],
  [/^signals\/([^/?]+)$/, "signal", (m) => (ctx) => signalView(ctx, decodeURIComponent(m[1]))],
  [/^rules$/, "rules", () => rulesView],
  [/^audit$/, "audit", () => auditView],
  [/^users$/, "users", () => usersView],
];

window.opencwsTimings = [];
const ctx = { session: null };
let generation = 0;

function routeOf(hash) {
  const path = hash.replace(/^#\/?/, "").split("?")[0] || "events";
  for (const [re, name, make] of routes) {
    const m = re.exec(path);
    if (m) return { name, view: make(m) };
  }
  return { name: "events", view: eventsView };
}

async function render() {
  const main = document.getElementById("view");
  const mine = ++generation;
  if (!ctx.session) return showSignIn("");
  const { name, view } = routeOf(location.hash);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === name);
  const start = performance.now();
  main.replaceChildren();
  main.dataset.view = name;
  delete main.dataset.ready;
  try {
    await view({ ...ctx, main, stale: () => mine !== generation });
  } catch (e) {
    if (mine !== generation) return;
    if (e.status === 401) return;  // the sign-in page is already showing
    main.append(message(e.message || String(e)));
  }
  if (mine !== generation) return;
  main.dataset.ready = "1";
  window.opencwsTimings.push({ view: name, ms: Math.round(performance.now() - start) });
}

function showSignIn(reason) {
  ctx.session = null;
  setSession(null);
  generation++;
  document.getElementById("top").hidden = true;
  const main = document.getElementById("view");
  main.dataset.view = "signin";
  main.dataset.ready = "1";
  signInView(main, reason, (session) => { signedIn(session); });
}

function signedIn(session) {
  ctx.session = session;
  setSession(session);
  const top = document.getElementById("top");
  top.hidden = false;
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = !session.scopes.includes("admin");
  document.getElementById("who").replaceChildren(
    h("span", { class: "user" }, session.name), " ", h("span", { class: `badge role role-${session.role}` }, session.role));
  render();
}

whenSignedOut((reason) => showSignIn(reason || "Your session has ended: sign in again."));
window.addEventListener("hashchange", () => render());
document.getElementById("signout").addEventListener("click", async () => {
  try { await api("/api/v1/session", { method: "DELETE" }); } catch { /* already signed out */ }
  showSignIn("Signed out.");
});

try {
  signedIn(await api("/api/v1/session", { quiet401: true }));
} catch (e) {
  showSignIn(e.status === 401 ? "" : e.message);
}
