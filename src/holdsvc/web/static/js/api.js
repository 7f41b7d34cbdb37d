// fetch() around the JSON API: every answer becomes {ok, status, data, problem}; a network
// failure is {ok: false, status: 0, problem: {code: "network"}}; errors are problem+json.

export async function api(path, { method = "GET", body, headers = {}, keepalive = false, signal } = {}) {
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    keepalive,
    signal,
    cache: "no-store",
    credentials: "same-origin",
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    return { ok: false, status: 0, data: null, problem: { code: "network", detail: String(error) } };
  }
  let data = null;
  if (response.status !== 204) {
    const text = await response.text().catch(() => "");
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
  }
  if (response.ok) return { ok: true, status: response.status, data, problem: null, response };
  const problem =
    data && typeof data.code === "string"
      ? data
      : { code: response.status >= 500 ? "unavailable" : "validation_error", status: response.status, detail: "" };
  return { ok: false, status: response.status, data, problem, response };
}

// Every page of a list the API answers a page at a time: GET path, then each next_cursor,
// with the items under `key` joined; the first failure is the answer.
export async function apiAll(path, key, options = {}) {
  const items = [];
  let cursor = null;
  for (;;) {
    const joiner = path.includes("?") ? "&" : "?";
    const url = cursor === null ? path : `${path}${joiner}cursor=${encodeURIComponent(cursor)}`;
    const result = await api(url, options);
    if (!result.ok) return result;
    items.push(...result.data[key]);
    cursor = result.data.next_cursor || null;
    if (cursor === null) return { ...result, data: { ...result.data, [key]: items, next_cursor: null } };
  }
}

export function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

// A random id that survives reloads: holds are counted per user (max_holds_per_user).
export function guestId() {
  const key = "holdsvc:guest";
  let id = null;
  try {
    id = localStorage.getItem(key);
    if (!id) {
      id = `guest-${crypto.randomUUID()}`;
      localStorage.setItem(key, id);
    }
  } catch {
    id = id || `guest-${crypto.randomUUID()}`;
  }
  return id;
}
