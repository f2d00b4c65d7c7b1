// The page's only way to the server: the JSON API and one shared event stream.

export class ApiError extends Error {}

export async function getJSON(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
    else if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`${response.status} ${response.statusText}`);
  }
  if (!response.ok || (body && body.error)) throw new ApiError(body && body.error ? body.error : response.statusText);
  return body;
}

// One EventSource for the whole page; pages subscribe to "counters" and unsubscribe on leave.
const listeners = new Set();
let source = null;
let lastCounters = null;

export function onCounters(fn) {
  listeners.add(fn);
  if (lastCounters) fn(lastCounters);
  return () => listeners.delete(fn);
}

export function connectEvents(setStatus) {
  if (source) return;
  source = new EventSource("/api/events");
  source.addEventListener("open", () => setStatus("live", "live"));
  source.addEventListener("error", () => setStatus("reconnecting…", "off"));
  source.addEventListener("counters", (event) => {
    lastCounters = JSON.parse(event.data);
    setStatus("live", "live", lastCounters);
    for (const fn of [...listeners]) fn(lastCounters);
  });
}
