// api.js owns talking to agentd's /v1 API: the bearer token (kept in
// localStorage), JSON bodies, and problem+json answers turned into ApiError.

const TOKEN_KEY = "agentd.console.token";

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || "",
  set: (value) => {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  },
};

/** A failed request: HTTP status, the problem's `code`, `detail` and `errors`. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || `http_${status}`;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }

  /** "code: detail", and each validation error as "loc: msg". */
  describe() {
    const lines = [`${this.code}: ${this.message}`];
    for (const error of this.errors) lines.push(`${(error.loc || []).join(".")}: ${error.msg}`);
    return lines.join("\n");
  }
}

function headers(extra = {}) {
  const result = {accept: "application/json", ...extra};
  const value = token.get();
  if (value) result.authorization = `Bearer ${value}`;
  return result;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {title: response.statusText};
  }
}

/** The raw Response of a request; throws ApiError unless it is 2xx. */
export async function send(method, path, body, {accept, lastEventId, signal} = {}) {
  const extra = {};
  if (body !== undefined) extra["content-type"] = "application/json";
  if (accept) extra.accept = accept;
  if (lastEventId) extra["last-event-id"] = String(lastEventId);
  const response = await fetch(path, {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response;
}

async function json(method, path, body) {
  const response = await send(method, path, body);
  return response.status === 204 ? null : response.json();
}

export const api = {
  get: (path) => json("GET", path),
  post: (path, body) => json("POST", path, body ?? {}),
  patch: (path, body) => json("PATCH", path, body),
  delete: (path) => json("DELETE", path),
  /** A request answered with text/event-stream (or 204 when nothing is left). */
  stream: (method, path, body, options = {}) =>
    send(method, path, body, {...options, accept: "text/event-stream"}),
};

/** A path segment, escaped. */
export const seg = (value) => encodeURIComponent(value);
