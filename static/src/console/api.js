// The console's HTTP client: same-origin fetch with the session cookie, JSON in
// and out, and the CSRF token (kept in memory only, from the session JSON) on
// every state-changing request. Tokens never go into URLs.

let csrf = null;
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setCsrf(value) {
  csrf = typeof value === 'string' && value ? value : null;
}

/** Called with the error when a request other than login answers 401 (session gone). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** `?a=1&b=2` from an object, skipping empty values; '' when nothing is left. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === '') continue;
    q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function request(method, path, body, { auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, `The server could not be reached (${err && err.message ? err.message : err}).`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
  }
  if (!res.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `${res.status} ${res.statusText}`;
    const error = new ApiError(res.status, message);
    if (res.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const get = (path, params) => request('GET', path + query(params));
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
