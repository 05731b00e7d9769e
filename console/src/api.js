// The console's one way to the network: the gateway's Connect unary JSON bridge (ADR 0051).
//
// `call("wayline.journeys.v1.JourneyService", "QueryPaths", {...})` POSTs the request as proto3 JSON to
// `/<package.Service>/<Method>` with the signed-in key as a bearer token and answers the response message as
// proto3 JSON (lowerCamelCase keys, enum names, int64 as strings, every field present). A non-200 answer
// throws an ApiError carrying Connect's error code, message and details.

const KEY_STORAGE = "wayline.console.apiKey";

// The full names of the public services, so pages do not spell them out.
export const SERVICES = Object.freeze({
  journeys: "wayline.journeys.v1.JourneyService",
  identity: "wayline.identity.v1.IdentityService",
  decision: "wayline.decision.v1.DecisionService",
  orchestrator: "wayline.orchestrator.v1.OrchestratorService",
  ingest: "wayline.ingest.v1.IngestService",
  admin: "wayline.gateway.v1.AdminService",
});

// An error the bridge answered (or the network gave). `code` is a Connect code in snake case
// ("invalid_argument", "not_found", "permission_denied", "unauthenticated", ...); `details` is the list the
// server sent ([{type, value, debug}]), empty when it sent none.
export class ApiError extends Error {
  constructor(code, message, details = [], status = 0) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.message = message;
    this.details = details;
    this.status = status;
  }
}

// The key lives in sessionStorage: it is gone when the tab closes and never leaves this origin.
export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearKey() {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: there is nothing to clear.
  }
}

// Connect's mapping for answers that carry no Connect error body (a proxy's page, an empty 502).
function codeForHttpStatus(status) {
  switch (status) {
    case 400:
      return "internal";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "unimplemented";
    case 429:
    case 502:
    case 503:
    case 504:
      return "unavailable";
    default:
      return "unknown";
  }
}

function parseJson(text) {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// How old an answer the console accepts on a page's first view (ADR 58): a day. The gateway answers a kept
// read within that age at once (and refreshes it in the background); answerAge() tells how old it was, and a
// Refresh button calls again without maxStale, which always computes.
export const FIRST_VIEW_MAX_STALE = 86400;

// The age in seconds the gateway gave each answer (its Age header), by response object.
const answerAges = new WeakMap();

// call(service, method, request, {maxStale, signal}): maxStale (seconds) lets the gateway answer a read
// (a NO_SIDE_EFFECTS RPC) from an answer up to that old, with `Cache-Control: max-stale`; without it every
// call is computed. signal: an AbortSignal.
export async function call(service, method, request = {}, { maxStale, signal } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (maxStale !== undefined && maxStale !== null) headers["Cache-Control"] = `max-stale=${Math.max(0, Math.floor(maxStale))}`;
  let response;
  try {
    response = await fetch(`/${encodeURIComponent(service)}/${encodeURIComponent(method)}`, {
      method: "POST",
      headers,
      body: JSON.stringify(request),
      credentials: "omit",
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError("unavailable", `the gateway could not be reached (${error && error.message})`);
  }
  const body = parseJson(await response.text());
  if (!response.ok) {
    const isConnectError = body !== null && typeof body === "object" && typeof body.code === "string";
    throw new ApiError(
      isConnectError ? body.code : codeForHttpStatus(response.status),
      isConnectError && typeof body.message === "string"
        ? body.message
        : `the gateway answered HTTP ${response.status}`,
      isConnectError && Array.isArray(body.details) ? body.details : [],
      response.status,
    );
  }
  if (body === undefined || body === null || typeof body !== "object") {
    throw new ApiError("internal", "the gateway answered something other than a JSON message", [], response.status);
  }
  const age = Number(response.headers.get("Age"));
  answerAges.set(body, Number.isFinite(age) && age > 0 ? age : 0);
  return body;
}

// How old (seconds) the gateway's answer was when it came: 0 when computed for this call, null for an object
// that call() did not return (a recorded response in a report).
export function answerAge(response) {
  return answerAges.has(response) ? answerAges.get(response) : null;
}

// The field violations of an INVALID_ARGUMENT's google.rpc.BadRequest details, as [{field, description}].
export function fieldViolations(error) {
  const violations = [];
  for (const detail of error.details ?? []) {
    const list = detail && detail.debug && detail.debug.fieldViolations;
    if (Array.isArray(list)) {
      for (const v of list) violations.push({ field: v.field ?? "", description: v.description ?? "" });
    }
  }
  return violations;
}
