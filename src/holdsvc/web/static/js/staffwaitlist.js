// The staff screen's waitlist: for each slot of the day shown, the entries waiting and the
// ones offered a freed table, oldest first. Read again whenever the feed reports a change.

import { api } from "./api.js";
import { clock, el } from "./fmt.js";

export function mountWaitlist({ root, base, headers }) {
  let generation = 0;

  async function load(slots) {
    const mine = ++generation;
    const results = await Promise.all(
      slots.map((slot) => api(`${base}/waitlist?slot=${encodeURIComponent(slot)}`, { headers: headers() })),
    );
    if (mine !== generation) return; // a newer read is on its way
    const rows = [];
    results.forEach((result, n) => {
      if (!result.ok) return;
      for (const entry of result.data.entries) rows.push({ slot: slots[n], entry });
    });
    const list = root.querySelector("#waitlist-list");
    list.replaceChildren();
    if (!rows.length) {
      list.append(el("li", { class: "muted", text: "Nobody is waiting on this day." }));
      return;
    }
    for (const { slot, entry } of rows) {
      const state =
        entry.status === "offered" ? "offered a table" : `waiting, number ${entry.position}`;
      list.append(
        el("li", { "data-entry": entry.id, class: entry.status },
          `${clock(slot)} · ${entry.name} (${entry.party_size}) · ${entry.phone} · ${state}`),
      );
    }
  }

  return { load };
}
