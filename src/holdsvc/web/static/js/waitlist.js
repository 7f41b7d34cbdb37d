// The waitlist pages: join (a form posted to the API), and the entry page, which shows the
// position while waiting and, once a freed place is offered, the hold's countdown and the
// confirm form (the shared hold panel).

import { api, guestId } from "./api.js";
import { HoldPanel } from "./hold.js";
import { describe, say } from "./messages.js";
import { clock, dayLabel } from "./fmt.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;

function base(kind, venue) {
  return `/v1/${kind === "event" ? "events" : "restaurants"}/${encodeURIComponent(venue)}`;
}

function mountJoin(root) {
  const kind = root.dataset.kind;
  const venue = root.dataset.venue;
  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (!form.reportValidity()) return;
    const body = { user_id: guestId(), name: $("w-name").value.trim(), phone: $("w-phone").value.trim() };
    if ($("w-email").value.trim()) body.email = $("w-email").value.trim();
    if (kind === "event") body.count = Number($("w-count").value);
    if (kind === "event" && $("w-section") && $("w-section").value) body.section = $("w-section").value;
    else Object.assign(body, { slot: $("w-slot").value.slice(0, 16), party_size: Number($("w-party").value) });
    const result = await api(`${base(kind, venue)}/waitlist`, { method: "POST", body });
    if (!result.ok) {
      say(describe(result.problem), "error");
      return;
    }
    const entry = result.data;
    // The token travels in the link, like a manage link: keep it to come back.
    location.assign(`/w/${kind}/${encodeURIComponent(venue)}/${encodeURIComponent(entry.id)}?token=${encodeURIComponent(entry.token)}`);
  });
}

function mountEntry(root) {
  const kind = root.dataset.kind;
  const venue = root.dataset.venue;
  const entryId = root.dataset.entry;
  const token = new URLSearchParams(location.search).get("token") || "";
  const url = `${base(kind, venue)}/waitlist/${encodeURIComponent(entryId)}`;
  const headers = { "Waitlist-Token": token };
  const seconds = Number(root.dataset.offerSeconds);
  let shownOffer = null;
  let timer = null;

  const panel = new HoldPanel({
    base: `${base(kind, venue)}/holds`,
    holdSeconds: seconds,
    maxHoldSeconds: seconds,
    words: { thing: kind === "event" ? "seats" : "table" },
    onReturn: () => poll(),
    onDone: (reservation) => {
      $("done-summary").textContent = `${dayLabel(reservation.slot)} at ${clock(reservation.slot)}, in the name of ${reservation.name}.`;
      clearTimeout(timer);
    },
  });

  function describeEntry(entry) {
    if (entry.status === "waiting") return `You are number ${entry.position} on the waitlist.`;
    if (entry.status === "offered") return "A place freed up: it is held for you below.";
    if (entry.status === "confirmed") return "You took the place offered to you: see your booking.";
    if (entry.status === "expired") return "The place offered to you was not confirmed in time and went to the next guest.";
    return "You left the waitlist.";
  }

  async function poll() {
    clearTimeout(timer);
    const result = await api(url, { headers });
    if (!result.ok) {
      say(describe(result.problem), "error");
      timer = setTimeout(poll, POLL_MS * 3);
      return;
    }
    const entry = result.data;
    $("entry-status").textContent = describeEntry(entry);
    $("leave-btn").hidden = !["waiting", "offered"].includes(entry.status);
    if (entry.status === "offered" && entry.hold && shownOffer !== entry.hold.id) {
      shownOffer = entry.hold.id;
      const where = entry.hold.table_id ? ` (table ${entry.hold.table_id})` : "";
      panel.start(entry.hold, `${dayLabel(entry.slot)} at ${clock(entry.slot)}${where}`);
    }
    if (["waiting", "offered"].includes(entry.status)) timer = setTimeout(poll, POLL_MS);
  }

  $("leave-btn").addEventListener("click", async () => {
    const result = await api(url, { method: "DELETE", headers });
    if (!result.ok) say(describe(result.problem), "error");
    else say("You left the waitlist.", "info");
    poll();
  });
  poll();
}

const join = document.getElementById("waitlist-join");
if (join) mountJoin(join);
const entry = document.getElementById("waitlist-entry");
if (entry) mountEntry(entry);
