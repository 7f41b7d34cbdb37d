// A tiny IndexedDB key-value store: the staff page keeps its last synced data here, so the
// list stays readable while the server is unreachable.

const DB_NAME = "holdsvc-staff";
const STORE = "snapshots";
let opened = null;

function open() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

async function run(mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export async function load(key) {
  try {
    return (await run("readonly", (store) => store.get(key))) || null;
  } catch {
    return null;
  }
}

export async function save(key, value) {
  try {
    await run("readwrite", (store) => store.put(value, key));
    return true;
  } catch {
    return false;
  }
}

export async function remove(key) {
  try {
    await run("readwrite", (store) => store.delete(key));
  } catch {
    // nothing to forget
  }
}
