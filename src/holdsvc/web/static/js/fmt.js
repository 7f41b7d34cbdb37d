// Dates and times as people read them. Slot ids and API times are already in the venue's
// local time, so formatting never converts zones: it reads the wall-clock parts.

function parts(iso) {
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  return { y, m, d, weekday: new Date(Date.UTC(y, m - 1, d)).getUTCDay() };
}

// The venue's locale (BCP 47), set by the page: dates, times and numbers are written its way.
export function locale() {
  return (typeof document !== "undefined" && document.body && document.body.dataset.locale) || "en-US";
}

function formatter(options) {
  try {
    return new Intl.DateTimeFormat(locale(), { ...options, timeZone: "UTC" });
  } catch {
    return new Intl.DateTimeFormat("en-US", { ...options, timeZone: "UTC" });
  }
}

// The wall-clock parts, read as UTC: formatting never converts zones.
function wall(iso) {
  const { y, m, d } = parts(iso);
  const h = iso.length >= 16 ? Number(iso.slice(11, 13)) : 0;
  const min = iso.length >= 16 ? Number(iso.slice(14, 16)) : 0;
  return new Date(Date.UTC(y, m - 1, d, h, min));
}

export function dayLabel(iso) {
  return formatter({ weekday: "long", year: "numeric", month: "long", day: "numeric" }).format(wall(iso));
}

export function shortDay(iso) {
  return formatter({ weekday: "short", month: "short", day: "numeric" }).format(wall(iso));
}

export function clock(iso) {
  if (!iso || iso.length < 16) return "";
  return formatter({ hour: "numeric", minute: "2-digit" }).format(wall(iso));
}

export function number(value) {
  try {
    return new Intl.NumberFormat(locale()).format(value);
  } catch {
    return String(value);
  }
}

export function addDays(isoDay, days) {
  const { y, m, d } = parts(isoDay);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

// Today's date in an IANA zone, as YYYY-MM-DD.
export function todayIn(timeZone) {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

export function mmss(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

export function spoken(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  if (total >= 120) return `${Math.round(total / 60)} minutes`;
  if (total >= 60) return "1 minute";
  return total === 1 ? "1 second" : `${total} seconds`;
}

export function timeNow() {
  return new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
