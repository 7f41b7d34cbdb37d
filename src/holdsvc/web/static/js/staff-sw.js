// Service worker of the staff pages (scope /staff/): the page and its static files come from
// the network when it answers, else from this cache, so a reload works offline. The API and
// its change stream are never intercepted; the data itself is kept in IndexedDB by staff.js.

const CACHE = "holdsvc-staff-v1";
const ASSETS = [
  "/static/app.css",
  "/static/htmx.min.js",
  "/static/js/staff.js",
  "/static/js/api.js",
  "/static/js/auth.js",
  "/static/js/fmt.js",
  "/static/js/gridkeys.js",
  "/static/js/stafftokens.js",
  "/static/js/staffwaitlist.js",
  "/static/js/messages.js",
  "/js/codes.js",
  "/static/js/sse.js",
  "/static/js/store.js",
];
const NETWORK_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(ASSETS.map((url) => new Request(url, { cache: "no-store" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith("holdsvc-staff-") && key !== CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const page = request.mode === "navigate" && url.pathname.startsWith("/staff/");
  const asset = url.pathname.startsWith("/static/") || url.pathname === "/js/codes.js";
  if (!page && !asset) return;
  event.respondWith(networkFirst(request, page, url));
});

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

async function networkFirst(request, page, url) {
  const cache = await caches.open(CACHE);
  const key = page ? url.origin + url.pathname : request;
  const cached = () => cache.match(key, { ignoreSearch: page, ignoreVary: true });
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
    if (response.ok) {
      await cache.put(key, response.clone());
      return response;
    }
    return (await cached()) || response;
  } catch (error) {
    const hit = await cached();
    if (hit) return hit;
    throw error;
  }
}
