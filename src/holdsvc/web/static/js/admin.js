// Admin forms: create a restaurant, its tables and slot grid, its week and closures (see
// schedule.js), and events. Every form posts to the JSON API with the admin token from
// sessionStorage as a bearer token.

import { api, bearer } from "./api.js";
import { describe, say } from "./messages.js";
import { addDays, dayLabel, clock, el, todayIn } from "./fmt.js";
import { forgetToken, login, storedToken } from "./auth.js";
import { rulesEditor } from "./rules.js";
import { scheduleEditor } from "./schedule.js";
import { mountStaffTokens } from "./stafftokens.js";
import { mountWebhooks } from "./webhooks.js";

const $ = (id) => document.getElementById(id);
const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
let restaurants = [];

const schedule = scheduleEditor({
  send,
  headers,
  current: () => restaurants.find((x) => x.id === $("t-restaurant").value),
  changed: (rid) => loadVenues(rid),
});

const rules = rulesEditor({
  send,
  headers,
  current: () => restaurants.find((x) => x.id === $("t-restaurant").value),
  changed: (rid) => loadVenues(rid),
});

const auth = login({
  // Any admin endpoint tells a good token from a bad one: 401 or not.
  check: async (token) => {
    const result = await api("/v1/reservations?phone=%2B12125550100", { headers: bearer(token) });
    return result.ok || result.status === 400 ? { ok: true } : result;
  },
  start: () => start(),
  say,
  describe,
});

function headers() {
  return bearer(storedToken() || "");
}

async function send(path, body, method = "POST", extra = {}) {
  const result = await api(path, { method, body, headers: { ...headers(), ...extra } });
  if (!result.ok) {
    if (result.problem.code === "unauthorized") {
      forgetToken();
      auth.show();
    }
    say(describe(result.problem), "error");
  }
  return result;
}

function numberField(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : Number(value);
}

// "YYYY-MM-DDTHH:MM" in `zone` as RFC 3339 with that zone's offset at that moment.
function offsetMinutes(instant, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(instant)).map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return Math.round((wall - instant) / 60000);
}

function zonedTime(local, zone) {
  const [day, time] = local.split("T");
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let offset = offsetMinutes(wall, zone);
  offset = offsetMinutes(wall - offset * 60000, zone);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day}T${pad(hh)}:${pad(mm)}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function tableRow(capacity = 2, label = "") {
  const rows = $("table-rows");
  const n = rows.children.length + 1;
  const row = el("div", { class: "inline-form table-row" },
    el("div", { class: "field narrow" },
      el("label", { for: `tc-${n}`, text: `Table ${n} seats` }),
      el("input", { id: `tc-${n}`, type: "number", min: "2", max: "8", value: String(capacity), required: true, class: "t-capacity" })),
    el("div", { class: "field" },
      el("label", { for: `tl-${n}`, text: `Table ${n} label (optional)` }),
      el("input", { id: `tl-${n}`, maxlength: "200", value: label, class: "t-label" })),
    el("button", { type: "button", class: "secondary small-btn remove-row", "aria-label": `Remove row ${n}`, text: "Remove row" }));
  rows.append(row);
  return row;
}

async function loadVenues(select) {
  const [r, e] = await Promise.all([api("/v1/restaurants"), api("/v1/events")]);
  if (!r.ok || !e.ok) {
    say(describe((r.ok ? e : r).problem), "error");
    return;
  }
  restaurants = r.data.restaurants;
  const picker = $("t-restaurant");
  const keep = select || picker.value;
  picker.replaceChildren(...restaurants.map((x) => el("option", { value: x.id, text: `${x.name} (${x.id})` })));
  if (keep && restaurants.some((x) => x.id === keep)) picker.value = keep;
  showTables();
  const list = el("ul", { class: "cards" },
    ...restaurants.map((x) => el("li", { class: "card" },
      el("a", { class: "card-title", href: `/r/${x.id}`, text: x.name }),
      el("span", { class: "muted", text: `${x.schedule ? "weekly hours" : `${x.opens}–${x.closes}`} · ${x.timezone}${x.horizon_days ? ` · ${x.horizon_days} days ahead` : ""}${x.bookings_open ? "" : " · paused"}` }),
      el("a", { class: "small", href: `/staff/${x.id}`, text: "Staff view" }))),
    ...e.data.events.map((x) => el("li", { class: "card" },
      el("a", { class: "card-title", href: `/e/${x.id}`, text: x.name }),
      el("span", { class: "muted", text: `${dayLabel(x.starts_at)} ${clock(x.starts_at)} · ${x.available_seats} of ${x.total_seats} free` }))));
  $("venues").replaceChildren(restaurants.length || e.data.events.length ? list : el("p", { class: "muted", text: "No venues yet." }));
  const venues = [
    ...restaurants.map((x) => ({ base: `/v1/restaurants/${encodeURIComponent(x.id)}`, label: `${x.name} (${x.id})` })),
    ...e.data.events.map((x) => ({ base: `/v1/events/${encodeURIComponent(x.id)}`, label: `${x.name} (${x.id}, event)` })),
  ];
  const stPicker = $("st-venue");
  const stKeep = stPicker.value;
  stPicker.replaceChildren(...venues.map((v) => el("option", { value: v.base, text: v.label })));
  if (stKeep && venues.some((v) => v.base === stKeep)) stPicker.value = stKeep;
  showStaffTokens();
}

// The staff tokens of the venue picked in section 4.
async function showStaffTokens() {
  const base = $("st-venue").value;
  const panel = $("staff-tokens");
  panel.hidden = !base;
  $("webhooks").hidden = !base;
  if (!base) return;
  await mountStaffTokens({ root: panel, base, headers, say, describe }).load();
  const hooks = $("webhooks");
  hooks.hidden = false;
  await mountWebhooks({ root: hooks, base, headers, say, describe }).load();
}
$("st-venue").addEventListener("change", () => showStaffTokens());

// The picked restaurant's fields in the edit form.
function showDetails(restaurant) {
  const form = $("edit-form");
  for (const field of form.elements) field.disabled = !restaurant;
  if (!restaurant) return;
  $("x-name").value = restaurant.name;
  $("x-phone").value = restaurant.phone;
  $("x-max-days").value = String(restaurant.max_days_ahead);
  $("x-min-notice").value = String(restaurant.min_notice_minutes);
  $("x-address").value = restaurant.address || "";
  $("x-locale").value = restaurant.locale || "en-US";
  $("x-reminder").value = String(restaurant.reminder_hours || 0);
  $("x-description").value = restaurant.description || "";
}

// Each table with its label and seats editable in place, saved or removed one at a time.
function tableEditor(rid, tables) {
  if (!tables.length) return el("p", { class: "muted small", text: "No tables yet." });
  const head = el("tr", {}, ...["Table", "Label", "Seats"].map((text) => el("th", { scope: "col", text })),
    el("th", { scope: "col" }, el("span", { class: "sr-only", text: "Actions" })));
  const rows = tables.map((t) => el("tr", { dataset: { table: t.id } },
    el("th", { scope: "row", text: t.id }),
    el("td", {}, el("label", { class: "sr-only", for: `te-label-${t.id}`, text: `Label of table ${t.id}` }),
      el("input", { id: `te-label-${t.id}`, class: "te-label", maxlength: "200", value: t.label || "" })),
    el("td", {}, el("label", { class: "sr-only", for: `te-cap-${t.id}`, text: `Seats at table ${t.id}` }),
      el("input", { id: `te-cap-${t.id}`, class: "te-capacity", type: "number", min: "2", max: "8", value: String(t.capacity), required: true })),
    el("td", { class: "actions" },
      el("button", { type: "button", class: "small-btn te-save", dataset: { table: t.id }, text: `Save table ${t.id}` }),
      el("button", { type: "button", class: "small-btn danger te-remove", dataset: { table: t.id }, text: `Remove table ${t.id}` }))));
  return el("table", { class: "list tables-edit" }, el("caption", { class: "sr-only", text: "Tables now" }),
    el("thead", {}, head), el("tbody", {}, ...rows));
}

async function showTables() {
  const rid = $("t-restaurant").value;
  schedule.show(restaurants.find((x) => x.id === rid));
  showDetails(restaurants.find((x) => x.id === rid));
  rules.show(restaurants.find((x) => x.id === rid));
  if (!rid) {
    $("tables-now").replaceChildren(el("p", { class: "muted small", text: "Create a restaurant first." }));
    $("venue-links").replaceChildren();
    return;
  }
  const result = await api(`/v1/restaurants/${encodeURIComponent(rid)}/tables`);
  const tables = result.ok ? result.data.tables : [];
  $("tables-now").replaceChildren(tableEditor(rid, tables));
  $("venue-links").replaceChildren("Pages: ", el("a", { href: `/r/${rid}`, text: "guest booking" }), " · ",
    el("a", { href: `/staff/${rid}`, text: "staff" }));
}

function start() {
  const today = todayIn(localZone);
  if (!$("table-rows").children.length) resetTableRows();
  $("s-from").value = today;
  $("s-to").value = addDays(today, 13);
  for (const id of ["r-timezone", "e-timezone"]) if (!$(id).value) $(id).value = localZone;
  try {
    $("zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", { value: z })));
  } catch {
    // a browser without the list: typing the zone still works
  }
  loadVenues();
}

$("restaurant-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    name: $("r-name").value.trim(),
    phone: $("r-phone").value.trim(),
    timezone: $("r-timezone").value.trim(),
    opens: $("r-opens").value,
    closes: $("r-closes").value,
    slot_minutes: numberField("r-slot-minutes"),
    hold_seconds: numberField("r-hold-seconds"),
    max_hold_seconds: numberField("r-max-hold-seconds"),
    max_holds_per_user: numberField("r-max-holds"),
    min_notice_minutes: numberField("r-min-notice"),
    max_days_ahead: numberField("r-max-days"),
    address: $("r-address").value.trim(),
    description: $("r-description").value.trim(),
    locale: $("r-locale").value.trim() || "en-US",
    reminder_hours: numberField("r-reminder") ?? 0,
  };
  const result = await send("/v1/restaurants", body);
  if (!result.ok) return;
  form.reset();
  $("r-timezone").value = localZone;
  await loadVenues(result.data.id);
  say(`Created ${result.data.name} (${result.data.id}). Now add its tables and slots below.`, "success");
  $("tables-h").scrollIntoView({ block: "start" });
});

$("add-table-row").addEventListener("click", () => {
  newTablesKey();
  tableRow(2).querySelector("input").focus();
});
$("table-rows").addEventListener("click", (event) => {
  const button = event.target.closest(".remove-row");
  if (!button) return;
  button.closest(".table-row").remove();
  newTablesKey();
  $("add-table-row").focus();
});
$("t-restaurant").addEventListener("change", showTables);

$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const rid = $("t-restaurant").value;
  if (!rid) return;
  const body = {
    name: $("x-name").value.trim(),
    phone: $("x-phone").value.trim(),
    max_days_ahead: numberField("x-max-days"),
    min_notice_minutes: numberField("x-min-notice"),
    address: $("x-address").value.trim(),
    description: $("x-description").value.trim(),
    locale: $("x-locale").value.trim() || "en-US",
    reminder_hours: numberField("x-reminder") ?? 0,
  };
  const result = await send(`/v1/restaurants/${encodeURIComponent(rid)}`, body, "PATCH");
  if (!result.ok) return;
  say(`Saved the details of ${result.data.name}.`, "success");
  await loadVenues(rid);
});

$("tables-now").addEventListener("click", async (event) => {
  const rid = $("t-restaurant").value;
  const save = event.target.closest(".te-save");
  const remove = event.target.closest(".te-remove");
  if (!rid || !(save || remove)) return;
  const id = (save || remove).dataset.table;
  const path = `/v1/restaurants/${encodeURIComponent(rid)}/tables/${encodeURIComponent(id)}`;
  if (save) {
    const row = save.closest("tr");
    const label = row.querySelector(".te-label").value.trim();
    const body = { capacity: Number(row.querySelector(".te-capacity").value), label: label || null };
    const result = await send(path, body, "PATCH");
    if (result.ok) say(`Saved table ${id}: ${result.data.label || "no label"}, ${result.data.capacity} seats.`, "success");
  } else {
    const result = await send(path, undefined, "DELETE");
    if (result.ok) say(`Removed table ${id}.`, "success");
  }
  await showTables();
});

// One key per filled-in form: pressing "Add" twice (or a retry) adds the tables once.
function newTablesKey() {
  $("tables-form").dataset.key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

function resetTableRows() {
  $("table-rows").replaceChildren();
  tableRow(2);
  tableRow(4);
  tableRow(6);
  newTablesKey();
}

$("tables-form").addEventListener("input", () => newTablesKey());

$("tables-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const rid = $("t-restaurant").value;
  const tables = [...document.querySelectorAll(".table-row")].map((row) => {
    const table = { capacity: Number(row.querySelector(".t-capacity").value) };
    const label = row.querySelector(".t-label").value.trim();
    if (label) table.label = label;
    return table;
  });
  if (!rid || !tables.length) {
    say("Pick a restaurant and add at least one table.", "error");
    return;
  }
  const button = $("add-tables-btn");
  button.disabled = true;
  const result = await send(`/v1/restaurants/${encodeURIComponent(rid)}/tables`, { tables }, "POST",
    { "Idempotency-Key": $("tables-form").dataset.key });
  button.disabled = false;
  if (!result.ok) return;
  const ids = result.data.tables.map((t) => t.id).join(", ");
  say(result.status === 200
    ? `These tables were added already (${ids}): nothing added twice.`
    : `Added ${result.data.tables.length} tables (${ids}).`, "success");
  resetTableRows();
  showTables();
});

$("slots-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const rid = $("t-restaurant").value;
  if (!rid) {
    say("Pick a restaurant first.", "error");
    return;
  }
  const result = await send(`/v1/restaurants/${encodeURIComponent(rid)}/slots`, { from: $("s-from").value, to: $("s-to").value });
  if (!result.ok) return;
  say(`Created ${result.data.created} slots (${result.data.total} in all).`, "success");
});

$("event-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const zone = $("e-timezone").value.trim();
  let startsAt;
  try {
    startsAt = zonedTime($("e-starts").value, zone);
  } catch {
    say("Please give a start time and a valid time zone.", "error");
    return;
  }
  const body = {
    name: $("e-name").value.trim(),
    starts_at: startsAt,
    timezone: zone,
    total_seats: numberField("e-seats"),
    hold_seconds: numberField("e-hold-seconds"),
    max_hold_seconds: numberField("e-max-hold-seconds"),
    max_holds_per_user: numberField("e-max-holds"),
  };
  const result = await send("/v1/events", body);
  if (!result.ok) return;
  say(`Created ${result.data.name} (${result.data.id}) with ${result.data.total_seats} seats.`, "success");
  form.reset();
  $("e-timezone").value = localZone;
  await loadVenues();
});

$("logout-btn").addEventListener("click", () => {
  forgetToken();
  auth.show();
  say("Signed out.", "info");
});
