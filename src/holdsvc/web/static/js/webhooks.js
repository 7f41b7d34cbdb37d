// A venue's webhooks (managers and admins): list them, create one (its signing secret is shown
// once, here), pause, resume or delete one, and show its recent deliveries. Mounted by the
// admin page for the venue picked there.

import { api } from "./api.js";
import { el } from "./fmt.js";

function when(text) {
  return text ? new Date(text).toLocaleString() : "";
}

// `root` holds .wh-list, .wh-form, .wh-new, .wh-deliveries; `base` is /v1/restaurants/{rid}
// or /v1/events/{eid}; `headers()` the bearer headers; `say`/`describe` the page's messages.
export function mountWebhooks({ root, base, headers, say, describe }) {
  const list = root.querySelector(".wh-list");
  // Mounting again (another venue picked) must not leave the last venue's listener behind.
  const form = root.querySelector(".wh-form").cloneNode(true);
  root.querySelector(".wh-form").replaceWith(form);
  const shown = root.querySelector(".wh-new");
  const log = root.querySelector(".wh-deliveries");
  shown.hidden = true;
  log.replaceChildren();

  async function deliveries(hook) {
    const result = await api(`${base}/webhooks/${encodeURIComponent(hook.id)}/deliveries`, { headers: headers() });
    if (!result.ok) {
      say(describe(result.problem), "error");
      return;
    }
    const rows = result.data.deliveries.map((d) =>
      el("tr", {},
        el("td", {}, when(d.at)),
        el("td", {}, d.event),
        el("td", {}, String(d.attempt)),
        el("td", {}, d.status_code === null ? "no answer" : String(d.status_code)),
        el("td", {}, d.error || "")));
    log.replaceChildren(
      el("h3", {}, `Recent deliveries to ${hook.url}`),
      rows.length
        ? el("table", { class: "wh-table" },
            el("thead", {}, el("tr", {}, ...["When", "Event", "Try", "Answer", "Error"].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, ...rows))
        : el("p", { class: "muted" }, "Nothing sent yet."));
  }

  async function act(path, options, done) {
    const result = await api(path, { ...options, headers: headers() });
    if (result.ok) say(done, "success");
    else say(describe(result.problem), "error");
    await load();
  }

  async function load() {
    const result = await api(`${base}/webhooks`, { headers: headers() });
    if (!result.ok) {
      list.replaceChildren(el("li", { class: "muted" }, describe(result.problem)));
      return;
    }
    const rows = result.data.webhooks.map((hook) => {
      const path = `${base}/webhooks/${encodeURIComponent(hook.id)}`;
      const show = el("button", { type: "button", class: "small" }, `Show deliveries to ${hook.url}`);
      show.addEventListener("click", () => deliveries(hook));
      const toggle = el("button", { type: "button", class: "small" }, hook.enabled ? `Pause ${hook.url}` : `Resume ${hook.url}`);
      toggle.addEventListener("click", () =>
        act(path, { method: "PATCH", body: { enabled: !hook.enabled } }, hook.enabled ? "Webhook paused." : "Webhook resumed."));
      const remove = el("button", { type: "button", class: "danger small" }, `Delete ${hook.url}`);
      remove.addEventListener("click", () => act(path, { method: "DELETE" }, "Webhook deleted."));
      const state = hook.enabled ? "active" : `paused${hook.disabled_reason ? ` (${hook.disabled_reason})` : ""}`;
      return el("li", { class: "wh-row" },
        el("span", {}, `${hook.url} · ${hook.events.length === 7 ? "all events" : hook.events.join(", ")} · ${state}`),
        show, toggle, remove);
    });
    list.replaceChildren(...(rows.length ? rows : [el("li", { class: "muted" }, "No webhooks yet.")]));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { url: form.elements.url.value.trim() };
    const events = form.elements.events.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (events.length) body.events = events;
    const description = form.elements.description.value.trim();
    if (description) body.description = description;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const made = await api(`${base}/webhooks`, { method: "POST", body, headers: headers() });
    button.disabled = false;
    if (!made.ok) {
      say(describe(made.problem), "error");
      return;
    }
    root.querySelector(".wh-secret").textContent = made.data.secret;
    shown.hidden = false;
    form.reset();
    say("Webhook created: copy its signing secret now, it is not shown again.", "success");
    await load();
  });

  return { load };
}
