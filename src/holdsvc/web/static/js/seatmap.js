// A seat-map event: the map is drawn here from compact JSON (/e/{eid}/map: one character a
// seat), not sent as HTML; pick seats on it, or ask for the best N (together, in a section).

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
const bestSection = document.getElementById("best-section");
const bestTogether = document.getElementById("best-together");
const freeCount = document.getElementById("free-count");
const maxHolds = Number(root.dataset.maxHolds);
const selected = new Set();
const STATES = { ".": "available", h: "held", r: "reserved" };

// "A-3-12" -> "A row 3 seat 12"
function seatName(id) {
  const [section, row, n] = id.split("-");
  return `${section} row ${row} seat ${n}`;
}
const seatList = (ids) => ids.map(seatName).join(", ");

function showSelection() {
  const n = selected.size;
  holdSelected.disabled = n === 0;
  holdSelected.textContent = n ? `Hold ${n} selected ${n === 1 ? "seat" : "seats"}` : "Hold selected seats";
  selectedCount.textContent = n ? `Selected: ${seatList([...selected])}` : "No seats selected";
}

function seatButton(id, state, n) {
  const seat = document.createElement("button");
  seat.type = "button";
  seat.className = `seat ${STATES[state]}`;
  seat.dataset.seat = id;
  seat.dataset.key = id;
  seat.textContent = n;
  if (state === ".") seat.setAttribute("aria-pressed", String(selected.has(id)));
  else seat.setAttribute("aria-disabled", "true");
  seat.setAttribute("aria-label", `${seatName(id)}, ${state === "." ? "available" : state === "h" ? "held" : "taken"}`);
  if (state === "." && selected.has(id)) seat.classList.add("selected");
  return seat;
}

function drawSection(section) {
  const box = document.createElement("section");
  box.className = `map-section ${section.kind}`;
  box.dataset.section = section.id;
  const title = document.createElement("h3");
  title.textContent = `${section.name} · ${section.available} of ${section.capacity} free`;
  box.append(title);
  if (section.kind === "ga") {
    const counter = document.createElement("p");
    counter.className = "ga-counter";
    counter.dataset.gaSection = section.id;
    counter.textContent = `Standing: ${section.available} places left`;
    box.append(counter);
    return box;
  }
  for (const [row, states] of section.rows) {
    const line = document.createElement("div");
    line.className = "map-row";
    line.setAttribute("role", "group");
    line.setAttribute("aria-label", `${section.name}, row ${row}`);
    const label = document.createElement("span");
    label.className = "row-label";
    label.textContent = row;
    line.append(label);
    for (let i = 0; i < states.length; i++) {
      line.append(seatButton(`${section.id}-${row}-${i + 1}`, states[i], i + 1));
    }
    box.append(line);
  }
  return box;
}

const keys = gridKeys(map, ".seat");

async function loadMap() {
  let data;
  try {
    const answer = await fetch(`/e/${encodeURIComponent(eid)}/map`, { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(String(answer.status));
    data = await answer.json();
  } catch {
    say(describe({ code: "network" }), "error");
    return;
  }
  const parts = [map.querySelector(".stage")];
  let free = 0;
  const lost = [];
  const stillFree = new Set();
  for (const section of data.sections) {
    free += section.available;
    if (section.rows) {
      for (const [row, states] of section.rows) {
        for (let i = 0; i < states.length; i++) if (states[i] === ".") stillFree.add(`${section.id}-${row}-${i + 1}`);
      }
    }
  }
  for (const id of [...selected]) {
    if (!stillFree.has(id)) {
      selected.delete(id);
      lost.push(id);
    }
  }
  for (const section of data.sections) parts.push(drawSection(section));
  map.replaceChildren(...parts);
  map.removeAttribute("aria-busy");
  freeCount.textContent = String(free);
  if (lost.length) say(`${seatList(lost)} was just taken by someone else and is no longer selected.`, "warn");
  keys.refresh();
  showSelection();
}

map.addEventListener("click", (event) => {
  const seat = event.target.closest(".seat");
  if (!seat) return;
  const id = seat.dataset.seat;
  if (!seat.classList.contains("available")) {
    say(`${seatName(id)} is ${seat.classList.contains("held") ? "held by someone else right now" : "taken"}.`, "info");
    return;
  }
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

function heldWords(hold) {
  if (hold.ga) return `${hold.ga.count} standing ${hold.ga.count === 1 ? "place" : "places"} (${hold.ga.section})`;
  const seats = hold.seats || [];
  return `${seats.length === 1 ? "Seat" : "Seats"} ${seatList(seats)}`;
}

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
    if (refresh) loadMap();
    bestCount.focus();
  },
  onDone: (reservation) => {
    document.getElementById("done-summary").textContent =
      `${heldWords(reservation)} for ${root.dataset.venueName}, ` +
      `${dayLabel(reservation.starts_at)} at ${clock(reservation.starts_at)}, in the name of ${reservation.name}.`;
    selected.clear();
    showSelection();
    loadMap();
  },
});

const OVERRIDES = {
  unit_unavailable: "Sorry, one of those seats was just taken by someone else. The seat map is up to date again: please choose again.",
  not_enough_seats: "Sorry, there are not that many free places left there. The seat map is up to date again.",
  not_enough_together: "Sorry, there are not that many seats together in one row any more. Try fewer seats, or untick \u201cSeats together\u201d.",
  hold_limit_reached: `You can hold at most ${maxHolds} seats at once (including any other holds you have open).`,
};

async function hold(body, busyButton) {
  busyButton.disabled = true;
  busyButton.setAttribute("aria-busy", "true");
  const count = body.seats ? body.seats.length : body.count;
  const result = await panel.place(body, `${count} ${count === 1 ? "place" : "places"} for ${root.dataset.venueName}`);
  busyButton.removeAttribute("aria-busy");
  busyButton.disabled = false;
  if (result.ok) {
    document.getElementById("hold-summary").textContent = `${heldWords(result.data)} for ${root.dataset.venueName}`;
    loadMap();
    return;
  }
  say(describe(result.problem, OVERRIDES), "error");
  showSelection();
  loadMap();
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
  const body = { count: n };
  if (bestSection.value) body.section = bestSection.value;
  if (!bestTogether.checked) body.together = false;
  hold(body, document.getElementById("best-btn"));
});

setInterval(() => {
  if (!document.hidden) loadMap();
}, 20000);
loadMap();
showSelection();
