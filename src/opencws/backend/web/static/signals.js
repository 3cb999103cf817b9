// Security signals: the list (filtered by status, severity, rule and time; a page at a time) and one signal with
// its sample events, its history and, for admins, the status change with a comment.

import { api } from "/ui/api.js";
import { badge, h, hashParams, message, setHashParams, table, when } from "/ui/dom.js";
import { webhookSummary } from "/ui/webhooks.js";

const STATUSES = [["open", "Open"], ["under_review", "Under review"], ["archived", "Archived"]];
const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const PAGE = 50;

function statusLabel(s) { return (STATUSES.find(([k]) => k === s) || [s, s])[1]; }

function webhook(w) {
  if (!w) return h("span", { class: "muted" }, "—");
  const text = `${w.state}${w.attempts ? ` (${w.attempts} attempt${w.attempts > 1 ? "s" : ""})` : ""}`;
  return h("span", { class: `webhook webhook-${w.state}`, title: w.last_error || "" }, text);
}

export async function signalsView({ main }) {
  const p = Object.fromEntries(hashParams());
  const select = (id, label, options, value) => h("label", {}, label,
    h("select", { id }, h("option", { value: "" }, "any"), options.map(([k, l]) => h("option", { value: k, selected: k === value }, l))));
  let rules = [];
  try { rules = (await api("/api/v1/detection-rules")).rules; } catch { rules = []; }
  const status = select("f-status", "Status", STATUSES, p.status || "");
  const severity = select("f-severity", "Severity", SEVERITIES.map((s) => [s, s]), p.severity || "");
  const rule = select("f-rule", "Rule", rules.map((r) => [r.id, `${r.id}: ${r.title}`]), p.rule_id || "");
  const time = (id, label, value, hint) => h("label", {}, label,
    h("input", { id, class: "code", size: 24, value: value || "", placeholder: "2026-12-01T10:00:00Z", title: hint }));
  const from = time("f-from", "From", p.from, "RFC 3339, UTC: signals last seen at or after");
  const to = time("f-to", "To", p.to, "RFC 3339, UTC: signals first seen before");
  const filters = h("form", { id: "signal-filters", class: "filters" }, status, severity, rule, from, to);
  const list = h("section", { id: "signals" });
  main.append(h("h2", {}, "Signals"), await webhookSummary(), filters, list);
  filters.addEventListener("change", () => load());
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });

  async function load() {
    const params = { status: status.querySelector("select").value, severity: severity.querySelector("select").value,
      rule_id: rule.querySelector("select").value, from: from.querySelector("input").value.trim(),
      to: to.querySelector("input").value.trim() };
    setHashParams("signals", params);
    list.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    delete list.dataset.filters;  // set to the filters shown once loaded (tests wait for it)
    const rowsOf = (signals) => signals.map((s) => h("tr", { dataset: { id: s.id } },
      h("td", {}, badge(s.severity, "sev")),
      h("td", {}, h("a", { href: `#/signals/${encodeURIComponent(s.id)}` }, s.title),
        h("div", { class: "group code" }, Object.entries(s.group || {}).map(([k, v]) => `${k}=${v}`).join("  "))),
      h("td", { class: "code" }, s.rule_id), h("td", {}, badge(statusLabel(s.status), "status")),
      h("td", { class: "num" }, s.count), h("td", { class: "time" }, when(s.first_seen)), h("td", { class: "time" }, when(s.last_seen)),
      h("td", {}, webhook(s.webhook))));
    let page;
    try { page = await api("/api/v1/signals", { params: { ...params, limit: PAGE } }); } catch (e) {
      list.replaceChildren(message(e.status === 404 ? "This backend has no signals API." : e.message));
      return;
    }
    const t = table(["Severity", "Title", "Rule", "Status", "Events", "First seen", "Last seen", "Webhook"], rowsOf(page.signals), "signals");
    let next = page.next;
    const more = h("button", { type: "button", id: "more", hidden: !next }, "More");
    more.addEventListener("click", async () => {
      const r = await api("/api/v1/signals", { params: { ...params, limit: PAGE, cursor: next } });
      t.tBodies[0].append(...rowsOf(r.signals));
      next = r.next;
      more.hidden = !next;
    });
    list.replaceChildren(page.signals.length ? t : h("p", { class: "muted", id: "no-signals" }, "No signal."), more);
    list.dataset.filters = `${params.status}|${params.severity}|${params.rule_id}${params.from || params.to ? `|${params.from}|${params.to}` : ""}`;
  }
  await load();
}

export async function signalView({ main, session }, id) {
  const s = await api(`/api/v1/signals/${encodeURIComponent(id)}`);
  const isAdmin = session.scopes.includes("admin");
  const statusSel = h("select", { id: "new-status", disabled: !isAdmin },
    STATUSES.map(([k, l]) => h("option", { value: k, selected: k === s.status }, l)));
  const comment = h("textarea", { id: "status-comment", rows: 2, maxlength: 2000, disabled: !isAdmin, placeholder: "Why (kept in the history and the audit log)" });
  const submit = h("button", { type: "submit", id: "status-submit", disabled: !isAdmin }, "Change status");
  const feedback = h("div", { id: "status-message" },
    isAdmin ? null : message(`Your role (${session.role}) can view signals but not change them: an admin can.`, "info"));
  const form = h("form", { id: "status-form", class: "status-form" }, h("h3", {}, "Triage"), statusSel, comment, submit, feedback);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      await api(`/api/v1/signals/${encodeURIComponent(id)}/status`, { method: "POST", body: { status: statusSel.value, comment: comment.value } });
      window.dispatchEvent(new HashChangeEvent("hashchange"));  // reload the signal: its history shows the change
    } catch (e) {
      feedback.replaceChildren(message(e.message));
      submit.disabled = !isAdmin;
    }
  });
  const events = (s.events || []).map((hit) => {
    const e = hit.event || {};
    const p = e.process || {};
    return h("tr", { dataset: { id: hit.id } }, h("td", { class: "time" }, when(hit.date)), h("td", {}, (e.evt || {}).name || ""),
      h("td", {}, `${p.comm || ""} [${p.pid ?? "?"}]`), h("td", { class: "path" }, (e.file || {}).path || ((p.executable || {}).path || "")),
      h("td", {}, h("a", { href: `#/events?event=${hit.id}&range=all` }, "JSON"), " ", h("a", { href: `#/events/${hit.id}/tree` }, "Tree")));
  });
  const group = Object.entries(s.group || {});
  main.append(
    h("p", {}, h("a", { href: "#/signals" }, "← Signals")),
    h("h2", { id: "signal-title" }, badge(s.severity, "sev"), " ", s.title),
    h("p", { class: "signal-message" }, s.message),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { id: "signal-status" }, badge(statusLabel(s.status), "status")),
      h("dt", {}, "Rule"), h("dd", { class: "code" }, s.rule_id),
      group.length ? [h("dt", {}, "Group"), h("dd", { class: "code" }, group.map(([k, v]) => `${k}=${v}`).join(", "))] : null,
      h("dt", {}, "Events"), h("dd", {}, s.count),
      h("dt", {}, "First seen"), h("dd", {}, when(s.first_seen)),
      h("dt", {}, "Last seen"), h("dd", {}, when(s.last_seen)),
      h("dt", {}, "Webhook"), h("dd", { id: "signal-webhook" }, webhook(s.webhook),
        s.webhook && s.webhook.last_error ? h("div", { class: "error-text" },
          s.webhook.state === "failed" ? "Given up: " : s.webhook.state === "pending" ? "Retrying after: " : "Earlier attempt: ",
          s.webhook.last_error) : null)),
    form,
    h("h3", {}, "History"),
    table(["When (UTC)", "Status", "By", "Comment"], (s.history || []).map((x) => h("tr", {},
      h("td", { class: "time" }, when(x.at)), h("td", {}, statusLabel(x.status)), h("td", {}, x.by || ""), h("td", {}, x.comment || ""))), "history"),
    h("h3", {}, "Sample events"),
    events.length ? table(["Time (UTC)", "Type", "Process", "Path", ""], events, "events") : h("p", { class: "muted" }, "None kept."));
}
