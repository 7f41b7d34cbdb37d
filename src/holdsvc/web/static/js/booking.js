// Guest booking of a restaurant table: free times (an htmx fragment), then the hold panel.

import { HoldPanel } from "./hold.js";
import { describe, say } from "./messages.js";
import { clock, dayLabel, number } from "./fmt.js";

const root = document.getElementById("booking");
const rid = root.dataset.venue;
// Only table labels reach the guest's page (no ids, counts or capacities).
const labels = JSON.parse(root.dataset.labels || "{}");
const searchForm = document.getElementById("search");
const slots = document.getElementById("slots");
let chosen = null;

function tableText(id) {
  return labels[id] ? ` (${labels[id]})` : "";
}

// "19:00–21:00": a booking lasts as long as the restaurant keeps a table for the party.
function span(slot, endsAt) {
  return endsAt ? `${clock(slot)}–${clock(endsAt)}` : clock(slot);
}

function refreshSlots() {
  if (window.htmx) window.htmx.trigger(searchForm, "refresh");
}

const panel = new HoldPanel({
  base: `/v1/restaurants/${encodeURIComponent(rid)}/holds`,
  holdSeconds: Number(root.dataset.holdSeconds),
  maxHoldSeconds: Number(root.dataset.maxHoldSeconds),
  words: { thing: "table" },
  onReturn: ({ refresh }) => {
    if (refresh) refreshSlots();
    const again = chosen && slots.querySelector(`[data-slot="${chosen}"]`);
    (again || document.getElementById("date")).focus();
  },
  onDone: (reservation) => {
    document.getElementById("done-summary").textContent =
      `A table for ${number(reservation.party_size)} on ${dayLabel(reservation.slot)} at ${span(reservation.slot, reservation.ends_at)}` +
      `${tableText(reservation.table_id)}, in the name of ${reservation.name}.`;
  },
});

// Codes after which the list is out of date: fetch it again.
const STALE = new Set(["unit_unavailable", "no_table_available", "slot_in_past", "outside_booking_window", "bookings_paused", "not_found"]);

// A full day points to the next one with a free table: show it in place.
slots.addEventListener("click", (event) => {
  const link = event.target.closest(".next-link");
  if (!link) return;
  event.preventDefault();
  document.getElementById("date").value = link.dataset.date;
  refreshSlots();
});

slots.addEventListener("click", async (event) => {
  const button = event.target.closest(".slot-btn");
  if (!button || button.disabled) return;
  const slot = button.dataset.slot;
  const party = Number(button.dataset.party);
  chosen = slot;
  const all = slots.querySelectorAll(".slot-btn");
  for (const b of all) b.disabled = true;
  button.setAttribute("aria-busy", "true");
  const summary = `A table for ${party} on ${dayLabel(slot)} at ${span(slot, button.dataset.ends)}`;
  const result = await panel.place({ slot, party_size: party }, summary);
  button.removeAttribute("aria-busy");
  for (const b of all) b.disabled = false;
  if (result.ok) {
    const held = result.data;
    const where = (held.table_ids || [held.table_id]).map(tableText).join("");
    document.getElementById("hold-summary").textContent = `${summary}${where}.`;
    return;
  }
  const code = result.problem.code;
  const overrides = {
    unit_unavailable: `Sorry, the ${clock(slot)} table was just taken by someone else. The free times below are up to date: please pick another.`,
    no_table_available: `Sorry, ${clock(slot)} was just taken by someone else: no table for ${party} is left then. The free times below are up to date: please pick another.`,
    bookings_paused: `The restaurant has just paused online booking. Please call ${root.dataset.phone} or try again later.`,
    slot_in_past: `${clock(slot)} has already started. The list below is up to date: please pick a later time.`,
  };
  say(describe(result.problem, overrides), "error");
  if (STALE.has(code)) refreshSlots();
});

// htmx answers errors with a fragment (swapped in); a network failure needs our own words.
document.body.addEventListener("htmx:sendError", () => say(describe({ code: "network" }), "error"));
