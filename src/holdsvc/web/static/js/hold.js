// The hold step shared by the table and the seat pages: place a hold, show a countdown,
// keep the hold alive while the form is open (never past max_hold_seconds), release it when
// the guest goes back or leaves, and confirm it into a reservation.

import { api, guestId } from "./api.js";
import { clearMessages, describe, say } from "./messages.js";
import { mmss, spoken } from "./fmt.js";

const $ = (id) => document.getElementById(id);

export class HoldPanel {
  // base: "/v1/restaurants/<id>/holds" or "/v1/events/<id>/holds".
  // onReturn({refresh}): show the choice again. words: {thing: "table", lapsed: "..."}.
  constructor({ base, holdSeconds, maxHoldSeconds, onReturn, onDone, words }) {
    this.base = base;
    this.holdSeconds = holdSeconds;
    this.maxHoldSeconds = maxHoldSeconds;
    this.onReturn = onReturn;
    this.onDone = onDone || (() => {});
    this.words = { thing: "table", ...words };
    this.state = "idle"; // idle | held | lapsed | released | done
    this.hold = null;
    this.timer = null;
    this.refreshing = false;
    this.retryAt = 0;
    this.leftWhileHeld = false;

    this.section = $("step-hold");
    this.search = $("step-search");
    this.doneSection = $("step-done");
    this.countdown = $("countdown");
    this.note = $("hold-note");
    this.form = $("confirm-form");
    this.confirmButton = $("confirm-btn");
    this.backButton = $("back-btn");

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.confirm();
    });
    this.backButton.addEventListener("click", () => this.back());
    // Leaving the page gives the place back at once (keepalive outlives the page).
    window.addEventListener("pagehide", () => this.releaseOnLeave());
    window.addEventListener("beforeunload", () => this.releaseOnLeave());
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && this.leftWhileHeld) {
        this.leftWhileHeld = false;
        this.reset();
        this.onReturn({ refresh: true });
        say(`Your hold was released when you left the page. Please choose again.`, "info");
      }
    });
    const again = $("done-again");
    if (again) again.href = location.pathname;
  }

  // POST the hold; on success the panel takes over. Returns the API result.
  async place(body, summary) {
    const result = await api(this.base, {
      method: "POST",
      body: { user_id: guestId(), ...body },
      headers: { "Idempotency-Key": crypto.randomUUID() },
    });
    if (result.ok) this.start(result.data, summary);
    return result;
  }

  start(hold, summary) {
    this.hold = hold;
    this.token = hold.token;
    this.state = "held";
    this.lifetimeNoted = false;
    this.warned = new Set();
    this.connectionWarned = false;
    this.retryAt = 0;
    this.sync(hold);
    clearMessages();
    $("hold-summary").textContent = summary;
    this.note.textContent = this.canExtend()
      ? `We keep it for you while this page is open, for up to ${spoken(this.maxHoldSeconds * 1000)} in all.`
      : "";
    this.countdown.classList.remove("urgent", "over");
    this.confirmButton.disabled = false;
    this.backButton.textContent = "Back";
    for (const field of this.form.elements) field.disabled = false;
    this.search.hidden = true;
    this.doneSection.hidden = true;
    this.section.hidden = false;
    $("hold-h").focus();
    say(`${summary}. Held for you for ${spoken(this.deadline - performance.now())}: enter your details to confirm.`, "success");
    this.stopTimer();
    this.timer = setInterval(() => this.tick(), 250);
    this.tick();
  }

  // The hold's times are the server's: keep only durations, measured on our monotonic clock.
  sync(hold) {
    const now = performance.now();
    const left = hold.expires_in * 1000;
    this.deadline = now + left;
    const lifetimeLeft = Date.parse(hold.created_at) + this.maxHoldSeconds * 1000 - Date.parse(hold.expires_at) + left;
    this.lifetimeEnd = now + (Number.isFinite(lifetimeLeft) ? lifetimeLeft : left);
  }

  canExtend() {
    return this.lifetimeEnd - this.deadline > 1000;
  }

  tick() {
    if (this.state !== "held") return;
    const now = performance.now();
    const left = this.deadline - now;
    this.countdown.textContent = mmss(left);
    this.countdown.classList.toggle("urgent", left < 60000);
    if (left <= 0) {
      this.lapse();
      return;
    }
    if (this.canExtend()) {
      if (left < (this.holdSeconds * 1000) / 2 && !this.refreshing && now >= this.retryAt) this.refresh();
    } else {
      if (!this.lifetimeNoted) {
        this.lifetimeNoted = true;
        this.note.textContent = `This is the longest we can hold it: please confirm within ${spoken(left)}.`;
      }
      // Spoken warnings once the hold can no longer be extended.
      for (const mark of [60000, 15000]) {
        if (left <= mark && left > mark - 5000 && !this.warned.has(mark)) {
          this.warned.add(mark);
          say(`${spoken(mark)} left to confirm.`, "warn");
        }
      }
    }
  }

  async refresh() {
    this.refreshing = true;
    const result = await api(`${this.base}/${encodeURIComponent(this.hold.id)}/refresh`, {
      method: "POST",
      headers: { "Hold-Token": this.token },
    });
    this.refreshing = false;
    if (this.state !== "held") return;
    if (result.ok) {
      this.sync(result.data);
      if (this.connectionWarned) clearMessages();
      this.connectionWarned = false;
      return;
    }
    const code = result.problem.code;
    if (code === "hold_lifetime_exceeded") {
      this.lifetimeEnd = this.deadline;
      this.tick();
    } else if (code === "hold_expired" || code === "not_found" || code === "forbidden") {
      this.lapse();
    } else {
      // The network or the server hiccupped: the countdown goes on, we try again shortly.
      this.retryAt = performance.now() + 3000;
      if (!this.connectionWarned) {
        this.connectionWarned = true;
        say(`${describe(result.problem)} We will keep trying to extend your hold; confirm soon to be safe.`, "warn");
      }
    }
  }

  lapse() {
    this.stopTimer();
    this.state = "lapsed";
    this.countdown.textContent = "0:00";
    this.countdown.classList.add("over");
    this.confirmButton.disabled = true;
    this.backButton.textContent = "Choose again";
    this.note.textContent = "Your hold has lapsed.";
    say(
      this.words.lapsed ||
        `Your hold has lapsed, so the ${this.words.thing} was released for others. Please choose again.`,
      "error",
    );
    this.backButton.focus();
  }

  async back() {
    const wasHeld = this.state === "held";
    if (wasHeld) await this.release();
    this.reset();
    this.onReturn({ refresh: true });
    if (wasHeld) say(this.words.released || "Your hold was released. Choose another time.", "info");
    else clearMessages();
  }

  release({ keepalive = false } = {}) {
    if (!this.hold || this.state !== "held") return Promise.resolve(null);
    this.state = "released";
    this.stopTimer();
    return api(`${this.base}/${encodeURIComponent(this.hold.id)}`, {
      method: "DELETE",
      headers: { "Hold-Token": this.token },
      keepalive,
    });
  }

  releaseOnLeave() {
    if (this.state === "held") {
      this.leftWhileHeld = true;
      this.release({ keepalive: true });
    }
  }

  reset() {
    this.stopTimer();
    this.hold = null;
    this.token = null;
    this.state = "idle";
    this.section.hidden = true;
    this.doneSection.hidden = true;
    this.search.hidden = false;
  }

  stopTimer() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  fieldError(name, text) {
    const input = this.form.elements[name];
    const box = $(`${input.id}-error`);
    input.setAttribute("aria-invalid", text ? "true" : "false");
    if (box) {
      box.textContent = text || "";
      box.hidden = !text;
    }
  }

  validate() {
    const f = this.form.elements;
    const errors = {
      name: f.name.value.trim() ? "" : "Please enter your name.",
      phone: f.phone.value.trim().length >= 3 ? "" : "Please enter a phone number we can reach you on.",
      email: !f.email.value.trim() || f.email.validity.valid ? "" : "Please enter a valid email address, or leave it empty.",
    };
    for (const [name, text] of Object.entries(errors)) this.fieldError(name, text);
    const first = Object.keys(errors).find((name) => errors[name]);
    if (first) {
      f[first].focus();
      say(errors[first], "error");
      return false;
    }
    return true;
  }

  async confirm() {
    if (this.state === "lapsed") {
      say(describe({ code: "hold_expired" }) + " Please choose again.", "error");
      return;
    }
    if (this.state !== "held" || this.confirming || !this.validate()) return;
    const f = this.form.elements;
    const body = { name: f.name.value.trim(), phone: f.phone.value.trim() };
    if (f.email.value.trim()) body.email = f.email.value.trim();
    if (f.notes.value.trim()) body.notes = f.notes.value.trim();
    this.confirming = true;
    this.confirmButton.disabled = true;
    this.confirmButton.textContent = "Confirming…";
    const result = await api(`${this.base}/${encodeURIComponent(this.hold.id)}/confirm`, {
      method: "POST",
      body,
      headers: { "Hold-Token": this.token },
    });
    this.confirming = false;
    this.confirmButton.textContent = "Confirm booking";
    if (result.ok) {
      this.done(result.data);
      return;
    }
    const code = result.problem.code;
    if (code === "hold_expired" || code === "not_found" || code === "forbidden") {
      this.lapse();
      return;
    }
    this.confirmButton.disabled = this.state !== "held";
    if (code === "validation_error") {
      const detail = String(result.problem.detail || "");
      const field = ["phone", "email", "name", "notes"].find((name) => detail.toLowerCase().includes(name));
      if (field === "phone") this.fieldError("phone", "This does not look like a phone number. Please check it.");
      else if (field === "email") this.fieldError("email", "Please enter a valid email address, or leave it empty.");
      else if (field === "name") this.fieldError("name", "Please enter your name (up to 200 characters).");
      say(`Please check your details: ${detail || "something is not valid."}`, "error");
      if (field) f[field].focus();
      return;
    }
    say(describe(result.problem), "error");
  }

  done(reservation) {
    this.stopTimer();
    this.state = "done";
    this.section.hidden = true;
    this.search.hidden = true;
    $("done-ref").textContent = reservation.reference;
    const link = $("done-manage");
    if (reservation.manage_token) {
      link.href = `/manage/${encodeURIComponent(reservation.reference)}?token=${encodeURIComponent(reservation.manage_token)}`;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
    this.doneSection.hidden = false;
    $("done-h").focus();
    say(`Booked! Your reference is ${reservation.reference}.`, "success");
    this.onDone(reservation);
  }
}
