// The detection rules the backend evaluates on arriving events; an admin turns one off or on (audited).

import { api } from "/ui/api.js";
import { badge, h, message, table, when } from "/ui/dom.js";
import { webhookSummary } from "/ui/webhooks.js";

export async function rulesView({ main, session }) {
  let rules;
  try { rules = (await api("/api/v1/detection-rules")).rules; } catch (e) {
    main.append(h("h2", {}, "Detection rules"), message(e.status === 404 ? "This backend has no detection rules API." : e.message));
    return;
  }
  const isAdmin = session.scopes.includes("admin");
  const off = rules.filter((r) => r.enabled === false).length;
  const feedback = h("div", { id: "rules-message" },
    isAdmin ? null : message(`Your role (${session.role}) can view rules but not turn them on or off: an admin can.`, "info"));
  const state = (r) => r.enabled === false
    ? [badge("disabled", "rule-state"), h("div", { class: "muted small" }, `by ${r.disabled.by}, ${when(r.disabled.at)}`)]
    : badge("enabled", "rule-state");
  const toggle = (r) => {
    const b = h("button", { type: "button", class: "rule-toggle", disabled: !isAdmin,
      title: isAdmin ? "" : "an admin can change this" }, r.enabled === false ? "Enable" : "Disable");
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await api(`/api/v1/detection-rules/${encodeURIComponent(r.id)}`, { method: "PATCH", body: { enabled: r.enabled === false } });
        window.dispatchEvent(new HashChangeEvent("hashchange"));  // reload: the state and who changed it
      } catch (e) {
        feedback.replaceChildren(message(e.message));
        b.disabled = false;
      }
    });
    return b;
  };
  main.append(h("h2", {}, "Detection rules"), await webhookSummary(),
    h("p", { class: "muted" }, `${rules.length} rule${rules.length === 1 ? "" : "s"} loaded${off ? `, ${off} disabled` : ""}.`), feedback,
    table(["Id", "Title", "Severity", "Kind", "Condition", "Group by", "Source", "State", ""], rules.map((r) => h("tr", { dataset: { id: r.id, enabled: String(r.enabled !== false) } },
      h("td", { class: "code" }, h("a", { href: `#/signals?rule_id=${encodeURIComponent(r.id)}` }, r.id)), h("td", {}, r.title),
      h("td", {}, badge(r.severity, "sev")), h("td", {}, r.kind), h("td", { class: "code condition" }, r.condition),
      h("td", { class: "code" }, (r.group_by || []).join(", ")), h("td", { class: "code" }, r.source || ""),
      h("td", { class: "rule-state" }, state(r)), h("td", {}, toggle(r)))), "rules"));
}
