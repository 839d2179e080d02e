// The local server's API: JSON requests, server-sent events, the model list. Errors become ApiError with a
// message that says what to do (OpenAI's error shape is read when the server sends it).
import { log } from './log.js';

export class ApiError extends Error {
  constructor(message, status = 0, code = null) { super(message); this.status = status; this.code = code; }
}

const listeners = new Set();
export function onReachability(fn) { listeners.add(fn); }
function reachable(ok, detail) { for (const fn of listeners) fn(ok, detail); }

async function describe(response, path) {
  const text = await response.text();
  if (response.status === 404 && !text.trim().startsWith('{')) {
    return new ApiError(`${path} is not available on this server (404): is it an up-to-date \`runanywhere serve\`?`, 404, 'not_found');
  }
  try {
    const body = JSON.parse(text);
    const err = body.error ?? body;
    return new ApiError(err.message ?? text, response.status, err.code ?? null);
  } catch {
    return new ApiError(text || `${response.status} ${response.statusText}`, response.status);
  }
}

export async function request(path, { method = 'GET', json, body, signal, headers = {} } = {}) {
  const init = { method, signal, headers: { ...headers } };
  if (json !== undefined) { init.body = JSON.stringify(json); init.headers['Content-Type'] = 'application/json'; }
  else if (body !== undefined) init.body = body;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    reachable(false, err);
    throw new ApiError('The local server is unreachable: is `runanywhere serve` still running?', 0, 'unreachable');
  }
  reachable(true);
  if (response.status === 413) throw new ApiError('That upload is too large for the server\'s limit.', 413, 'too_large');
  if (response.status === 503) {
    const retry = response.headers.get('Retry-After');
    const err = await describe(response, path);
    throw new ApiError(`${err.message}${retry ? ` (try again in ${retry} s)` : ''}`, 503, err.code ?? 'loading');
  }
  if (!response.ok) throw await describe(response, path);
  return response;
}

export const getJSON = async (path, options) => (await request(path, options)).json();
export const postJSON = async (path, json, options = {}) => (await request(path, { ...options, method: 'POST', json })).json();

// Yields each `data:` payload of a server-sent event stream (parsed JSON) until `[DONE]` or the end.
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (!data) continue;
        if (data === '[DONE]') return;
        const parsed = JSON.parse(data);
        log.debug('event', parsed);
        if (parsed.error) throw new ApiError(parsed.error.message ?? String(parsed.error), 0, parsed.error.code);
        yield parsed;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export async function* stream(path, json, signal) {
  yield* events(await request(path, { method: 'POST', json, signal }));
}

// Capabilities may be a list (["chat", ...]) or a mapping ({chat: true, ...}).
export function can(model, capability) {
  const caps = model.capabilities ?? [];
  return Array.isArray(caps) ? caps.includes(capability) : Boolean(caps[capability]);
}

const READINESS = { loaded: 0, stored: 1, available: 2, downloading: 3, remote: 4 };
const rank = (m) => (READINESS[m.state] ?? 5) * 2 + (m.default ? 0 : 1);

// The server's models (those that can do `capability`), ready ones first, each capability's default first.
export async function models(capability) {
  const list = (await getJSON('/v1/models')).data ?? [];
  return (capability ? list.filter((m) => can(m, capability)) : list).sort((a, b) => rank(a) - rank(b));
}
