// Admin: a restaurant's booking rules: how long each party size keeps its table (durations),
// tables pushed together for bigger parties (combinations), the covers that may start in one
// slot (pacing) and one booking per guest. Every change goes to the JSON API.

import { api } from "./api.js";
import { say } from "./messages.js";
import { el } from "./fmt.js";

const $ = (id) => document.getElementById(id);

function durationRow(n, rule = { max_party: "", minutes: "" }) {
  return el("div", { class: "inline-form duration-row" },
    el("div", { class: "field narrow" },
      el("label", { for: `du-party-${n}`, text: `Rule ${n}: parties up to` }),
      el("input", { id: `du-party-${n}`, class: "du-party", type: "number", min: "1", max: "50", value: String(rule.max_party), required: true })),
    el("div", { class: "field narrow" },
      el("label", { for: `du-minutes-${n}`, text: `Rule ${n}: minutes` }),
      el("input", { id: `du-minutes-${n}`, class: "du-minutes", type: "number", min: "15", max: "1440", value: String(rule.minutes), required: true })),
    el("button", { type: "button", class: "secondary small-btn remove-duration", "aria-label": `Remove rule ${n}`, text: "Remove" }));
}

function renumberDurations() {
  [...$("duration-rows").children].forEach((row, i) => {
    const rule = { max_party: row.querySelector(".du-party").value, minutes: row.querySelector(".du-minutes").value };
    row.replaceWith(durationRow(i + 1, rule));
  });
}

// `send(path, body, method)` posts with the admin token; `headers()` for reads; `current()` is
// the restaurant picked on the page; `changed(rid)` reloads the venue list.
export function rulesEditor({ send, headers, current, changed }) {
  let shown = null;

  async function showCombinations(rid) {
    const [tables, combos] = await Promise.all([
      api(`/v1/restaurants/${encodeURIComponent(rid)}/tables`),
      api(`/v1/restaurants/${encodeURIComponent(rid)}/combinations`, { headers: headers() }),
    ]);
    const list = tables.ok ? tables.data.tables : [];
    $("combo-tables").replaceChildren(...list.map((t) =>
      el("label", { class: "check" },
        el("input", { type: "checkbox", class: "combo-table", value: t.id }),
        ` ${t.label || t.id} (${t.capacity})`)));
    const items = combos.ok ? combos.data.combinations : [];
    $("combinations").replaceChildren(...items.map((c) =>
      el("li", { dataset: { id: c.id } },
        el("span", { text: `${c.id}: ${c.tables.join(" + ")}, seats ${c.capacity} ` }),
        el("button", { type: "button", class: "secondary small-btn remove-combo", "aria-label": `Remove combination ${c.id}`, text: "Remove" }))));
    $("combinations-empty").hidden = items.length > 0;
  }

  function show(restaurant) {
    shown = restaurant || null;
    $("rules").hidden = !shown;
    if (!shown) return;
    $("duration-rows").replaceChildren(...(shown.durations || []).map((rule, i) => durationRow(i + 1, rule)));
    $("du-slot-note").textContent = `Minutes must be a multiple of this restaurant's slot length (${shown.slot_minutes} minutes). A party above every rule keeps its table one slot.`;
    $("p-covers").value = String(shown.max_covers_per_slot || 0);
    $("p-one").checked = Boolean(shown.one_booking_per_guest);
    showCombinations(shown.id);
  }

  $("add-duration").addEventListener("click", () => {
    const row = durationRow($("duration-rows").children.length + 1);
    $("duration-rows").append(row);
    row.querySelector("input").focus();
  });
  $("duration-rows").addEventListener("click", (event) => {
    const button = event.target.closest(".remove-duration");
    if (!button) return;
    button.closest(".duration-row").remove();
    renumberDurations();
    $("add-duration").focus();
  });

  $("durations-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const restaurant = current();
    if (!restaurant) return;
    const rules = [...$("duration-rows").children].map((row) => ({
      max_party: Number(row.querySelector(".du-party").value),
      minutes: Number(row.querySelector(".du-minutes").value),
    }));
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}`, { durations: rules.length ? rules : null }, "PATCH");
    if (!result.ok) return;
    say(rules.length ? `Saved ${rules.length} duration ${rules.length === 1 ? "rule" : "rules"}.` : "Every booking lasts one slot again.", "success");
    changed(restaurant.id);
  });

  $("pacing-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const restaurant = current();
    if (!restaurant) return;
    const body = { max_covers_per_slot: Number($("p-covers").value || 0), one_booking_per_guest: $("p-one").checked };
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}`, body, "PATCH");
    if (!result.ok) return;
    say("Saved pacing and the one-booking rule.", "success");
    changed(restaurant.id);
  });

  $("combo-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const restaurant = current();
    if (!restaurant) return;
    const tables = [...document.querySelectorAll(".combo-table:checked")].map((box) => box.value);
    if (tables.length < 2 || tables.length > 4) {
      say("Pick 2 to 4 tables to push together.", "error");
      return;
    }
    const body = { tables, capacity: Number($("combo-capacity").value) };
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}/combinations`, body);
    if (!result.ok) return;
    say(`Combination ${result.data.id} (${result.data.tables.join(" + ")}) seats ${result.data.capacity}.`, "success");
    await showCombinations(restaurant.id);
  });

  $("combinations").addEventListener("click", async (event) => {
    const button = event.target.closest(".remove-combo");
    if (!button || !shown) return;
    const id = button.closest("li").dataset.id;
    const result = await send(`/v1/restaurants/${encodeURIComponent(shown.id)}/combinations/${encodeURIComponent(id)}`, undefined, "DELETE");
    if (!result.ok) return;
    say(`Removed combination ${id}.`, "success");
    await showCombinations(shown.id);
  });

  return { show };
}
