// The REST API as the portal calls it: the token from sessionStorage, the envelope parsed.
// Everything the page shows or does goes through api(): every action is a documented route.

export const TOKEN_KEY = "brandhooks.token";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// An error answer of the API (its envelope {http, code, message}), or a network failure
// (http 0, code "Network").
export class ApiError extends Error {
  constructor(http, code, message) {
    super(message);
    this.name = "ApiError";
    this.http = http;
    this.code = code;
    this.message = message;
  }
}

// method, path (from the server root, e.g. "/tokens/current"), optional JSON body.
// Answers {data, info} on 2xx (null on 204); throws ApiError otherwise.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "Network", `the server could not be reached (${error.message})`);
  }
  if (response.status === 204) return null;
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  if (response.ok && envelope && "data" in envelope) {
    return { data: envelope.data, info: envelope.info };
  }
  if (envelope && typeof envelope.message === "string") {
    throw new ApiError(envelope.http || response.status, envelope.code || "Error", envelope.message);
  }
  throw new ApiError(response.status, "Error", `unexpected answer (HTTP ${response.status})`);
}
