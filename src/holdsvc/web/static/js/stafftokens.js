// A venue's staff tokens (managers and admins): list them, create one (its token is shown
// once, here), revoke one. Mounted by the staff page and the admin page.

import { api } from "./api.js";
import { el } from "./fmt.js";

const ROLE_WORDS = { host: "Host", manager: "Manager" };

function when(text) {
  return text ? new Date(text).toLocaleString() : "never";
}

// `root` holds #st-list, #st-form (name, role), #st-new; `base` is /v1/restaurants/{rid} or
// /v1/events/{eid}; `headers()` the bearer headers; `say`/`describe` the page's messages.
export function mountStaffTokens({ root, base, headers, say, describe }) {
  const list = root.querySelector(".st-list");
  // Mounting again (another venue picked) must not leave the last venue's listener behind.
  const form = root.querySelector(".st-form").cloneNode(true);
  root.querySelector(".st-form").replaceWith(form);
  const shown = root.querySelector(".st-new");
  shown.hidden = true;

  async function load() {
    const result = await api(`${base}/staff-tokens`, { headers: headers() });
    if (!result.ok) {
      list.replaceChildren(el("li", { class: "muted" }, describe(result.problem)));
      return;
    }
    const rows = result.data.staff_tokens.map((token) => {
      const revoke = el("button", { type: "button", class: "danger small" }, `Revoke ${token.name}`);
      revoke.addEventListener("click", async () => {
        revoke.disabled = true;
        const gone = await api(`${base}/staff-tokens/${encodeURIComponent(token.id)}`, {
          method: "DELETE",
          headers: headers(),
        });
        if (gone.ok) say(`${token.name} can no longer sign in.`, "success");
        else say(describe(gone.problem), "error");
        await load();
      });
      return el(
        "li",
        { class: "st-row" },
        el("span", {}, `${token.name} · ${ROLE_WORDS[token.role] || token.role} · last used ${when(token.last_used_at)}`),
        revoke,
      );
    });
    list.replaceChildren(...(rows.length ? rows : [el("li", { class: "muted" }, "No staff tokens yet.")]));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: form.elements.name.value.trim(), role: form.elements.role.value };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const made = await api(`${base}/staff-tokens`, { method: "POST", body, headers: headers() });
    button.disabled = false;
    if (!made.ok) {
      say(describe(made.problem), "error");
      return;
    }
    form.reset();
    shown.hidden = false;
    shown.querySelector(".st-token").textContent = made.data.token;
    shown.querySelector(".st-who").textContent = `${made.data.name} (${ROLE_WORDS[made.data.role]})`;
    say("Token created. Copy it now: it is shown only once.", "success");
    await load();
  });

  return { load };
}
