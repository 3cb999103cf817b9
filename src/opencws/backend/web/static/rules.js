// The detection rules the backend evaluates on arriving events.

import { api } from "/ui/api.js";
import { badge, h, message, table } from "/ui/dom.js";

export async function rulesView({ main }) {
  let rules;
  try { rules = (await api("/api/v1/detection-rules")).rules; } catch (e) {
    main.append(h("h2", {}, "Detection rules"), message(e.status === 404 ? "This backend has no detection rules API." : e.message));
    return;
  }
  main.append(h("h2", {}, "Detection rules"), h("p", { class: "muted" }, `${rules.length} rule${rules.length === 1 ? "" : "s"} loaded.`),
    table(["Id", "Title", "Severity", "Kind", "Condition", "Group by", "Source"], rules.map((r) => h("tr", { dataset: { id: r.id } },
      h("td", { class: "code" }, h("a", { href: `#/signals?rule_id=${encodeURIComponent(r.id)}` }, r.id)), h("td", {}, r.title),
      h("td", {}, badge(r.severity, "sev")), h("td", {}, r.kind), h("td", { class: "code condition" }, r.condition),
      h("td", { class: "code" }, (r.group_by || []).join(", ")), h("td", { class: "code" }, r.source || ""))), "rules"));
}
