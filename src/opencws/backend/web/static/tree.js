// An event's process tree: the ancestors (from the event itself, root first), its process with its events,
// and the children and siblings seen on the same host around it, each with their events.

import { api } from "/ui/api.js";
import { h, when } from "/ui/dom.js";

function proc(p, cls, events = null) {
  const label = h("div", { class: `proc ${cls}` },
    h("span", { class: "pid" }, p.pid ?? "?"), " ", h("strong", {}, p.comm || (p.path || "").split("/").pop() || "?"), " ",
    h("span", { class: "path" }, p.path || ""),
    p.args && p.args.length ? h("div", { class: "args code" }, p.args.join(" ")) : null);
  // Events fold away (open for the event's own process): a busy process may have hundreds.
  const evs = events && events.length ? h("details", { class: "proc-events", open: cls === "self" },
    h("summary", {}, `${events.length} event${events.length > 1 ? "s" : ""}`),
    h("ul", {}, events.map((e) =>
      h("li", {}, h("span", { class: "time" }, when(e.date)), " ", h("span", { class: "type" }, e.type || ""), " ",
        e.file ? h("span", { class: "path" }, e.file) : null)))) : null;
  return h("li", { class: "node" }, label, evs);
}

export async function treeView({ main }, id) {
  main.append(h("p", { class: "muted" }, "Loading…"));
  const t = await api(`/api/v1/events/${id}/tree`);
  // Nested: each ancestor holds the next; the event's process holds its children; siblings sit beside it.
  const own = proc(t.process, "self", t.process.events);
  if (t.children.length) own.append(h("ul", { class: "children" }, t.children.map((c) => proc(c, "child", c.events))));
  const siblings = t.siblings.length ? h("li", { class: "node" }, h("details", { class: "siblings" },
    h("summary", {}, `${t.siblings.length} sibling process${t.siblings.length > 1 ? "es" : ""} (same parent)`),
    h("ul", { class: "tree" }, t.siblings.map((s) => proc(s, "sibling", s.events))))) : null;
  let level = h("ul", { class: "tree" }, own, siblings);
  for (const a of t.ancestors) {  // the parent first: each wraps the level below it
    const li = proc(a, "ancestor");
    li.append(level);
    level = h("ul", { class: "tree" }, li);
  }
  level.id = "process-tree";
  main.replaceChildren(
    h("h2", {}, "Process tree"),
    h("p", { class: "muted" }, `Event ${t.event.id} on ${t.event.host || "(no host)"} at ${when(t.event.date)}; `,
      "processes seen within an hour of it. ", h("a", { href: `#/events?event=${t.event.id}` }, "Back to the event")),
    level);
}
