// One human sentence per stable error code of the API, and the page's message area.

import { MESSAGES as API_MESSAGES } from "/js/codes.js";

// The sentences of the API's codes come from the server's table of codes (/js/codes.js).
const MESSAGES = {
  network: "We could not reach the server. Check your connection and try again.",
  ...API_MESSAGES,
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
