// The HTTP API the UI uses: the same Mailpit-compatible /api/v1 everyone else uses.

import { listUrl } from './query.js';

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

const enc = encodeURIComponent;

/**
 * The project's prefix: "" for the default project's inbox, `/p/<project>` for another one
 * (the shell says which in `data-base`). Every page and API URL of the inbox starts with it.
 */
export const base = (document.body && document.body.dataset.base) || '';

/** With an admin logged in, changes must carry the session's CSRF token (see api/auth.py). */
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)postroom_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : '';
}

async function call(
  method,
  path,
  { body, as = 'json', signal, cache = 'no-store', keepalive = false } = {},
) {
  const init = { method, cache, signal, headers: {}, keepalive };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET') {
    const token = csrfToken();
    if (token) init.headers['X-CSRF-Token'] = token;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError('Postroom is not reachable. Is postroom serve still running?', 0);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`.trim();
    try {
      const data = await response.json();
      if (data && typeof data.Error === 'string') message = data.Error;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(message, response.status);
  }
  if (as === 'text') return response.text();
  if (as === 'none') return null;
  return response.json();
}

/**
 * The inbox's first page as the shell carries it (a JSON data block; web/routes.py renders its
 * rows into the list too), taken once: null when the shell has none or it is not this page.
 */
export function takeInlinePage(query, start, limit) {
  const block = document.getElementById('first-page');
  if (!block) return null;
  block.remove();
  if ((query || '').trim()) return null;
  if (Number(block.dataset.start) !== start || Number(block.dataset.limit) !== limit) return null;
  try {
    return JSON.parse(block.textContent);
  } catch {
    return null;
  }
}

export const api = {
  /**
   * A page of summaries, newest first; a search when `query` is not empty. The URL must stay
   * what the shell preloads (web/routes.py first_page_url), and the default cache mode lets the
   * browser use that preload (the API sends no caching headers, so nothing else is cached).
   */
  list(query, start, limit, signal) {
    // counts=skip: the page without counting a search's matches (messages_count is null,
    // `more` says whether matches follow); `matchCounts` asks for the count afterwards.
    return call('GET', listUrl(base, query, start, limit), { signal, cache: 'default' });
  },
  /** The exact counts of a search (no messages): messages_count and messages_unread. */
  matchCounts(query, signal) {
    const params = new URLSearchParams({ limit: '0', query: query.trim() });
    return call('GET', `${base}/api/v1/search?${params}`, { signal });
  },
  message: (id) => call('GET', `${base}/api/v1/message/${enc(id)}`),
  headers: (id) => call('GET', `${base}/api/v1/message/${enc(id)}/headers`),
  raw: (id) => call('GET', `${base}/api/v1/message/${enc(id)}/raw`, { as: 'text' }),
  tags: () => call('GET', `${base}/api/v1/tags`),
  webui: () => call('GET', `${base}/api/v1/webui`),
  htmlCheck: (id) => call('GET', `${base}/api/v1/message/${enc(id)}/html-check`),
  linkCheck: (id, follow) =>
    call('GET', `${base}/api/v1/message/${enc(id)}/link-check?follow=${follow ? 'true' : 'false'}`),
  spamCheck: (id) => call('GET', `${base}/api/v1/message/${enc(id)}/sa-check`),
  headersCheck: (id) => call('GET', `${base}/api/v1/message/${enc(id)}/headers-check`),
  release: (id, to) =>
    call('POST', `${base}/api/v1/message/${enc(id)}/release`, { body: { To: to }, as: 'text' }),
  textFromHtml: (id) => call('GET', `${base}/view/${enc(id)}.txt`, { as: 'text' }),
  setRead: (ids, read) =>
    call('PUT', `${base}/api/v1/messages`, { body: { IDs: ids, Read: read }, as: 'none' }),
  markAllRead: (search) =>
    call('PUT', `${base}/api/v1/messages`, {
      body: search ? { Search: search, Read: true } : { Read: true },
      as: 'none',
    }),
  remove: (ids, keepalive = false) =>
    call('DELETE', `${base}/api/v1/messages`, { body: { IDs: ids }, as: 'none', keepalive }),
  tagCounts: () => call('GET', `${base}/api/v1/tag-counts`),
  removeAll: () => call('DELETE', `${base}/api/v1/messages`, { as: 'none' }),
  removeMatching: (query) =>
    call('DELETE', `${base}/api/v1/search?query=${enc(query)}`, { as: 'none' }),
  projects: () => call('GET', '/ui/projects'),
  setTags: (ids, tags) => call('PUT', `${base}/api/v1/tags`, { body: { IDs: ids, Tags: tags }, as: 'none' }),
};

export const urls = {
  inbox: () => `${base}/`,
  events: () => `${base}/api/v1/events`,
  message: (id) => `${base}/message/${enc(id)}`,
  raw: (id, download = false) => `${base}/api/v1/message/${enc(id)}/raw${download ? '?dl=1' : ''}`,
  part: (id, part, download = false) =>
    `${base}/api/v1/message/${enc(id)}/part/${enc(part)}${download ? '?dl=1' : ''}`,
  html: (id, remote = false) => `${base}/view/${enc(id)}.html?embed=1${remote ? '&remote=1' : ''}`,
};
