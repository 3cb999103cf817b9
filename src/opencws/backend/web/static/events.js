// The events explorer: a SECL search bar (a bad expression is shown with a caret under its place), a time
// range, facets of the matching events in that range, a page of results at a time (newest first, "More"
// follows the cursor), and the selected event's JSON with a link to its process tree.

import { api } from "/ui/api.js";
import { h, hashParams, message, setHashParams, table, when } from "/ui/dom.js";

const PAGE = 50;
const FACETS = [["evt.name", "Type"], ["process.file.path", "Executable"], ["process.user", "User"], ["container.id", "Container"]];
const RANGES = [["15m", "Last 15 minutes", 900], ["1h", "Last hour", 3600], ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 7 * 86400], ["30d", "Last 30 days", 30 * 86400], ["all", "All time", 0], ["custom", "Custom…", 0]];

function rangeOf(p) {
  const r = RANGES.find(([k]) => k === p.range) || RANGES[1];
  if (r[0] === "custom") return { from: p.from || "", to: p.to || "" };
  if (!r[2]) return { from: "", to: "" };
  return { from: new Date(Date.now() - r[2] * 1000).toISOString(), to: "" };
}

function quote(v) { return JSON.stringify(String(v)); }

function summary(hit) {
  const e = hit.event || {};
  const p = e.process || {};
  const file = e.file || {};
  const exe = (p.executable || {}).path || "";
  return {
    type: (e.evt || {}).name || "",
    process: `${p.comm || exe.split("/").pop() || "?"} [${p.pid ?? "?"}]`,
    path: file.path || (e.mount && e.mount.mountpoint && e.mount.mountpoint.path) || exe,
  };
}

export async function eventsView(ctx) {
  const { main } = ctx;
  const p = Object.fromEntries(hashParams());
  // The facets' cost grows with the range: an hour by default.
  const state = { q: p.q || "", range: p.range || "1h", from: p.from || "", to: p.to || "", selected: p.event || "" };

  const q = h("input", { id: "q", class: "code", spellcheck: false, autocomplete: "off", value: state.q,
    placeholder: 'SECL, e.g. exec.file.path == "/usr/bin/curl" && process.user != "root"' });
  const qError = h("div", { id: "q-error", class: "secl-error", hidden: true });
  const rangeSel = h("select", { id: "range" }, RANGES.map(([k, label]) => h("option", { value: k, selected: k === state.range }, label)));
  const from = h("input", { id: "from", class: "code", placeholder: "from (RFC 3339)", value: state.from });
  const to = h("input", { id: "to", class: "code", placeholder: "to (RFC 3339)", value: state.to });
  const custom = h("span", { class: "custom", hidden: state.range !== "custom" }, from, to);
  rangeSel.addEventListener("change", () => { custom.hidden = rangeSel.value !== "custom"; run(); });
  const form = h("form", { id: "search", class: "searchbar" }, h("div", { class: "q" }, q, qError), rangeSel, custom,
    h("button", { type: "submit", id: "search-submit" }, "Search"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });

  const facets = h("aside", { id: "facets", class: "facets" });
  const results = h("section", { id: "results", class: "results" });
  const detail = h("section", { id: "event-detail", class: "detail" });
  main.append(form, h("div", { class: "explorer" }, facets, results, detail));

  function showError(err) {
    const d = err.detail;
    if (err.status === 400 && d && typeof d === "object" && "caret" in d) {
      qError.replaceChildren(h("pre", { class: "caret" }, `${d.expression}\n${d.caret}`), h("div", { class: "why" }, d.message));
      qError.hidden = false;
      q.classList.add("invalid");
      if (typeof d.position === "number") { q.focus(); q.setSelectionRange(d.position, d.position + Math.max(1, d.caret.trim().length)); }
    } else {
      results.replaceChildren(message(err.message));
    }
  }

  async function select(id) {
    state.selected = id;
    save();
    for (const tr of results.querySelectorAll("tr[data-id]")) tr.classList.toggle("selected", tr.dataset.id === id);
    detail.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const hit = await api(`/api/v1/events/${id}`);
      detail.replaceChildren(
        h("div", { class: "detail-head" }, h("strong", {}, when(hit.date)), " ",
          h("a", { href: `#/events/${id}/tree`, id: "open-tree" }, "Process tree"), " ",
          h("button", { type: "button", class: "link", onclick: () => { detail.replaceChildren(); state.selected = ""; save(); } }, "Close")),
        h("dl", { class: "envelope" }, ["host", "rule_id", "policy", "agent_version"].filter((k) => hit[k]).map((k) => [h("dt", {}, k), h("dd", {}, hit[k])])),
        h("pre", { id: "event-json", class: "json" }, JSON.stringify(hit.event, null, 2)));
    } catch (e) {
      detail.replaceChildren(message(e.message));
    }
  }

  function rows(hits) {
    return hits.map((hit) => {
      const s = summary(hit);
      return h("tr", { dataset: { id: hit.id }, class: hit.id === state.selected ? "selected" : "", onclick: () => select(hit.id) },
        h("td", { class: "time" }, when(hit.date)), h("td", {}, s.type), h("td", {}, s.process),
        h("td", { class: "path" }, s.path), h("td", {}, hit.host || ""));
    });
  }

  function save() {
    setHashParams("events", { q: state.q, range: state.range, from: state.range === "custom" ? state.from : "",
      to: state.range === "custom" ? state.to : "", event: state.selected });
  }

  function addFilter(field, value) {
    const clause = `${field} == ${typeof value === "number" ? value : quote(value)}`;
    q.value = q.value.trim() ? `${q.value.trim()} && ${clause}` : clause;
    run();
  }

  async function loadFacets(params) {
    const boxes = await Promise.all(FACETS.map(async ([field, label]) => {
      try {
        const r = await api("/api/v1/facets", { params: { ...params, field, limit: 8 } });
        const items = r.values.map((v) => h("li", {},
          h("button", { type: "button", class: "link facet-value", title: `add ${field} == ${v.value}`, onclick: () => addFilter(field, v.value) },
            v.value === "" ? "(none)" : String(v.value)), h("span", { class: "count" }, v.count.toLocaleString("en"))));
        return h("div", { class: "facet", dataset: { field } }, h("h3", {}, label, r.complete ? "" : " ≈"),
          items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "none"));
      } catch (e) {
        return h("div", { class: "facet" }, h("h3", {}, label), h("p", { class: "muted" }, e.message));
      }
    }));
    facets.replaceChildren(...boxes);
  }

  async function run() {
    state.q = q.value;
    state.range = rangeSel.value;
    state.from = from.value.trim();
    state.to = to.value.trim();
    qError.hidden = true;
    q.classList.remove("invalid");
    save();
    const params = { q: state.q, ...rangeOf(state) };
    results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    delete results.dataset.pages;  // set once the page and the facets are shown: tests wait for it
    const facetsDone = loadFacets(params);  // alongside the search
    let page;
    try {
      page = await api("/api/v1/events", { params: { ...params, limit: PAGE } });
    } catch (e) {
      await facetsDone;
      facets.replaceChildren();
      results.replaceChildren();
      showError(e);
      results.dataset.pages = "0";
      return;
    }
    const body = h("tbody", {}, rows(page.events));
    const t = table(["Time (UTC)", "Type", "Process", "Path", "Host"], [], "events");
    t.tBodies[0].replaceWith(body);
    const more = h("button", { type: "button", id: "more", hidden: !page.next }, "More");
    let next = page.next;
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const r = await api("/api/v1/events", { params: { ...params, limit: PAGE, cursor: next } });
        body.append(...rows(r.events));
        next = r.next;
        more.hidden = !next;
        results.dataset.pages = String(Number(results.dataset.pages) + 1);
      } catch (e) { results.append(message(e.message)); }
      more.disabled = false;
    });
    results.replaceChildren(page.events.length ? t : h("p", { class: "muted", id: "no-results" }, "No event matches."), more);
    await facetsDone;
    results.dataset.pages = "1";
  }

  await run();
  if (state.selected) await select(state.selected);
}
