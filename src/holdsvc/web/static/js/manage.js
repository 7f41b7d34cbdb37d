// A guest's own reservation: cancel it, or move it to another free time that fits the party.

import { api } from "./api.js";
import { describe, say } from "./messages.js";
import { clock, dayLabel } from "./fmt.js";

const root = document.getElementById("manage");
const reference = root.dataset.reference;
const token = new URLSearchParams(location.search).get("token") || "";
const headers = { "Manage-Token": token };
const path = `/v1/reservations/${encodeURIComponent(reference)}`;
const card = document.getElementById("reservation");
const moveSection = document.getElementById("move-section");
const moveForm = document.getElementById("move-search");
const moveSlots = document.getElementById("move-slots");
const cancelSection = document.getElementById("cancel-section");
const cancelButton = document.getElementById("cancel-btn");
const cancelBox = document.getElementById("cancel-confirm");

// Render the card again from the server (the same template as the page) after a change.
function reloadCard() {
  if (!window.htmx) return Promise.resolve();
  return window.htmx
    .ajax("GET", `/manage/${encodeURIComponent(reference)}/card`, {
      target: card,
      swap: "innerHTML",
      headers,
    })
    .then(showSections);
}

function showSections() {
  const details = card.querySelector(".details");
  const active = details && details.dataset.status === "confirmed";
  if (moveSection) moveSection.hidden = !active;
  cancelSection.hidden = !active;
  // A cancelled booking offers to book again.
  document.getElementById("again-section").hidden = !(details && details.dataset.status === "cancelled");
}

function refreshMoveSlots() {
  if (moveForm && window.htmx) window.htmx.trigger(moveForm, "refresh");
}

// A full day points to the next one with a free table: show it in place.
if (moveSlots) {
  moveSlots.addEventListener("click", (event) => {
    const link = event.target.closest(".next-link");
    if (!link) return;
    event.preventDefault();
    document.getElementById("move-date").value = link.dataset.date;
    refreshMoveSlots();
  });
}

cancelButton.addEventListener("click", () => {
  cancelBox.hidden = false;
  cancelButton.hidden = true;
  document.getElementById("cancel-yes").focus();
});

document.getElementById("cancel-no").addEventListener("click", () => {
  cancelBox.hidden = true;
  cancelButton.hidden = false;
  cancelButton.focus();
});

document.getElementById("cancel-yes").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  const result = await api(path, { method: "DELETE", headers });
  button.disabled = false;
  cancelBox.hidden = true;
  cancelButton.hidden = false;
  if (!result.ok) {
    say(describe(result.problem), "error");
    return;
  }
  await reloadCard();
  say(`Booking ${reference} is cancelled. We hope to see you another time.`, "success");
  document.getElementById("main").focus();
});

if (moveSlots) {
  moveSlots.addEventListener("click", async (event) => {
    const button = event.target.closest(".slot-btn");
    if (!button || button.disabled || !button.dataset.slot) return;
    const slot = button.dataset.slot;
    const all = moveSlots.querySelectorAll(".slot-btn");
    for (const b of all) b.disabled = true;
    button.setAttribute("aria-busy", "true");
    const result = await api(path, { method: "PATCH", body: { slot }, headers });
    button.removeAttribute("aria-busy");
    for (const b of all) b.disabled = false;
    if (!result.ok) {
      const overrides = {
        no_table_available: `Sorry, ${clock(slot)} was just taken by someone else. The free times are up to date again: please pick another.`,
        unit_unavailable: `Sorry, ${clock(slot)} was just taken by someone else. The free times are up to date again: please pick another.`,
      };
      say(describe(result.problem, overrides), "error");
      refreshMoveSlots();
      return;
    }
    document.getElementById("move-current").value = result.data.slot;
    await reloadCard();
    refreshMoveSlots();
    say(`Moved: your booking ${reference} is now on ${dayLabel(result.data.slot)} at ${clock(result.data.slot)}.`, "success");
  });
}

document.body.addEventListener("htmx:sendError", () => say(describe({ code: "network" }), "error"));
