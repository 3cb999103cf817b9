// Sign-in: a user's name and password, or a read/admin API key.

import { api } from "/ui/api.js";
import { h, message } from "/ui/dom.js";

export function signInView(main, reason, done) {
  let withKey = false;
  const user = h("input", { id: "signin-user", name: "user", autocomplete: "username", required: true });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password" });
  const key = h("input", { id: "signin-key", name: "key", type: "password", autocomplete: "off", placeholder: "ocws_…" });
  const status = h("div", { id: "signin-message" }, reason ? message(reason, "info") : null);
  const userFields = h("div", {}, h("label", {}, "User", user), h("label", {}, "Password", password));
  const keyFields = h("div", { hidden: true }, h("label", {}, "API key (read or admin scope)", key));
  const toggle = h("button", { type: "button", class: "link", id: "signin-toggle" }, "Sign in with an API key instead");
  toggle.addEventListener("click", () => {
    withKey = !withKey;
    userFields.hidden = withKey;
    keyFields.hidden = !withKey;
    user.required = !withKey;
    toggle.textContent = withKey ? "Sign in with a user name and password" : "Sign in with an API key instead";
  });
  const button = h("button", { type: "submit", id: "signin-submit" }, "Sign in");
  const form = h("form", { class: "signin", id: "signin-form" },
    h("h1", {}, "OpenCWS"), status, userFields, keyFields, button, toggle);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      const body = withKey ? { key: key.value } : { user: user.value, password: password.value };
      const session = await api("/api/v1/session", { method: "POST", body, quiet401: true });
      done(session);
    } catch (e) {
      status.replaceChildren(message(e.message));
      password.value = "";
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  (withKey ? key : user).focus();
}
