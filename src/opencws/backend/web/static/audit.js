// The audit log: who changed what and when (admins only: it also holds user management and failed sign-ins).

import { api } from "/ui/api.js";
import { h, hashParams, message, setHashParams, table, when } from "/ui/dom.js";

const PAGE = 100;

export async function auditView({ main }) {
  const action = h("input", { id: "audit-action", class: "code", placeholder: "action or prefix: signal., user.add", value: hashParams().get("action") || "" });
  const form = h("form", { class: "filters", id: "audit-filters" }, h("label", {}, "Action", action), h("button", { type: "submit" }, "Filter"));
  const list = h("section", { id: "audit" });
  main.append(h("h2", {}, "Audit log"), form, list);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  const rowsOf = (entries) => entries.map((e) => h("tr", {}, h("td", { class: "time" }, when(e.at)), h("td", {}, e.actor),
    h("td", { class: "code" }, e.action), h("td", { class: "code" }, e.target),
    h("td", { class: "code detail" }, e.detail === null ? "" : JSON.stringify(e.detail))));

  async function load() {
    setHashParams("audit", { action: action.value.trim() });
    let page;
    try { page = await api("/api/v1/audit", { params: { action: action.value.trim(), limit: PAGE } }); } catch (e) {
      list.replaceChildren(message(e.status === 403 ? "The audit log is shown to admins only." : e.message, e.status === 403 ? "info" : "error"));
      return;
    }
    const t = table(["When (UTC)", "Who", "Action", "Target", "Detail"], rowsOf(page.entries), "audit");
    let next = page.next;
    const more = h("button", { type: "button", id: "more", hidden: !next }, "More");
    more.addEventListener("click", async () => {
      const r = await api("/api/v1/audit", { params: { action: action.value.trim(), limit: PAGE, cursor: next } });
      t.tBodies[0].append(...rowsOf(r.entries));
      next = r.next;
      more.hidden = !next;
    });
    list.replaceChildren(page.entries.length ? t : h("p", { class: "muted" }, "No entry."), more);
  }
  await load();
}
