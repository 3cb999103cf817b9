// Users of the UI (admins): list, add with a role, remove (their sessions end at once).

import { api } from "/ui/api.js";
import { badge, h, message, table } from "/ui/dom.js";

function created(ts) { return new Date(ts * 1000).toISOString().slice(0, 19).replace("T", " "); }

export async function usersView({ main, session }) {
  const list = h("section", { id: "users" });
  const feedback = h("div", { id: "users-message" });
  const name = h("input", { id: "new-user", autocomplete: "off", required: true, maxlength: 64 });
  const role = h("select", { id: "new-role" }, h("option", { value: "read" }, "read"), h("option", { value: "admin" }, "admin"));
  const password = h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: 12 });
  const form = h("form", { id: "add-user", class: "filters" }, h("label", {}, "Name", name), h("label", {}, "Role", role),
    h("label", {}, "Password (12 characters or more)", password), h("button", { type: "submit" }, "Add user"));
  main.append(h("h2", {}, "Users"), form, feedback, list);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const u = await api("/api/v1/users", { method: "POST", body: { name: name.value, role: role.value, password: password.value } });
      feedback.replaceChildren(message(`Added ${u.name} (${u.role}).`, "info"));
      name.value = ""; password.value = "";
      await load();
    } catch (e) { feedback.replaceChildren(message(e.message)); }
  });

  async function remove(user, button) {
    if (button.dataset.confirm !== "1") {  // a second click confirms
      button.dataset.confirm = "1";
      button.textContent = `Remove ${user} for good?`;
      return;
    }
    try {
      await api(`/api/v1/users/${encodeURIComponent(user)}`, { method: "DELETE" });
      feedback.replaceChildren(message(`Removed ${user}; their sessions are ended.`, "info"));
      await load();
    } catch (e) { feedback.replaceChildren(message(e.message)); }
  }

  async function load() {
    let users;
    try { users = (await api("/api/v1/users")).users; } catch (e) {
      list.replaceChildren(message(e.status === 403 ? "Users are managed by admins." : e.message, e.status === 403 ? "info" : "error"));
      return;
    }
    list.replaceChildren(table(["Name", "Role", "Created (UTC)", ""], users.map((u) => {
      const button = h("button", { type: "button", class: "remove", disabled: u.name === session.name && session.id.startsWith("user:") }, "Remove");
      button.addEventListener("click", () => remove(u.name, button));
      return h("tr", { dataset: { name: u.name } }, h("td", {}, u.name), h("td", {}, badge(u.role, "role")), h("td", { class: "time" }, created(u.created)), h("td", {}, button));
    }), "users"));
  }
  await load();
}
