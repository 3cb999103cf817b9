// The webhook's deliveries in one line (signals list, rules page): shown when some failed or are retrying,
// with the last error and a link to its signal, so that a broken receiver is noticed without reading metrics.

import { api } from "/ui/api.js";
import { h } from "/ui/dom.js";

export async function webhookSummary() {
  let hooks = [];
  try { hooks = (await api("/api/v1/webhooks")).webhooks; } catch { hooks = []; }
  const bad = hooks.filter((w) => w.failed > 0 || (w.pending > 0 && w.last_error));
  if (!bad.length) return h("div", { id: "webhook-summary", hidden: true });
  return h("div", { id: "webhook-summary", class: `message ${bad.some((w) => w.failed) ? "error" : "info"}`, role: "status" },
    bad.map((w) => h("div", { dataset: { url: w.url } },
      `Webhook ${w.url}: ${w.failed} failed (given up), ${w.pending} pending, ${w.delivered} delivered.`,
      w.last_error ? [" Last error: ", h("span", { class: "code webhook-error" }, w.last_error),
        w.last_error_signal ? [" (", h("a", { href: `#/signals/${encodeURIComponent(w.last_error_signal)}` }, "its signal"), ")"] : null] : null)));
}
