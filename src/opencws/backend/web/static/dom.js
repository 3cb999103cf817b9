// Building the page from data: every value goes in as text (textContent), never as HTML, since events carry
// whatever paths and arguments the watched machines had.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function table(headers, rows, cls = "") {
  return h("table", { class: cls },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows));
}

// "2026-12-01T10:00:00.123456789Z" → "2026-12-01 10:00:00.123" (UTC, as stored).
export function when(date) {
  if (!date) return "";
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(date);
  return m ? `${m[1]} ${m[2]}${m[3] || ""}` : date;
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind} ${kind}-${String(text).replace(/[^a-z_]/gi, "")}` }, text);
}

export function message(text, kind = "error") {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// Query string of a hash route ("#/events?q=..." → URLSearchParams).
export function hashParams() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : location.hash.slice(i + 1));
}

export function setHashParams(route, params) {
  const clean = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) clean.set(k, v);
  const qs = clean.toString();
  const target = `#/${route}${qs ? "?" + qs : ""}`;
  if (location.hash !== target) history.replaceState(null, "", target);
}
