// The API as the UI uses it: same-origin fetches with the session cookie, the CSRF token on every change,
// and one place that notices a session that ended (401) and sends the user back to sign in.

let csrf = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : (detail && (detail.text || detail.message)) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export function setSession(session) { csrf = session ? session.csrf : ""; }
export function whenSignedOut(fn) { onSignedOut = fn; }

// `body`: sent as JSON; `text` with `type`: sent as is (a YAML rule file).
export async function api(path, { method = "GET", params = null, body = undefined, text = undefined, type = "text/plain", quiet401 = false } = {}) {
  let url = path;
  if (params) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") qs.set(k, v);
    if ([...qs].length) url += "?" + qs.toString();
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (text !== undefined) headers["Content-Type"] = type;
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: text !== undefined ? text : body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (!r.ok) {
    const detail = data && "detail" in data ? data.detail : r.statusText;
    if (r.status === 401 && !quiet401) onSignedOut(typeof detail === "string" ? detail : "");
    throw new ApiError(r.status, Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail);
  }
  return data;
}
