// Event seats: a seat map (htmx fragment, refreshed), pick seats or the best N, then hold.

import { HoldPanel } from "./hold.js";
import { clearMessages, describe, say } from "./messages.js";
import { dayLabel, clock } from "./fmt.js";
import { gridKeys } from "./gridkeys.js";

const root = document.getElementById("booking");
const eid = root.dataset.venue;
const map = document.getElementById("seat-map");
const holdSelected = document.getElementById("hold-selected");
const selectedCount = document.getElementById("selected-count");
const bestForm = document.getElementById("best-form");
const bestCount = document.getElementById("best-count");
const maxHolds = Number(root.dataset.maxHolds);
const selected = new Set();

const seatNumber = (id) => id.replace(/^S/, "");
const seatList = (ids) => ids.map(seatNumber).join(", ");

function refreshMap() {
  if (window.htmx) window.htmx.trigger(map, "refresh");
}

function showSelection() {
  const n = selected.size;
  holdSelected.disabled = n === 0;
  holdSelected.textContent = n ? `Hold ${n} selected ${n === 1 ? "seat" : "seats"}` : "Hold selected seats";
  selectedCount.textContent = n
    ? `Selected: ${seatList([...selected].sort((a, b) => seatNumber(a) - seatNumber(b)))}`
    : "No seats selected";
}

// After every render of the map: keep the selection where the seat is still free.
function applySelection() {
  const lost = [];
  for (const id of [...selected]) {
    const seat = map.querySelector(`[data-seat="${id}"]`);
    if (!seat || !seat.classList.contains("available")) {
      selected.delete(id);
      lost.push(id);
    } else {
      seat.setAttribute("aria-pressed", "true");
      seat.classList.add("selected");
    }
  }
  if (lost.length) say(`Seat ${seatList(lost)} was just taken by someone else and is no longer selected.`, "warn");
  showSelection();
}

const keys = gridKeys(map, ".seat");
map.addEventListener("htmx:afterSettle", () => {
  applySelection();
  keys.refresh();
});
map.addEventListener("htmx:sendError", () => say(describe({ code: "network" }), "error"));

map.addEventListener("click", (event) => {
  const seat = event.target.closest(".seat");
  if (!seat) return;
  if (!seat.classList.contains("available")) {
    say(`Seat ${seatNumber(seat.dataset.seat)} is ${seat.classList.contains("held") ? "held by someone else right now" : "taken"}.`, "info");
    return;
  }
  const id = seat.dataset.seat;
  if (selected.has(id)) {
    selected.delete(id);
  } else {
    if (selected.size >= maxHolds) {
      say(`You can hold at most ${maxHolds} seats at once.`, "warn");
      return;
    }
    selected.add(id);
  }
  const on = selected.has(id);
  seat.setAttribute("aria-pressed", String(on));
  seat.classList.toggle("selected", on);
  keys.focus(seat);
  showSelection();
});

const panel = new HoldPanel({
  base: `/v1/events/${encodeURIComponent(eid)}/holds`,
  holdSeconds: Number(root.dataset.holdSeconds),
  maxHoldSeconds: Number(root.dataset.maxHoldSeconds),
  words: {
    thing: "seats",
    lapsed: "Your hold has lapsed, so the seats were released for others. Please choose again.",
    released: "Your seats were released. Choose again.",
  },
  onReturn: ({ refresh }) => {
    selected.clear();
    showSelection();
    if (refresh) refreshMap();
    bestCount.focus();
  },
  onDone: (reservation) => {
    const seats = reservation.seats || [];
    document.getElementById("done-summary").textContent =
      `${seats.length === 1 ? "Seat" : "Seats"} ${seatList(seats)} for ${root.dataset.venueName}, ` +
      `${dayLabel(reservation.starts_at)} at ${clock(reservation.starts_at)}, in the name of ${reservation.name}.`;
    selected.clear();
    showSelection();
    refreshMap();
  },
});

const OVERRIDES = {
  unit_unavailable: "Sorry, one of those seats was just taken by someone else. The seat map is up to date again: please choose again.",
  not_enough_seats: "Sorry, there are not that many free seats left. The seat map is up to date again.",
  hold_limit_reached: `You can hold at most ${maxHolds} seats at once (including any other holds you have open).`,
};

async function hold(body, busyButton) {
  busyButton.disabled = true;
  busyButton.setAttribute("aria-busy", "true");
  const count = body.seats ? body.seats.length : body.count;
  const result = await panel.place(body, `${count} ${count === 1 ? "seat" : "seats"} for ${root.dataset.venueName}`);
  busyButton.removeAttribute("aria-busy");
  busyButton.disabled = false;
  if (result.ok) {
    const seats = result.data.seats || [];
    document.getElementById("hold-summary").textContent =
      `${seats.length === 1 ? "Seat" : "Seats"} ${seatList(seats)} for ${root.dataset.venueName}`;
    return;
  }
  say(describe(result.problem, OVERRIDES), "error");
  showSelection();
  refreshMap();
}

holdSelected.addEventListener("click", () => {
  if (!selected.size) return;
  clearMessages();
  hold({ seats: [...selected] }, holdSelected);
});

bestForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const n = Number(bestCount.value);
  if (!Number.isInteger(n) || n < 1 || n > maxHolds) {
    bestCount.setAttribute("aria-invalid", "true");
    say(`Please ask for 1 to ${maxHolds} seats.`, "error");
    bestCount.focus();
    return;
  }
  bestCount.removeAttribute("aria-invalid");
  clearMessages();
  hold({ count: n }, document.getElementById("best-btn"));
});

keys.refresh();
showSelection();
