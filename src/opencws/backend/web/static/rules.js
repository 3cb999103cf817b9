// The detection rules the backend evaluates on arriving events; an admin turns one off or on, and writes,
// replaces or deletes rules of their own from YAML text (each change audited).

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
  const editor = isAdmin ? ruleEditor(feedback) : null;
  const actions = (r) => [toggle(r), isAdmin && r.managed ? [" ", editButton(r, editor), " ", deleteButton(r, feedback)] : null];
  main.append(h("h2", {}, "Detection rules"), await webhookSummary(),
    h("p", { class: "muted" }, `${rules.length} rule${rules.length === 1 ? "" : "s"} loaded${off ? `, ${off} disabled` : ""}.`), feedback,
    table(["Id", "Title", "Severity", "Kind", "Condition", "Group by", "Source", "State", ""], rules.map((r) => h("tr", { dataset: { id: r.id, enabled: String(r.enabled !== false) } },
      h("td", { class: "code" }, h("a", { href: `#/signals?rule_id=${encodeURIComponent(r.id)}` }, r.id)), h("td", {}, r.title),
      h("td", {}, badge(r.severity, "sev")), h("td", {}, r.kind), h("td", { class: "code condition" }, r.condition),
      h("td", { class: "code" }, (r.group_by || []).join(", ")), h("td", { class: "code" }, r.source || ""),
      h("td", { class: "rule-state" }, state(r)), h("td", { class: "actions" }, actions(r)))), "rules"), editor ? editor.form : null);
}

// An admin's rule as a rule file holding it alone (the loader's errors are shown with their line and caret).
function ruleEditor(feedback) {
  const id = h("input", { id: "rule-id", class: "code", placeholder: "my_rule", pattern: "[A-Za-z0-9_]+", required: true });
  const text = h("textarea", { id: "rule-yaml", class: "code", rows: 12, spellcheck: false,
    placeholder: "rules:\n  - id: my_rule\n    title: ...\n    message: ...\n    severity: medium\n    condition: exec.file.name == \"nc\"\n    group_by: [host]\n    threshold: {count: 1, window: 1h}" });
  const errors = h("pre", { id: "rule-errors", class: "error-text", hidden: true });
  const form = h("form", { id: "rule-form", class: "status-form rule-form" }, h("h3", {}, "Write a rule (YAML)"),
    h("label", {}, "Id ", id), text, errors, h("button", { type: "submit", id: "rule-save" }, "Save rule"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.hidden = true;
    try {
      await api(`/api/v1/detection-rules/${encodeURIComponent(id.value.trim())}`, { method: "PUT", text: text.value, type: "application/yaml" });
      window.dispatchEvent(new HashChangeEvent("hashchange"));  // reload: the new rule in the list
    } catch (e) {
      errors.textContent = e.message;  // every error, each with its line and SECL's caret
      errors.hidden = false;
      feedback.replaceChildren();
    }
  });
  return { form, id, text };
}

function editButton(r, editor) {
  const b = h("button", { type: "button", class: "rule-edit" }, "Edit");
  b.addEventListener("click", async () => {
    const full = await api(`/api/v1/detection-rules/${encodeURIComponent(r.id)}`);
    editor.id.value = r.id;
    editor.text.value = full.yaml || "";
    editor.text.focus();
  });
  return b;
}

function deleteButton(r, feedback) {
  const b = h("button", { type: "button", class: "rule-delete" }, "Delete");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await api(`/api/v1/detection-rules/${encodeURIComponent(r.id)}`, { method: "DELETE" });
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (e) {
      feedback.replaceChildren(message(e.message));
      b.disabled = false;
    }
  });
  return b;
}
