// Admin: a restaurant's week of services, its rolling grid (days ahead) and its closures, with
// the guests to call when a closure keeps booked slots. Every change goes to the JSON API.

import { api } from "./api.js";
import { say } from "./messages.js";
import { clock, el, shortDay } from "./fmt.js";

const DAYS = [
  ["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"],
];
const MAX_SERVICES = 4;
const $ = (id) => document.getElementById(id);

function span(from, to) {
  return from === to ? shortDay(from) : `${shortDay(from)} – ${shortDay(to)}`;
}

// Labels say which day and which service an input is, so each is reachable by name.
function renumber(row) {
  const name = row.dataset.name;
  const services = [...row.querySelectorAll(".service")];
  services.forEach((service, i) => {
    service.querySelector(".svc-opens").setAttribute("aria-label", `${name} service ${i + 1} opens`);
    service.querySelector(".svc-closes").setAttribute("aria-label", `${name} service ${i + 1} closes`);
    service.querySelector(".remove-service").setAttribute("aria-label", `Remove ${name} service ${i + 1}`);
  });
  row.querySelector(".closed-note").hidden = services.length > 0;
  row.querySelector(".add-service").disabled = services.length >= MAX_SERVICES;
}

function serviceItem({ opens, closes }) {
  return el("div", { class: "service" },
    el("input", { type: "time", class: "svc-opens", value: opens, required: true }),
    el("span", { "aria-hidden": "true", text: "–" }),
    el("input", { type: "time", class: "svc-closes", value: closes, required: true }),
    el("button", { type: "button", class: "secondary small-btn remove-service", text: "Remove" }));
}

function dayRow(key, name, services) {
  const list = el("div", { class: "services" }, ...services.map(serviceItem));
  const row = el("tr", { dataset: { day: key, name } },
    el("th", { scope: "row", text: name }),
    el("td", {},
      list,
      el("p", { class: "muted small closed-note", text: "Closed" }),
      el("button", { type: "button", class: "secondary small-btn add-service", "aria-label": `Add service on ${name}`, text: "Add service" })));
  renumber(row);
  return row;
}

function readWeek() {
  const schedule = {};
  for (const row of $("week-rows").querySelectorAll("tr")) {
    schedule[row.dataset.day] = [...row.querySelectorAll(".service")].map((service) => ({
      opens: service.querySelector(".svc-opens").value,
      closes: service.querySelector(".svc-closes").value,
    }));
  }
  return schedule;
}

// `send(path, body, method)` calls the API as the admin (and says why it failed);
// `current()` is the restaurant picked in step 2; `changed(rid)` reloads the venues.
export function scheduleEditor({ send, headers, current, changed }) {
  async function showClosures(rid) {
    const result = await api(`/v1/restaurants/${encodeURIComponent(rid)}/closures`);
    const closures = result.ok ? result.data.closures : [];
    $("closures").replaceChildren(...closures.map((c) => el("li", { class: "closure" },
      el("span", { text: `Closed ${span(c.from, c.to)}${c.reason ? `: ${c.reason}` : ""}` }),
      " ",
      el("button", { type: "button", class: "secondary small-btn reopen", dataset: { from: c.from }, "aria-label": `Reopen from ${shortDay(c.from)}`, text: "Reopen" }))));
  }

  // The booked slots a closure kept, with the guests to call (a slot held online right now has
  // no contact yet: its hold lapses or becomes a reservation within minutes).
  async function showKept(rid, from, to, kept) {
    if (!kept.length) {
      $("kept").replaceChildren();
      return;
    }
    const query = new URLSearchParams({ from, to });
    const result = await api(`/v1/restaurants/${encodeURIComponent(rid)}/reservations?${query}`, { headers: headers() });
    const bySlot = new Map();
    for (const r of result.ok ? result.data.reservations : []) {
      if (r.status === "cancelled") continue;
      bySlot.set(r.slot, [...(bySlot.get(r.slot) || []), r]);
    }
    const items = kept.flatMap((slot) => {
      const when = el("strong", { text: `${shortDay(slot)} ${clock(slot)}` });
      const guests = bySlot.get(slot) || [];
      if (!guests.length) return [el("li", {}, when, " · held online right now, no contact yet")];
      return guests.map((r) => el("li", { class: "kept-guest" }, when.cloneNode(true),
        ` · ${r.name} · party of ${r.party_size} · `,
        el("a", { href: `tel:${r.phone}`, text: r.phone }),
        ` · ${r.reference}`));
    });
    const count = kept.length === 1 ? "1 booked slot was" : `${kept.length} booked slots were`;
    $("kept").replaceChildren(el("div", { class: "notice warn" },
      el("p", { text: `${count} kept on the closed dates. Call these guests:` }),
      el("ul", { class: "kept-list" }, ...items)));
  }

  function show(restaurant) {
    const rows = $("week-rows");
    if (!restaurant) {
      rows.replaceChildren();
      $("closures").replaceChildren();
      return;
    }
    const everyDay = [{ opens: restaurant.opens, closes: restaurant.closes }];
    const week = restaurant.schedule;
    rows.replaceChildren(...DAYS.map(([key, name]) =>
      dayRow(key, name, week ? week[key] || [] : everyDay)));
    $("h-days").value = String(restaurant.horizon_days);
    $("kept").replaceChildren();
    showClosures(restaurant.id);
  }

  $("week-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (event.target.closest(".add-service")) {
      const services = row.querySelector(".services");
      services.append(serviceItem({ opens: "18:00", closes: "22:00" }));
      renumber(row);
      services.lastElementChild.querySelector("input").focus();
    } else if (event.target.closest(".remove-service")) {
      event.target.closest(".service").remove();
      renumber(row);
      row.querySelector(".add-service").focus();
    }
  });

  $("schedule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const restaurant = current();
    if (!restaurant) return say("Pick a restaurant first.", "error");
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}`, { schedule: readWeek() }, "PATCH");
    if (!result.ok) return;
    say(`Saved the week of ${restaurant.name}. New slots follow it.`, "success");
    await changed(restaurant.id);
  });

  $("clear-schedule").addEventListener("click", async () => {
    const restaurant = current();
    if (!restaurant) return say("Pick a restaurant first.", "error");
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}`, { schedule: null }, "PATCH");
    if (!result.ok) return;
    say(`${restaurant.name} opens ${restaurant.opens}–${restaurant.closes} every day again.`, "success");
    await changed(restaurant.id);
  });

  $("horizon-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const restaurant = current();
    if (!restaurant) return say("Pick a restaurant first.", "error");
    const days = Number($("h-days").value);
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}`, { horizon_days: days }, "PATCH");
    if (!result.ok) return;
    say(days ? `Slots are kept ${days} days ahead from now on (filled within a minute).` : "The rolling grid is off.", "success");
    await changed(restaurant.id);
  });

  $("closure-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const restaurant = current();
    if (!restaurant) return say("Pick a restaurant first.", "error");
    const from = $("c-from").value;
    const to = $("c-to").value || from;
    const body = { from, to };
    const reason = $("c-reason").value.trim();
    if (reason) body.reason = reason;
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}/closures`, body);
    if (!result.ok) return;
    const { removed, kept } = result.data;
    const keptText = kept.length ? ` ${kept.length} booked ${kept.length === 1 ? "slot stays" : "slots stay"}: see below.` : "";
    say(`Closed ${span(from, to)}: removed ${removed} free ${removed === 1 ? "slot" : "slots"}.${keptText}`, kept.length ? "warn" : "success");
    form.reset();
    await showKept(restaurant.id, from, to, kept);
    await showClosures(restaurant.id);
  });

  $("closures").addEventListener("click", async (event) => {
    const button = event.target.closest(".reopen");
    const restaurant = current();
    if (!button || !restaurant) return;
    const from = button.dataset.from;
    const result = await send(`/v1/restaurants/${encodeURIComponent(restaurant.id)}/closures/${from}`, undefined, "DELETE");
    if (!result.ok) return;
    say(`Reopened from ${shortDay(from)}: its slots come back with the next grid or the rolling grid.`, "success");
    await showClosures(restaurant.id);
  });

  return { show };
}
