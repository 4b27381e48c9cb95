// The report API client. The key travels only in the Authorization header:
// never in a URL, so it stays out of browser history, proxies and server logs.

const keyStorage = 'chatreport.apiKey';

export const credentials = {
  get() {
    try {
      return sessionStorage.getItem(keyStorage) || '';
    } catch {
      return '';
    }
  },
  set(key) {
    sessionStorage.setItem(keyStorage, key);
  },
  clear() {
    try {
      sessionStorage.removeItem(keyStorage);
    } catch {
      // nothing stored
    }
  },
};

// ApiError is an answer other than 2xx. problem is the RFC 9457 document when
// the server sent one.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  // paramErrors are the per-parameter messages of a 400.
  get paramErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

// NetworkError is a request that got no answer.
export class NetworkError extends Error {}

async function request(path, params, { signal, accept = 'application/json' } = {}) {
  const query = params ? params.toString() : '';
  let res;
  try {
    res = await fetch(query ? `${path}?${query}` : path, {
      headers: { Authorization: `Bearer ${credentials.get()}`, Accept: accept },
      cache: 'no-store',
      signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new NetworkError(err.message);
  }
  if (!res.ok) {
    let problem;
    if (/json/.test(res.headers.get('Content-Type') || '')) {
      problem = await res.json().catch(() => undefined);
    }
    throw new ApiError(res.status, problem);
  }
  return res;
}

const base = '/api/v1';

export const api = {
  async sessions(params, signal) {
    return (await request(`${base}/sessions`, params, { signal })).json();
  },
  async session(id, signal) {
    return (await request(`${base}/sessions/${encodeURIComponent(id)}`, null, { signal })).json();
  },
  async facets(from, to, signal) {
    const p = new URLSearchParams();
    if (from && to) {
      p.set('from', from);
      p.set('to', to);
    }
    return (await request(`${base}/facets`, p, { signal })).json();
  },
  async rules(signal) {
    return (await request(`${base}/filter/rules`, null, { signal })).json();
  },
  transcript(id) {
    return request(`${base}/sessions/${encodeURIComponent(id)}/transcript`, null, { accept: 'text/plain' });
  },
  export(params, format, signal) {
    const p = new URLSearchParams(params);
    p.set('format', format);
    return request(`${base}/export`, p, { signal, accept: format === 'csv' ? 'text/csv' : 'application/x-ndjson' });
  },
};

// fileName reads the name a Content-Disposition header suggests.
function fileName(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(cd);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(cd);
  return plain ? plain[1].trim() : fallback;
}

// pickFile asks where to save a file, when the browser can write one as it
// arrives (the File System Access API: Chromium, on https or localhost). It
// must run first in a click handler, before any await. It resolves to null
// when the browser cannot, and rejects with an AbortError when the operator
// cancels.
export async function pickFile(suggestedName, description, mimeType) {
  if (typeof window.showSaveFilePicker !== 'function') return null;
  const ext = suggestedName.slice(suggestedName.lastIndexOf('.'));
  try {
    return await window.showSaveFilePicker({ suggestedName, types: [{ description, accept: { [mimeType]: [ext] } }] });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    return null; // e.g. a SecurityError: fall back to a download
  }
}

// stream writes a response into a picked file as it arrives, so an export
// of any size never sits in the tab's memory; through, when given, sees the
// bytes on their way. Aborting signal discards the file's new content.
export async function stream(res, handle, through, signal) {
  const writable = await handle.createWritable();
  const body = through ? res.body.pipeThrough(through) : res.body;
  await body.pipeTo(writable, { signal });
  return { name: handle.name };
}

// save downloads a response as a file. The body is read into a Blob, which
// the browser keeps on disk when it is large, and handed to a temporary
// link: the request itself carried the key in its header, the link carries
// no key at all.
export async function save(res, fallbackName, through) {
  const name = fileName(res, fallbackName);
  const blob = await (through ? new Response(res.body.pipeThrough(through)) : res).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { name, size: blob.size, type: blob.type };
}
