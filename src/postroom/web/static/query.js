// Searches the UI writes itself, and the URL a page of the list is asked for at. No DOM here:
// tests/unit/web/test_query_js.py runs this module in Node beside the server's side of each.

/**
 * The search for one tag: `tag:name`, quoted when the name holds a space or a quote (quotes
 * are dropped: the syntax has no escape for them).
 */
export function tagQuery(tag) {
  return /^[^\s"]+$/.test(tag) ? `tag:${tag}` : `tag:"${tag.replace(/"/g, '')}"`;
}

/**
 * A page of the list: the project's messages, or a search when `query` is not empty, without
 * counting a search's matches (counts=skip). The shell preloads this very URL for a search
 * (web/routes.py first_page_url), byte for byte, so the script's request is the preloaded one.
 */
export function listUrl(base, query, start, limit) {
  const params = new URLSearchParams({ start: String(start), limit: String(limit), counts: 'skip' });
  const q = (query || '').trim();
  if (q) params.set('query', q);
  return `${base}/api/v1/${q ? 'search' : 'messages'}?${params}`;
}
