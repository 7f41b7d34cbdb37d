// One human sentence per stable error code of the API, and the page's message area.

const MESSAGES = {
  network: "We could not reach the server. Check your connection and try again.",
  validation_error: "Some details are not valid. Please check them and try again.",
  unauthorized: "The admin token was not accepted. Please sign in again.",
  forbidden: "This link is not valid: its token is wrong or missing.",
  not_found: "We could not find that. It may have been removed, or the link is wrong.",
  unit_unavailable: "Sorry, that was just taken by someone else.",
  no_table_available: "Sorry, that time was just taken: no free table for your party is left.",
  not_enough_seats: "Sorry, there are not enough free seats left for that.",
  hold_limit_reached:
    "You are already holding as many places as we allow at once. Finish or cancel your other booking first, or wait a few minutes for those holds to lapse.",
  bookings_paused: "Online booking is paused right now. Please try again later.",
  slot_in_past: "That time has already started. Please pick a later one.",
  outside_booking_window: "That time is outside the booking window: it is either too soon or too far ahead.",
  reservation_cancelled: "This reservation is cancelled, so it can no longer be changed.",
  hold_expired: "Your hold has lapsed, so the place was released for others.",
  hold_lifetime_exceeded: "We cannot hold this any longer.",
  rate_limited: "Too many requests. Please wait a moment and try again.",
  unavailable: "The booking service is unavailable right now. Please try again shortly.",
  internal_error: "Something went wrong on our side. Please try again.",
};

function minutes(seconds) {
  const m = Math.max(1, Math.ceil(seconds / 60));
  return m === 1 ? "a minute" : `${m} minutes`;
}

// The sentence for a problem; `overrides` gives page-specific wording per code.
export function describe(problem, overrides = {}) {
  const code = (problem && problem.code) || "internal_error";
  let text = overrides[code] || MESSAGES[code] || MESSAGES.internal_error;
  if (code === "validation_error" && problem.detail && !overrides[code]) {
    text = `${text} (${problem.detail})`;
  }
  if (problem && typeof problem.retry_after === "number" && problem.retry_after > 0) {
    text = `${text} It may be free again within ${minutes(problem.retry_after)}.`;
  }
  return text;
}

export function codeOf(result) {
  return result && result.problem ? result.problem.code : null;
}

let serial = 0;

// Shows `text` in the page's aria-live region (kind: info | success | warn | error).
export function say(text, kind = "info") {
  const box = document.getElementById("messages");
  if (!box) return;
  const mine = ++serial;
  box.replaceChildren();
  // A fresh node a frame later, so screen readers announce a repeated message again.
  requestAnimationFrame(() => {
    if (mine !== serial) return;
    const p = document.createElement("p");
    p.className = `notice ${kind}`;
    p.textContent = text;
    box.replaceChildren(p);
  });
}

export function clearMessages() {
  serial++;
  const box = document.getElementById("messages");
  if (box) box.replaceChildren();
}

export function sayProblem(result, overrides = {}) {
  say(describe(result.problem, overrides), "error");
}
