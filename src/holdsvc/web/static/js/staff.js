// Staff page: reservations of a date range (searchable by phone), the slot × table grid, both
// kept live from the change feed; cancel, move, notes and tags, no-show, pause, phone
// bookings. The last synced data is kept in IndexedDB, so the page stays readable offline.

import { api, apiAll, bearer } from "./api.js";
import { clearMessages, describe, say } from "./messages.js";
import { addDays, clock, dayLabel, el, number, shortDay, todayIn } from "./fmt.js";
import { forgetToken, login } from "./auth.js";
import * as store from "./store.js";
import { readEvents } from "./sse.js";
import { gridKeys } from "./gridkeys.js";
import { mountStaffTokens } from "./stafftokens.js";
import { mountWaitlist } from "./staffwaitlist.js";

const CACHE = "holdsvc-staff-v1";
const HEARTBEAT_TIMEOUT_MS = 40000;
const root = document.getElementById("staff");
const rid = root.dataset.rid;
const zone = root.dataset.timezone;
const V = `/v1/restaurants/${encodeURIComponent(rid)}`;
const $ = (id) => document.getElementById(id);
const STATUS_WORDS = { confirmed: "Confirmed", seated: "Seated", cancelled: "Cancelled", no_show: "No-show", completed: "Completed" };
// What the activity feed says a status change did.
const STATUS_CHANGES = { confirmed: "back to confirmed", seated: "seated", completed: "completed", no_show: "no-show" };
// Guests expected or served: a cancelled booking or a no-show brings nobody.
const COVER_STATUSES = new Set(["confirmed", "seated", "completed"]);
const WEEKDAY_KEYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const CELL_WORDS = { available: "Free", held: "Held", reserved: "Reserved" };

const state = {
  token: null,
  restaurant: null,
  tables: [],
  range: null,
  reservations: [],
  gridDay: null,
  slots: [],
  dayReservations: [],
  lastId: null,
  syncedAt: null,
  online: null,
  selected: null,
};

const auth = login({
  check: async (token) => {
    const today = todayIn(zone);
    return api(`${V}/reservations?from=${today}&to=${today}`, { headers: bearer(token) });
  },
  start: (token) => start(token),
  say,
  describe,
});

function headers(extra = {}) {
  return { ...bearer(state.token), ...extra };
}

// The waitlist of the day shown, read again with everything else on each feed change.
const waitlist = mountWaitlist({ root: $("waitlist"), base: V, headers });

function signOut(message) {
  live.stop();
  state.token = null;
  forgetToken();
  auth.show();
  if (message) say(message, "error");
}

// -- data ---------------------------------------------------------------------------------

// The reservation whose booking covers this cell: it starts in this slot or an earlier one and
// ends after this slot starts (a booking of several slots), on this table or on a table of its
// combination. Slot ids and API times are local wall-clock text, so they compare as text.
function reservationAt(slot, table) {
  return state.dayReservations.find(
    (r) =>
      r.status !== "cancelled" &&
      (r.table_ids || [r.table_id]).includes(table) &&
      r.slot <= slot &&
      (r.slot === slot || (r.ends_at && slot < r.ends_at.slice(0, 16))),
  );
}

function findReservation(reference) {
  return (
    state.reservations.find((r) => r.reference === reference) ||
    state.dayReservations.find((r) => r.reference === reference) ||
    null
  );
}

function tableName(id) {
  const table = state.tables.find((t) => t.id === id);
  if (!table) return id || "";
  return `${table.label || table.id} (${table.capacity})`;
}

// The feed's position now (`since=$`), read *before* the lists: every change after it is
// replayed onto them, so none made while they were read is missed (replaying one is harmless).
async function currentPosition() {
  const answer = await api(`${V}/changes?since=%24`, { headers: headers() });
  return answer.ok ? answer.data.last_id || "0-0" : null;
}

async function persist() {
  await store.save(rid, {
    restaurant: state.restaurant,
    tables: state.tables,
    range: state.range,
    reservations: state.reservations,
    gridDay: state.gridDay,
    slots: state.slots,
    dayReservations: state.dayReservations,
    lastId: state.lastId,
    syncedAt: state.syncedAt,
  });
}

let syncing = null;
let syncAgain = false;
let syncTimer = null;

function scheduleSync(delay = 250) {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(() => sync(), delay);
}

// Read everything the page shows; on success render and keep it in IndexedDB.
async function sync() {
  if (!state.token || !state.range || !state.gridDay) return false;
  if (syncing) {
    syncAgain = true;
    return syncing;
  }
  syncing = (async () => {
    const asked = { from: state.range.from, to: state.range.to, gridDay: state.gridDay };
    const position = state.lastId ? null : await currentPosition();
    const range = new URLSearchParams({ from: asked.from, to: asked.to });
    const day = new URLSearchParams({ from: asked.gridDay, to: asked.gridDay });
    const results = await Promise.all([
      api(V, { headers: headers() }),
      api(`${V}/tables`, { headers: headers() }),
      apiAll(`${V}/reservations?${range}`, "reservations", { headers: headers() }),
      apiAll(`${V}/slots?${day}`, "slots", { headers: headers() }),
      apiAll(`${V}/reservations?${day}`, "reservations", { headers: headers() }),
    ]);
    const failed = results.find((r) => !r.ok);
    if (failed) {
      const code = failed.problem.code;
      if (code === "unauthorized") signOut("The admin token is no longer accepted. Please sign in again.");
      else if (code === "network" || code === "unavailable") setOnline(false);
      else say(describe(failed.problem), "error");
      return false;
    }
    if (asked.from !== state.range.from || asked.to !== state.range.to || asked.gridDay !== state.gridDay) {
      syncAgain = true; // the staff asked for other days meanwhile: read those instead
      return false;
    }
    const [restaurant, tables, list, grid, dayList] = results;
    state.restaurant = restaurant.data;
    state.tables = tables.data.tables;
    state.reservations = list.data.reservations;
    state.slots = grid.data.slots;
    state.dayReservations = dayList.data.reservations;
    state.syncedAt = Date.now();
    if (!state.lastId && position) state.lastId = position;
    render();
    waitlist.load(state.slots.map((s) => s.slot));
    await persist();
    return true;
  })();
  try {
    return await syncing;
  } finally {
    syncing = null;
    if (syncAgain) {
      syncAgain = false;
      scheduleSync(0);
    }
  }
}

// -- the change feed, read with fetch() --------------------------------------------------

const live = {
  running: false,
  controller: null,
  backoff: 1000,
  lastActivity: 0,
  wakeUp: null,
  watchdog: null,

  start() {
    if (this.running) return;
    this.running = true;
    this.watchdog = setInterval(() => {
      if (this.controller && performance.now() - this.lastActivity > HEARTBEAT_TIMEOUT_MS) this.controller.abort();
    }, 5000);
    this.loop();
  },

  stop() {
    this.running = false;
    clearInterval(this.watchdog);
    if (this.controller) this.controller.abort();
    this.wake();
  },

  wake() {
    if (this.wakeUp) this.wakeUp();
  },

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  },

  async loop() {
    while (this.running) {
      const clean = await this.connect();
      if (!this.running) return;
      await this.sleep(clean ? 250 : this.backoff);
      if (!clean) this.backoff = Math.min(this.backoff * 2, 5000);
    }
  },

  // One connection: resumes after the last event seen (Last-Event-ID). True when the server
  // ended the stream itself, false when it failed.
  async connect() {
    // The stream starts where freshly read data ends (set by sync), never at the feed's start.
    if (!state.lastId && !(await sync())) return false;
    const controller = new AbortController();
    this.controller = controller;
    this.lastActivity = performance.now();
    const extra = { Accept: "text/event-stream" };
    if (state.lastId) extra["Last-Event-ID"] = state.lastId;
    let response;
    try {
      response = await fetch(`${V}/changes`, { headers: headers(extra), signal: controller.signal, cache: "no-store" });
    } catch {
      setOnline(false);
      return false;
    }
    if (response.status === 401) {
      signOut("The admin token is no longer accepted. Please sign in again.");
      return false;
    }
    if (!response.ok) {
      if (response.status === 400 && state.lastId) state.lastId = null; // a position we cannot use
      setOnline(false);
      return false;
    }
    this.backoff = 1000;
    const wasOffline = state.online === false;
    setOnline(true);
    if (wasOffline) {
      say("Back online: catching up with what changed.", "info");
      scheduleSync(0);
    }
    try {
      await readEvents(response, {
        onEvent: onChange,
        onActivity: () => {
          this.lastActivity = performance.now();
        },
        signal: controller.signal,
      });
      return true;
    } catch {
      if (this.running) setOnline(false);
      return false;
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  },
};

const CELL_AFTER = {
  held: "held",
  refreshed: "held",
  offered: "held",
  released: "available",
  expired: "available",
  cancelled: "available",
  confirmed: "reserved",
};

function onChange(message) {
  if (message.id) state.lastId = message.id;
  if (message.type === "reset") {
    let body = {};
    try {
      body = JSON.parse(message.data);
    } catch {
      // keep the empty body
    }
    state.lastId = body.last_id || null;
    say("The live feed skipped ahead: reloading all the data.", "warn");
    scheduleSync(0);
    return;
  }
  let change;
  try {
    change = JSON.parse(message.data);
  } catch {
    return;
  }
  const cells = change.cells || [];
  if (change.event === "changed") {
    if (cells.length >= 2) {
      setCellStatus(cells[0], "available");
      setCellStatus(cells[cells.length - 1], "reserved");
    }
  } else if (CELL_AFTER[change.event]) {
    for (const cell of cells) setCellStatus(cell, CELL_AFTER[change.event]);
  }
  logActivity(change);
  scheduleSync(300);
}

function setCellStatus(cell, status) {
  const button = $("grid").querySelector(`[data-key="${CSS.escape(`${cell.slot}|${cell.unit}`)}"]`);
  if (!button) return;
  paintCell(button, cell.slot, cell.unit, status, null);
}

const ACTIVITY = {
  held: "A guest is holding",
  released: "A hold was released:",
  expired: "A hold lapsed:",
  confirmed: "New booking",
  cancelled: "Cancelled",
  changed: "Changed",
  waitlisted: "A guest joined the waitlist:",
  offered: "A freed table was offered to the waitlist:",
  waitlist_left: "A guest left the waitlist",
};

// The activity list starts where this page's data started: changes replayed from just before
// the lists were read (see currentPosition) do not fill it with old news.
let logFloor = Date.now();

// What a `changed` entry did, in words: "moved 19:00 → 20:00", "no-show", "details changed".
function changeWords(change) {
  const cells = change.cells || [];
  const parts = [];
  if (change.status) parts.push(STATUS_CHANGES[change.status] || change.status);
  if (cells.length >= 2) {
    const from = cells[0];
    const to = cells[cells.length - 1];
    if (from.slot !== to.slot) {
      const day = from.slot.slice(0, 10) === to.slot.slice(0, 10) ? "" : `${shortDay(to.slot)} `;
      parts.push(`moved ${clock(from.slot)} → ${day}${clock(to.slot)}`);
    }
    if (from.unit !== to.unit) parts.push(`table ${tableName(from.unit)} → ${tableName(to.unit)}`);
  }
  return parts.length ? parts.join(", ") : "details changed";
}

function logActivity(change) {
  const text = ACTIVITY[change.event];
  if (!text || Date.parse(change.at) < logFloor - 1000) return;
  let line;
  if (change.event === "changed") {
    const first = (change.cells || [])[0];
    const when = first ? ` (${shortDay(first.slot)} ${clock(first.slot)})` : "";
    line = `${change.reference}${when}: ${changeWords(change)}`;
  } else {
    const where = (change.cells || []).map((c) => `${shortDay(c.slot)} ${clock(c.slot)} ${tableName(c.unit)}`).join(" → ");
    line = `${text}${change.reference ? ` ${change.reference}` : ""} ${where}`;
  }
  const item = el("li", {}, el("span", { class: "muted", text: clock(change.at) }), " ", line);
  const log = $("activity");
  log.prepend(item);
  while (log.children.length > 20) log.lastElementChild.remove();
}

function setOnline(online) {
  state.online = online;
  const conn = $("conn");
  conn.classList.toggle("offline", !online);
  conn.classList.toggle("online", online);
  $("conn-text").textContent = online
    ? "Live: changes appear as they happen"
    : "Offline: showing the data as last synced; reconnecting…";
  showSynced();
}

function showSynced() {
  const box = $("synced");
  if (!state.syncedAt) {
    box.textContent = "Not synced yet";
    return;
  }
  const at = new Date(state.syncedAt);
  const time = at.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const day = at.toLocaleDateString("en-GB", { day: "numeric", month: "short" });
  box.textContent = `Last synced at ${time}, ${day}`;
  box.dataset.syncedAt = String(state.syncedAt);
}

// -- rendering ------------------------------------------------------------------------------

function render() {
  renderBookingsState();
  renderGrid();
  renderList();
  fillBookingSlots();
  if (state.selected) renderDetail(false);
  showSynced();
}

function renderBookingsState() {
  const open = state.restaurant ? state.restaurant.bookings_open : true;
  const badge = $("bookings-state");
  badge.textContent = open ? "Online booking open" : "Online booking paused";
  badge.className = `badge ${open ? "confirmed" : "cancelled"}`;
  $("pause-btn").textContent = open ? "Pause online bookings" : "Resume online bookings";
  $("pause-btn").setAttribute("aria-pressed", String(!open));
}

function paintCell(button, slot, table, status, freeAt) {
  button.className = `cell ${status}`;
  const reservation = status === "reserved" ? reservationAt(slot, table) : null;
  let text = CELL_WORDS[status] || status;
  let detail = "";
  if (reservation) {
    text = reservation.name;
    detail = `${reservation.party_size}p${reservation.status !== "confirmed" ? ` · ${STATUS_WORDS[reservation.status]}` : ""}`;
    button.dataset.ref = reservation.reference;
    // One booking drawn as one block: down its slots, across the tables of its combination.
    const later = reservation.slot !== slot;
    const joined = reservation.table_id !== table;
    if (later) button.classList.add("span-slot");
    if (joined) button.classList.add("span-table");
    if (later || joined) {
      text = `${later ? "⋮" : "⋯"} ${reservation.name}`;
      detail = `${clock(reservation.slot)}–${clock(reservation.ends_at)}`;
    } else if (reservation.ends_at) {
      detail += ` · until ${clock(reservation.ends_at)}`;
    }
  } else {
    delete button.dataset.ref;
    if (status === "held" && freeAt) detail = `until ${clock(freeAt)}`;
  }
  // The name is the visible text with its context around it (never a label that hides it).
  const before = `${clock(slot)}, ${tableName(table)}: ${reservation ? "reserved for " : ""}`;
  const after = reservation ? `, ${reservation.party_size} guests, ${reservation.reference}` : "";
  button.replaceChildren(
    el("span", { class: "sr-only", text: before }),
    el("span", { class: "cell-main", text }),
    detail ? " " : "",
    detail ? el("span", { class: "cell-sub", text: detail }) : "",
    after ? el("span", { class: "sr-only", text: after }) : "");
  button.removeAttribute("aria-label");
  button.dataset.status = status;
}

const gridNav = gridKeys($("grid"), ".cell");

// The services of the grid's day: the schedule's for that weekday, else opens-closes.
function servicesOf(day) {
  const restaurant = state.restaurant;
  if (!restaurant) return [];
  if (restaurant.schedule) {
    const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
    return restaurant.schedule[WEEKDAY_KEYS[weekday]] || [];
  }
  return [{ opens: restaurant.opens, closes: restaurant.closes }];
}

function inService(hhmm, service) {
  if (service.opens < service.closes) return hhmm >= service.opens && hhmm < service.closes;
  return hhmm >= service.opens || hhmm < service.closes; // past midnight
}

// Covers (guests) of the grid's day, in all and per service.
function renderCovers() {
  const day = state.gridDay;
  const coming = state.dayReservations.filter((r) => r.slot.slice(0, 10) === day && COVER_STATUSES.has(r.status));
  const total = coming.reduce((sum, r) => sum + r.party_size, 0);
  const services = servicesOf(day);
  const parts = services.length > 1
    ? services.map((service, i) => {
      const covers = coming.filter((r) => inService(r.slot.slice(11, 16), service)).reduce((sum, r) => sum + r.party_size, 0);
      const hours = `${clock(`${day}T${service.opens}`)}–${clock(`${day}T${service.closes}`)}`;
      return el("span", { class: "covers-part", text: `Service ${i + 1} (${hours}): ${number(covers)}` });
    })
    : [];
  $("covers").replaceChildren(
    el("strong", { text: `Covers on ${shortDay(day)}: ${number(total)}` }),
    ...parts.flatMap((part) => [" · ", part]),
  );
}

function renderGrid() {
  const wrap = $("grid");
  renderCovers();
  $("grid-day-label").textContent = dayLabel(state.gridDay);
  $("grid-day").value = state.gridDay;
  if (!state.slots.length) {
    wrap.replaceChildren(el("p", { class: "muted", text: "No slots on this day. Lay out the slot grid on the admin page." }));
    return;
  }
  const tables = state.slots[0].tables.map((t) => t.id);
  const head = el("tr", {}, el("th", { scope: "col", text: "Time" }),
    ...tables.map((id) => el("th", { scope: "col", text: tableName(id) })));
  const body = state.slots.map((slot) => {
    const byId = new Map(slot.tables.map((t) => [t.id, t]));
    return el("tr", {}, el("th", { scope: "row", text: clock(slot.slot) }),
      ...tables.map((id) => {
        const t = byId.get(id);
        const button = el("button", { type: "button", dataset: { slot: slot.slot, table: id, key: `${slot.slot}|${id}` } });
        paintCell(button, slot.slot, id, t ? t.status : "available", t ? t.free_at : null);
        if (t && t.free_at) button.dataset.freeAt = t.free_at;
        return el("td", {}, button);
      }));
  });
  const table = el("table", { class: "slot-grid" },
    el("caption", { class: "sr-only", text: `Tables by time on ${dayLabel(state.gridDay)}` }),
    el("thead", {}, head), el("tbody", {}, ...body));
  wrap.replaceChildren(table);
  gridNav.refresh();
}

function visibleReservations() {
  const digits = $("list-phone").value.replace(/\D/g, "");
  const status = $("list-status").value;
  return state.reservations.filter(
    (r) => (!digits || r.phone.replace(/\D/g, "").includes(digits)) && (!status || r.status === status),
  );
}

function renderList() {
  const wrap = $("list");
  const rows = visibleReservations();
  const { from, to } = state.range;
  $("list-count").textContent =
    `${rows.length} of ${state.reservations.length} reservations, ${shortDay(from)} to ${shortDay(to)}`;
  if (!rows.length) {
    wrap.replaceChildren(el("p", { class: "muted", text: "No reservations match." }));
    return;
  }
  const head = el("tr", {}, ...["When", "Name", "Guests", "Phone", "Table", "Status", "Tags"].map(
    (text) => el("th", { scope: "col", text })), el("th", { scope: "col" }, el("span", { class: "sr-only", text: "Actions" })));
  const body = rows.map((r) =>
    el("tr", { dataset: { ref: r.reference }, class: r.reference === state.selected ? "selected" : "" },
      el("td", { "data-label": "When" }, `${shortDay(r.slot)} ${clock(r.slot)}`),
      el("td", { "data-label": "Name" }, el("strong", { text: r.name }), el("span", { class: "muted small ref", text: ` ${r.reference}` })),
      el("td", { "data-label": "Guests", text: number(r.party_size) }),
      el("td", { "data-label": "Phone", text: r.phone }),
      el("td", { "data-label": "Table", text: tableName(r.table_id) }),
      el("td", { "data-label": "Status" }, el("span", { class: `badge ${r.status}`, text: STATUS_WORDS[r.status] || r.status })),
      el("td", { "data-label": "Tags", text: (r.tags || []).join(", ") }),
      el("td", {}, el("button", {
        type: "button", class: "small-btn open-btn", dataset: { ref: r.reference },
        "aria-label": `Open ${r.reference}, ${r.name}, ${shortDay(r.slot)} ${clock(r.slot)}`, text: "Open",
      }))));
  wrap.replaceChildren(el("table", { class: "list" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

function renderDetail(focus) {
  const r = findReservation(state.selected);
  const section = $("detail");
  if (!r) {
    section.hidden = true;
    return;
  }
  $("d-ref").textContent = r.reference;
  const facts = [
    ["Status", STATUS_WORDS[r.status] || r.status],
    ["When", `${dayLabel(r.slot)}, ${clock(r.starts_at)}${r.ends_at ? `–${clock(r.ends_at)}` : ""}`],
    ["Table", tableName(r.table_id)],
    ["Guests", String(r.party_size)],
    ["Name", r.name],
    ["Phone", r.phone],
    ["Email", r.email || "—"],
    ["Guest notes", r.notes || "—"],
    ["Business notes", r.business_notes || "—"],
    ["Tags", (r.tags || []).join(", ") || "—"],
  ];
  $("d-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const cancelled = r.status === "cancelled";
  $("d-cancel").disabled = cancelled;
  $("d-seated").disabled = cancelled || r.status === "seated";
  $("d-noshow").disabled = cancelled || r.status === "no_show";
  $("d-completed").disabled = cancelled || r.status === "completed";
  // A mistaken mark is undone by going back to confirmed.
  $("d-undo").hidden = cancelled || r.status === "confirmed";
  for (const field of $("d-move-form").elements) field.disabled = cancelled;
  if (focus) {
    $("d-notes").value = r.business_notes || "";
    $("d-tags").value = (r.tags || []).join(", ");
    $("d-move-day").value = r.slot.slice(0, 10);
    fillMoveSlots();
  }
  section.hidden = false;
  if (focus) $("detail-h").focus();
}

function openDetail(reference) {
  state.selected = reference;
  closeNoShow();
  resetCancelButton();
  renderDetail(true);
  renderList();
}

// -- slot pickers (phone booking, staff move) -----------------------------------------------

async function slotsOf(day) {
  if (day === state.gridDay && state.slots.length) return state.slots;
  const result = await api(`${V}/slots?from=${day}&to=${day}`, { headers: headers() });
  if (!result.ok) {
    if (result.problem.code !== "network") say(describe(result.problem), "error");
    return [];
  }
  return result.data.slots;
}

function fitting(slot, party, own) {
  return slot.tables.filter(
    (t) => t.capacity >= party && (t.status === "available" || (own && own.slot === slot.slot && own.table_id === t.id)),
  );
}

function fillSelect(select, options, keep) {
  const previous = keep ? select.value : null;
  select.replaceChildren(...options.map(([value, text, disabled]) => el("option", { value, text, disabled })));
  if (previous && options.some(([value, , disabled]) => value === previous && !disabled)) select.value = previous;
}

let bookingSlots = [];

async function fillBookingSlots(keep = true) {
  const day = $("b-day").value || state.gridDay;
  const party = Number($("b-party").value) || 1;
  bookingSlots = await slotsOf(day);
  fillSelect($("b-slot"), bookingSlots.map((s) => {
    const free = fitting(s, party, null).length;
    return [s.slot, `${clock(s.slot)} (${free} free)`, free === 0];
  }), keep);
  fillBookingTables(keep);
}

function fillBookingTables(keep = true) {
  const party = Number($("b-party").value) || 1;
  const slot = bookingSlots.find((s) => s.slot === $("b-slot").value);
  const tables = slot ? fitting(slot, party, null) : [];
  fillSelect($("b-table"), [["", "Best fit"], ...tables.map((t) => [t.id, tableName(t.id)])], keep);
}

let moveSlots = [];

async function fillMoveSlots() {
  const r = findReservation(state.selected);
  if (!r) return;
  moveSlots = await slotsOf($("d-move-day").value || r.slot.slice(0, 10));
  fillSelect($("d-move-slot"), moveSlots.map((s) => {
    const free = fitting(s, r.party_size, r).length;
    return [s.slot, `${clock(s.slot)}${s.slot === r.slot ? " (now)" : ""} (${free} fit)`, free === 0];
  }), false);
  if (moveSlots.some((s) => s.slot === r.slot)) $("d-move-slot").value = r.slot;
  fillMoveTables();
}

function fillMoveTables() {
  const r = findReservation(state.selected);
  const slot = moveSlots.find((s) => s.slot === $("d-move-slot").value);
  const tables = slot && r ? fitting(slot, r.party_size, r) : [];
  fillSelect($("d-move-table"), [["", "Best fit"], ...tables.map((t) => [t.id, tableName(t.id)])], false);
}

// -- actions --------------------------------------------------------------------------------

async function change(reference, body, done) {
  const result = await api(`/v1/reservations/${encodeURIComponent(reference)}`, {
    method: "PATCH", body, headers: headers(),
  });
  if (!result.ok) {
    say(describe(result.problem, {
      unit_unavailable: "That table is taken at that time. Nothing was changed.",
      no_table_available: "No free table fits the party at that time. Nothing was changed.",
    }), "error");
    return null;
  }
  say(done(result.data), "success");
  await sync();
  return result.data;
}

let cancelArmed = null;

function resetCancelButton() {
  clearTimeout(cancelArmed);
  cancelArmed = null;
  $("d-cancel").textContent = "Cancel reservation";
}

$("d-cancel").addEventListener("click", async () => {
  const reference = state.selected;
  if (!cancelArmed) {
    $("d-cancel").textContent = "Press again to cancel";
    say(`Press “Cancel reservation” again to cancel ${reference}.`, "warn");
    cancelArmed = setTimeout(resetCancelButton, 6000);
    return;
  }
  resetCancelButton();
  const result = await api(`/v1/reservations/${encodeURIComponent(reference)}`, { method: "DELETE", headers: headers() });
  if (!result.ok) {
    say(describe(result.problem), "error");
    return;
  }
  say(`Cancelled ${reference}; the table is free again.`, "success");
  await sync();
});

// A no-show is asked twice: a guest marked by mistake is a guest turned away.
$("d-noshow").addEventListener("click", () => {
  $("d-noshow-ref").textContent = state.selected;
  $("d-noshow-confirm").hidden = false;
  $("d-noshow-yes").focus();
});
function closeNoShow() {
  $("d-noshow-confirm").hidden = true;
}
$("d-noshow-no").addEventListener("click", () => {
  closeNoShow();
  $("d-noshow").focus();
});
$("d-noshow-yes").addEventListener("click", async () => {
  closeNoShow();
  await change(state.selected, { status: "no_show" }, (r) => `${r.reference} is marked as a no-show.`);
  $("d-undo").focus();
});
$("d-seated").addEventListener("click", () =>
  change(state.selected, { status: "seated" }, (r) => `${r.reference} is seated.`));
$("d-completed").addEventListener("click", () =>
  change(state.selected, { status: "completed" }, (r) => `${r.reference} is marked as completed.`));
$("d-undo").addEventListener("click", () =>
  change(state.selected, { status: "confirmed" }, (r) => `${r.reference} is back to confirmed.`));
$("d-close").addEventListener("click", () => {
  const reference = state.selected;
  state.selected = null;
  $("detail").hidden = true;
  renderList();
  const opener = $("list").querySelector(`.open-btn[data-ref="${CSS.escape(reference || "")}"]`);
  if (opener) opener.focus();
});

$("d-move-day").addEventListener("change", fillMoveSlots);
$("d-move-slot").addEventListener("change", fillMoveTables);
$("d-move-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const slot = $("d-move-slot").value;
  if (!slot) {
    say("Please pick a time to move to.", "error");
    return;
  }
  const body = { slot };
  if ($("d-move-table").value) body.table_id = $("d-move-table").value;
  change(state.selected, body, (r) => `Moved ${r.reference} to ${shortDay(r.slot)} ${clock(r.slot)}, ${tableName(r.table_id)}.`);
});

function parseTags(text) {
  return text.split(",").map((t) => t.trim()).filter(Boolean);
}

$("d-notes-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const tags = parseTags($("d-tags").value);
  if (tags.length > 10 || tags.some((t) => t.length > 32)) {
    say("Up to 10 tags of at most 32 characters each, please.", "error");
    $("d-tags").focus();
    return;
  }
  const notes = $("d-notes").value.trim();
  change(state.selected, { business_notes: notes || null, tags }, (r) => `Saved notes and tags of ${r.reference}.`);
});

$("pause-btn").addEventListener("click", async () => {
  const open = !(state.restaurant && state.restaurant.bookings_open);
  const result = await api(V, { method: "PATCH", body: { bookings_open: open }, headers: headers() });
  if (!result.ok) {
    say(describe(result.problem), "error");
    return;
  }
  state.restaurant = result.data;
  renderBookingsState();
  say(open ? "Online bookings are open again." : "Online bookings are paused. Staff bookings still work.", "success");
  persist();
});

$("logout-btn").addEventListener("click", async () => {
  await store.remove(rid);
  signOut();
  say("Signed out. The cached reservations were removed from this browser.", "info");
});

$("grid").addEventListener("click", (event) => {
  const button = event.target.closest(".cell");
  if (!button) return;
  const { slot, table, status } = button.dataset;
  if (status === "reserved") {
    const r = reservationAt(slot, table);
    if (r) openDetail(r.reference);
    else say("Reserved; the details are still loading.", "info");
  } else if (status === "held") {
    const until = button.dataset.freeAt ? ` until ${clock(button.dataset.freeAt)} at the latest` : "";
    say(`A guest is holding ${tableName(table)} at ${clock(slot)}${until}.`, "info");
  } else {
    $("b-day").value = slot.slice(0, 10);
    fillBookingSlots(false).then(() => {
      $("b-slot").value = slot;
      fillBookingTables(false);
      $("b-table").value = table;
      $("b-name").focus();
    });
    say(`Phone booking for ${clock(slot)} at ${tableName(table)}: enter the guest's details below.`, "info");
  }
});

$("list").addEventListener("click", (event) => {
  const button = event.target.closest(".open-btn");
  if (button) openDetail(button.dataset.ref);
});

const touched = { gridDay: false, range: false };

function setGridDay(day) {
  touched.gridDay = true;
  state.gridDay = day;
  $("b-day").value = day;
  $("grid-day-label").textContent = dayLabel(day);
  sync();
}

$("grid-day").addEventListener("change", () => {
  if ($("grid-day").value) setGridDay($("grid-day").value);
});
$("grid-prev").addEventListener("click", () => setGridDay(addDays(state.gridDay, -1)));
$("grid-next").addEventListener("click", () => setGridDay(addDays(state.gridDay, 1)));

$("list-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const from = $("list-from").value;
  const to = $("list-to").value;
  if (!from || !to || to < from) {
    say("Please give a start date and an end date on or after it.", "error");
    return;
  }
  state.range = { from, to };
  touched.range = true;
  clearMessages();
  sync();
});
$("list-phone").addEventListener("input", renderList);
$("list-status").addEventListener("change", renderList);

$("b-day").addEventListener("change", () => fillBookingSlots(false));
$("b-party").addEventListener("change", () => fillBookingSlots(true));
$("b-slot").addEventListener("change", () => fillBookingTables(false));

$("book-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const party = Number($("b-party").value);
  const body = {
    slot: $("b-slot").value,
    party_size: party,
    name: $("b-name").value.trim(),
    phone: $("b-phone").value.trim(),
  };
  if (!body.slot || !Number.isInteger(party) || party < 1 || !body.name || body.phone.length < 3) {
    say("Please pick a time, the number of guests, and enter a name and a phone number.", "error");
    return;
  }
  if ($("b-table").value) body.table_id = $("b-table").value;
  if ($("b-email").value.trim()) body.email = $("b-email").value.trim();
  if ($("b-notes").value.trim()) body.notes = $("b-notes").value.trim();
  const tags = parseTags($("b-tags").value);
  if (tags.length) body.tags = tags;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  const result = await api(`${V}/reservations`, { method: "POST", body, headers: headers() });
  button.disabled = false;
  if (!result.ok) {
    say(describe(result.problem, {
      unit_unavailable: "That table is taken at that time. Pick another table or Best fit.",
      no_table_available: "No free table fits that party at that time.",
    }), "error");
    fillBookingSlots(true);
    return;
  }
  const r = result.data;
  say(`Booked ${r.reference} for ${r.name}: ${shortDay(r.slot)} ${clock(r.slot)}, ${tableName(r.table_id)}.`, "success");
  for (const id of ["b-name", "b-phone", "b-email", "b-notes", "b-tags"]) $(id).value = "";
  await sync();
});

// -- offline support ----------------------------------------------------------------------

async function enableOffline() {
  if (!("serviceWorker" in navigator) || !window.caches) return;
  try {
    await navigator.serviceWorker.register("/staff/sw.js", { scope: "/staff/" });
    await navigator.serviceWorker.ready;
    const cache = await caches.open(CACHE);
    await cache.add(new Request(location.pathname, { cache: "no-store" }));
    root.dataset.offlineReady = "true";
  } catch {
    // Offline reloads are a bonus; the live page works without them.
  }
}

window.addEventListener("offline", () => {
  setOnline(false);
  if (live.controller) live.controller.abort();
});
window.addEventListener("online", () => live.wake());

const ROLE_NAMES = { admin: "Admin", manager: "Manager", host: "Host" };

// Says who is signed in, and shows what only a manager (or an admin) may do to them alone.
async function showRole() {
  const me = await api("/v1/me", { headers: headers() });
  if (!me.ok) return;
  const role = me.data.role;
  const who = me.data.name ? ` · ${me.data.name}` : "";
  $("role-badge").textContent = `Signed in as ${ROLE_NAMES[role] || role}${who}`;
  const panel = $("staff-tokens");
  panel.hidden = role === "host";
  if (!panel.hidden) {
    await mountStaffTokens({ root: panel, base: V, headers, say, describe }).load();
  }
}

async function start(token) {
  const today = todayIn(zone);
  state.range = { from: today, to: addDays(today, 6) };
  state.gridDay = today;
  const snapshot = await store.load(rid);
  if (snapshot) {
    // What the staff last looked at, unless they already picked other days meanwhile.
    const picked = { range: state.range, gridDay: state.gridDay };
    Object.assign(state, snapshot);
    if (touched.gridDay) state.gridDay = picked.gridDay;
    if (touched.range) state.range = picked.range;
    // Data is read afresh below; the stream then starts from that read, not from an old
    // position (which may even belong to a feed that was since wiped).
    state.lastId = null;
  }
  state.token = token;
  showRole();
  $("list-from").value = state.range.from;
  $("list-to").value = state.range.to;
  $("b-day").value = state.gridDay;
  if (snapshot) {
    render();
    setOnline(navigator.onLine);
  }
  logFloor = snapshot && snapshot.syncedAt ? snapshot.syncedAt : Date.now();
  if (await sync()) setOnline(true);
  live.start();
}

enableOffline();
