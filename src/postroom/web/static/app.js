// Postroom web UI: state, routing, live updates, keyboard and actions.
//
// URLs: `/` (list), `/message/<ID>` (a message open), both with `?q=<search>&start=<offset>`.
// `/#/message/<ID>` and Mailpit's `/view/<ID>` are accepted and rewritten to `/message/<ID>`.
// Another project than the default one: the same under `/p/<project>` (api.js `base`).

import { ApiError, api, base, takeInlinePage, urls } from './api.js';
import { debounce, h, srOnly } from './dom.js';
import { formatCount, plural } from './format.js';
import { ListView } from './list.js';
import { MessageView } from './message.js';
import { LIST_WIDTH, PAGE_SIZES, remember } from './prefs.js';
import { tagQuery } from './query.js';
import './theme.js';

const body = document.body;
let pageSize = Number.parseInt(body.dataset.pageSize, 10) || 50; // the page size choice
const config = {
  label: body.dataset.label || 'Postroom',
  smtp: body.dataset.smtp || '',
  smtpExample: body.dataset.smtpExample || '',
  http: body.dataset.http || location.host,
  project: body.dataset.project || 'default',
};

const $ = (id) => document.getElementById(id);
const el = {
  app: $('app'),
  search: $('search'),
  searchForm: $('search-form'),
  helpToggle: $('search-help-toggle'),
  help: $('search-help'),
  live: $('live-status'),
  count: $('list-count'),
  state: $('list-state'),
  list: $('message-list'),
  listPane: $('list-pane'),
  prev: $('page-prev'),
  next: $('page-next'),
  markAll: $('mark-all-read'),
  deleteAll: $('delete-all'),
  message: $('message'),
  toast: $('toast'),
  confirm: $('confirm'),
  confirmText: $('confirm-text'),
  confirmOk: $('confirm-ok'),
  projects: $('projects'),
  projectName: $('project-name'),
  projectUnread: $('project-unread'),
  projectsMenu: $('projects-menu'),
  panes: $('panes'),
  tagSide: $('tag-side'),
  tagList: $('tag-list'),
  bulk: $('bulk-bar'),
  bulkCount: $('bulk-count'),
  bulkRead: $('bulk-read'),
  bulkUnread: $('bulk-unread'),
  bulkDelete: $('bulk-delete'),
  bulkClear: $('bulk-clear'),
  selectAll: $('select-all'),
  pageSize: $('page-size'),
  density: $('density-toggle'),
  resizer: $('pane-resizer'),
};

const state = {
  q: '',
  start: 0,
  page: null, // the last list response
  listError: null,
  openId: null,
  cursorId: null,
  tags: [],
  firstRender: true,
  scrollToOpen: false, // a deep link: scroll the open message's row into view once listed
  selected: new Set(), // IDs ticked for bulk actions (this page)
  lastTicked: null, // the anchor of a shift-click range
  pending: null, // a delete waiting for its Undo window: { ids, timer }
  tagCounts: [],
};

const listView = new ListView(el.list);
const messageView = new MessageView(el.message, {
  back: () => closeMessage(),
  remove: (id) => removeMessages([id]),
  setRead: (id, read) => setRead([id], read),
  setTags: (id, tags) => setTags(id, tags),
  copyLink: (id) => copyLink(id),
  knownTags: () => state.tags,
  step: (delta) => moveCursor(delta, { open: true }),
  tagFilter: (tag) => filterByTag(tag),
});

// ---------------------------------------------------------------- routing

function readLocation() {
  const url = new URL(location.href);
  let id = null;
  const pathname = base && url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : url.pathname;
  const path = pathname.match(/^\/(?:message|view)\/([^/]+)$/);
  if (path) id = decodeURIComponent(path[1]);
  const hash = url.hash.match(/^#\/?(?:message|view)\/([^/?#]+)/);
  if (!id && hash) id = decodeURIComponent(hash[1]);
  const start = Number.parseInt(url.searchParams.get('start') || '0', 10);
  return {
    id,
    q: url.searchParams.get('q') || '',
    start: Number.isFinite(start) && start > 0 ? start : 0,
  };
}

function urlFor({ id, q, start }) {
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (start) params.set('start', String(start));
  const query = params.toString();
  return `${id ? urls.message(id) : urls.inbox()}${query ? `?${query}` : ''}`;
}

function syncUrl(push) {
  const target = urlFor({ id: state.openId, q: state.q, start: state.start });
  if (target === location.pathname + location.search && !location.hash) return;
  history[push ? 'pushState' : 'replaceState'](null, '', target);
}

function applyLocation() {
  const loc = readLocation();
  const listChanged = loc.q !== state.q || loc.start !== state.start;
  state.q = loc.q;
  state.start = loc.start;
  if (el.search.value.trim() !== state.q) el.search.value = state.q;
  if (listChanged || !state.page) loadList();
  if (loc.id !== state.openId) {
    if (loc.id) openMessage(loc.id, { push: false });
    else closeMessage({ push: false });
  }
}

// ---------------------------------------------------------------- list

let listRequest = 0;
let listAbort = null;
let listLoading = Promise.resolve();

/** Load the list for the current state. The promise settles when the list on screen is the
 * one the state asks for, even if a newer load replaced this one meanwhile. */
function loadList() {
  listLoading = loadListNow();
  return listLoading;
}

async function loadListNow() {
  const ticket = ++listRequest;
  if (listAbort) listAbort.abort();
  listAbort = new AbortController();
  el.listPane.setAttribute('aria-busy', 'true');
  try {
    // The first time, the page the shell carries (its rows are on screen already), if any.
    const inline = state.firstRender ? takeInlinePage(state.q, state.start, pageSize) : null;
    const page = inline || (await api.list(state.q, state.start, pageSize, listAbort.signal));
    if (ticket !== listRequest) return listLoading; // superseded: wait for the newer load
    if (inline) listView.adopt(page.messages);
    if (state.start > 0 && page.messages.length === 0 && page.messages_count > 0) {
      // The page we were on is gone (deletions): go to the last one that exists.
      state.start = Math.max(0, Math.floor((page.messages_count - 1) / pageSize) * pageSize);
      syncUrl(false);
      return loadList();
    }
    withoutPending(page);
    state.page = page;
    state.listError = null;
    state.tags = page.tags || [];
    pruneSelection();
    loadTagCountsSoon();
    if (page.messages_count === null) countMatchesSoon(ticket, page);
  } catch (error) {
    if (ticket !== listRequest) return listLoading;
    if (error && error.name === 'AbortError') return listLoading;
    state.listError = error;
  } finally {
    if (ticket === listRequest) el.listPane.removeAttribute('aria-busy');
  }
  renderList();
  return undefined;
}

/** A search's page comes without its count (counting reads every match): ask for the exact
 * count once the rows are on screen and show it when it comes, if the list is still that one. */
function countMatchesSoon(ticket, page) {
  const query = state.q;
  setTimeout(async () => {
    if (ticket !== listRequest || state.page !== page) return;
    try {
      const counts = await api.matchCounts(query, listAbort ? listAbort.signal : undefined);
      if (ticket !== listRequest || state.page !== page) return;
      page.messages_count = counts.messages_count;
      page.messages_unread = counts.messages_unread;
      if (state.start > 0 && page.messages.length === 0 && page.messages_count > 0) {
        state.start = Math.max(0, Math.floor((page.messages_count - 1) / pageSize) * pageSize);
        syncUrl(false);
        loadList();
        return;
      }
      renderCounts();
      renderNav();
    } catch (error) {
      // The count stays "counting…" (the rows are right); a newer list replaces it anyway.
      if (!(error && error.name === 'AbortError')) console.warn('counting the matches failed', error);
    }
  }, 0);
}

/** Whether messages follow the page: from the count, or from `more` while it is unknown. */
function moreAfter(page, shown) {
  if (!page) return false;
  return page.messages_count === null ? Boolean(page.more) : state.start + shown < page.messages_count;
}

const reloadSoon = debounce(loadList, 150);
const fillTimesSoon = debounce(() => listView.fillExactTimes(), 50);

function renderList() {
  const page = state.page;
  const messages = page && !state.listError ? page.messages : [];
  listView.render(messages, state.openId, state.selected);
  if (state.cursorId && !listView.link(state.cursorId)) state.cursorId = null;
  listView.setCursor(state.cursorId, false);
  if (state.scrollToOpen && state.openId && listView.link(state.openId)) {
    state.scrollToOpen = false;
    listView.reveal(state.openId, 'center');
  }
  renderNav();
  renderBulk();
  markCurrentTag();
  renderListState();
  renderCounts();
  fillTimesSoon();
  if (state.firstRender && (messages.length || state.page || state.listError)) {
    state.firstRender = false;
    performance.mark('postroom:list-rendered');
    if (messages.length) performance.mark('postroom:first-rows');
  }
  if (state.openId && page) {
    const summary = messages.find((m) => m.ID === state.openId);
    if (summary) messageView.updateSummary(summary);
  }
}

function renderListState() {
  const page = state.page;
  const box = el.state;
  box.replaceChildren();
  box.className = 'list-state';
  if (state.listError) {
    const error = state.listError;
    const searchProblem = state.q && error.status === 400;
    box.classList.add('error');
    box.setAttribute('role', 'alert');
    if (error.status === 0) {
      box.append(
        h('h2', null, 'Postroom is not reachable'),
        h('p', null, 'Is ', h('code', null, 'postroom serve'), ' still running? Start it, then try again.'),
      );
    } else {
      box.append(
        h('h2', null, searchProblem ? 'That search is not valid' : 'Messages could not be loaded'),
        h('p', null, error.message),
        searchProblem ? h('p', null, 'The search syntax help (?) next to the search box lists what works.') : null,
      );
    }
    box.append(h('button', { type: 'button', class: 'button', onclick: () => loadList() }, 'Try again'));
    box.hidden = false;
    return;
  }
  box.removeAttribute('role');
  if (!page || page.messages.length) {
    box.hidden = true;
    return;
  }
  if (state.q) {
    box.append(
      h('h2', null, 'No messages match'),
      h('p', null, 'Nothing matches ', h('code', null, state.q), '.'),
      h('button', { type: 'button', class: 'button', onclick: () => setQuery('', true) }, 'Clear search'),
    );
  } else if (base) {
    box.append(
      h('h2', null, 'No messages yet'),
      h(
        'p',
        null,
        'Mail comes into this project through a capture route of the capture SMTP server (by SMTP user name or recipient: Admin → Capture routes), or through its API: ',
        h('code', null, 'POST /api/v1/send'),
        ' with one of its keys.',
      ),
    );
  } else {
    box.append(
      h('h2', null, 'No messages yet'),
      config.smtp
        ? h('p', null, 'Send mail to ', h('code', null, config.smtp), ' and it appears here at once.')
        : h('p', null, 'Send mail to the capture SMTP server and it appears here at once.'),
      config.smtpExample ? h('p', null, 'For example: ', h('code', { class: 'example' }, config.smtpExample)) : null,
    );
  }
  box.hidden = false;
}

function renderCounts() {
  const page = state.page;
  const label = config.label;
  if (!page || state.listError) {
    el.count.textContent = state.listError ? '' : 'Loading…';
    for (const button of [el.prev, el.next, el.markAll, el.deleteAll]) button.disabled = true;
    return;
  }
  const matched = page.messages_count;
  const shown = page.messages.length;
  const range = shown ? `${formatCount(state.start + 1)}–${formatCount(state.start + shown)} of ` : '';
  const counting = matched === null;
  let text = '';
  if (counting) text = shown || state.start ? `${range}… matches (counting)` : plural(0, 'match', 'matches');
  else if (state.q) text = `${range}${plural(matched, 'match', 'matches')}`;
  else text = `${range}${plural(page.total, 'message', 'messages')}${page.unread ? `, ${formatCount(page.unread)} unread` : ''}`;
  el.count.textContent = text;
  el.prev.disabled = state.start === 0;
  el.next.disabled = !moreAfter(page, shown);
  el.deleteAll.disabled = counting ? shown === 0 && state.start === 0 : matched === 0;
  el.markAll.disabled = (state.q ? page.messages_unread : page.unread) === 0;
  const deleteLabel = state.q
    ? `Delete the ${counting ? 'messages' : plural(matched, 'message', 'messages')} matching the search`
    : 'Delete all messages';
  el.deleteAll.setAttribute('aria-label', deleteLabel);
  el.deleteAll.title = deleteLabel;
  const readLabel = state.q ? 'Mark the matching messages as read' : 'Mark all as read';
  el.markAll.setAttribute('aria-label', readLabel);
  el.markAll.title = readLabel;
  const name = projectLabel();
  const titled = name ? `${name} · ${label}` : label;
  document.title = page.unread > 0 ? `(${formatCount(page.unread)}) ${titled}` : titled;
  renderProjectBadge(page.unread);
}

function setQuery(q, immediate) {
  const trimmed = q.trim();
  if (el.search.value.trim() !== trimmed) el.search.value = trimmed;
  if (trimmed === state.q) return;
  state.q = trimmed;
  state.start = 0;
  state.cursorId = null;
  syncUrl(false);
  if (immediate) loadList();
  else reloadSoon();
}

function goToPage(start) {
  state.start = Math.max(0, start);
  state.cursorId = null;
  syncUrl(true);
  return loadList();
}

// ---------------------------------------------------------------- message

let messageRequest = 0;

async function openMessage(id, { push = true, focus = false } = {}) {
  const ticket = ++messageRequest;
  state.openId = id;
  state.cursorId = id;
  el.app.dataset.view = 'message';
  listWidth.describe();
  el.message.hidden = false;
  listView.markOpen(id);
  listView.setCursor(id, false);
  listView.reveal(id);
  syncUrl(push);
  if (messageView.id !== id) messageView.showLoading();
  markReadLocally(id);
  try {
    const message = await api.message(id);
    if (ticket !== messageRequest) return;
    message.Read = true; // fetching a message marks it read
    if (message.ID !== id) {
      // An alias such as /message/latest: show the real ID from now on.
      state.openId = message.ID;
      state.cursorId = message.ID;
      listView.markOpen(message.ID);
      syncUrl(false);
    }
    messageView.render(message);
    renderNav();
    if (focus) el.message.focus({ preventScroll: true });
  } catch (error) {
    if (ticket !== messageRequest) return;
    messageView.showError(error);
  }
}

/** The message view's previous/next buttons follow the list (live mail, deletes, pages). */
function renderNav() {
  const id = state.openId;
  if (!id) return;
  const ids = rowIds();
  const index = ids.indexOf(id);
  const page = state.page;
  const more = moreAfter(page, ids.length);
  const prev = el.message.querySelector('#prev-message');
  const next = el.message.querySelector('#next-message');
  if (prev) prev.disabled = index === -1 ? true : index === 0 && state.start === 0;
  if (next) next.disabled = index === -1 ? true : index === ids.length - 1 && !more;
}

function closeMessage({ push = true } = {}) {
  messageRequest++;
  const wasOpen = state.openId;
  state.openId = null;
  el.app.dataset.view = 'list';
  el.message.hidden = true;
  el.message.replaceChildren();
  messageView.message = null;
  listView.markOpen(null);
  syncUrl(push);
  if (wasOpen) {
    state.cursorId = state.cursorId || wasOpen;
    listView.setCursor(state.cursorId, true);
  }
}

function markReadLocally(id) {
  const page = state.page;
  const summary = page && page.messages.find((m) => m.ID === id);
  if (!summary || summary.Read) return;
  summary.Read = true;
  page.unread = Math.max(0, page.unread - 1);
  if (state.q && page.messages_unread !== null) {
    page.messages_unread = Math.max(0, page.messages_unread - 1);
  }
  renderList();
}

// ---------------------------------------------------------------- actions

async function run(action, done) {
  try {
    await action();
    if (done) toast(done);
  } catch (error) {
    toast(error instanceof ApiError ? error.message : String(error), true);
    loadList();
  }
}

const UNDO_MS = 5000; // how long a delete can be undone before it is sent

/**
 * Delete: the rows go at once and the cursor stays where it was (on the next row; the open
 * message deleted, that row's message opens), but the request waits UNDO_MS for the toast's
 * Undo; another delete, leaving the page or the toast timing out sends it (a refusal, such as
 * deliveries pending, brings the rows back).
 */
function removeMessages(ids) {
  commitDelete();
  const doomed = new Set(ids);
  const ordered = rowIds();
  const after = ordered.filter((id, i) => !doomed.has(id) && i > ordered.indexOf(ids[ids.length - 1]));
  const before = ordered.filter((id) => !doomed.has(id));
  if (doomed.has(state.cursorId) || !state.cursorId) state.cursorId = after[0] || before[before.length - 1] || null;
  listView.remove(ids);
  const page = state.page;
  if (page) {
    const gone = page.messages.filter((m) => doomed.has(m.ID));
    page.messages = page.messages.filter((m) => !doomed.has(m.ID));
    adjustCounts(page, gone, -1);
  }
  for (const id of ids) state.selected.delete(id);
  const wasOpen = doomed.has(state.openId);
  // The open message deleted: the one now under the cursor opens in its place (as j would),
  // so going through messages with Delete and j skips none; none left: the view closes.
  const next = wasOpen ? state.cursorId : null;
  const inView = el.message.contains(document.activeElement);
  if (wasOpen && !next) closeMessage();
  renderList();
  if (next) {
    openMessage(next, { push: false, focus: inView });
    if (!inView) listView.setCursor(next, true);
  } else listView.setCursor(state.cursorId, wasOpen || el.listPane.contains(document.activeElement));
  state.pending = { ids: [...ids], timer: setTimeout(() => commitDelete(), UNDO_MS) };
  toast(plural(ids.length, 'message deleted', 'messages deleted'), false, { label: 'Undo', run: undoDelete });
}

function adjustCounts(page, messages, sign) {
  const unread = messages.filter((m) => !m.Read).length;
  page.total = Math.max(0, page.total + sign * messages.length);
  page.unread = Math.max(0, page.unread + sign * unread);
  if (page.messages_count === null) return; // still being counted: the count will say
  page.messages_count = Math.max(0, page.messages_count + sign * messages.length);
  page.messages_unread = Math.max(0, (page.messages_unread || 0) + sign * unread);
}

/** A page read from the server while a delete waits: without the doomed messages. */
function withoutPending(page) {
  const pending = state.pending;
  if (!pending) return;
  const doomed = new Set(pending.ids);
  const gone = page.messages.filter((m) => doomed.has(m.ID));
  page.messages = page.messages.filter((m) => !doomed.has(m.ID));
  adjustCounts(page, gone, -1);
}

function commitDelete(keepalive = false) {
  const pending = state.pending;
  if (!pending) return undefined;
  clearTimeout(pending.timer);
  state.pending = null;
  if (!keepalive && !el.toast.hidden && el.toast.querySelector('.toast-action')) el.toast.hidden = true;
  return run(() => api.remove(pending.ids, keepalive));
}

function undoDelete() {
  const pending = state.pending;
  if (!pending) return;
  clearTimeout(pending.timer);
  state.pending = null;
  state.cursorId = pending.ids[0];
  toast(plural(pending.ids.length, 'message restored', 'messages restored'));
  loadList().then(() => listView.setCursor(state.cursorId, true));
}

function setRead(ids, read) {
  return run(async () => {
    await api.setRead(ids, read);
    if (state.openId && ids.includes(state.openId) && messageView.message) {
      messageView.updateSummary({ ...messageView.message, Read: read });
    }
  }, read ? 'Marked as read' : 'Marked as unread');
}

function setTags(id, tags) {
  return run(async () => {
    await api.setTags([id], tags);
    if (messageView.message && messageView.id === id) {
      messageView.updateSummary({ ...messageView.message, Tags: tags });
    }
  });
}

async function deleteAll() {
  commitDelete();
  const page = state.page;
  if (!page) return;
  const matched = page.messages_count;
  if (state.q) {
    const which = matched === null ? 'messages' : plural(matched, 'message', 'messages');
    const ok = await confirmDialog(
      `Delete the ${which} matching “${state.q}”? This cannot be undone.`,
      'Delete matching',
    );
    if (ok) await run(() => api.removeMatching(state.q), 'Matching messages deleted');
  } else {
    const ok = await confirmDialog(
      `Delete all ${plural(page.total, 'message', 'messages')}? This cannot be undone.`,
      'Delete all',
    );
    if (ok) await run(() => api.removeAll(), 'All messages deleted');
  }
}

function markAllRead() {
  commitDelete();
  return run(() => api.markAllRead(state.q), state.q ? 'Matching messages marked as read' : 'All marked as read');
}

async function copyLink(id) {
  const link = new URL(urls.message(id), location.origin).href;
  try {
    await navigator.clipboard.writeText(link);
    toast('Link copied');
  } catch {
    const area = h('textarea', { class: 'clipboard-helper', readonly: true, 'aria-hidden': 'true' });
    area.value = link;
    document.body.append(area);
    area.select();
    const copied = document.execCommand('copy');
    area.remove();
    toast(copied ? 'Link copied' : `Link: ${link}`);
  }
}

function confirmDialog(text, okLabel) {
  return new Promise((resolve) => {
    el.confirmText.textContent = text;
    el.confirmOk.textContent = okLabel;
    el.confirm.returnValue = '';
    el.confirm.addEventListener('close', () => resolve(el.confirm.returnValue === 'ok'), { once: true });
    el.confirm.showModal();
    $('confirm-cancel').focus();
  });
}

let toastTimer = 0;
function toast(text, isError = false, action = null) {
  el.toast.replaceChildren(h('span', { class: 'toast-text' }, text));
  if (action) {
    el.toast.append(
      h(
        'button',
        {
          type: 'button',
          class: 'toast-action',
          onclick: () => {
            el.toast.hidden = true;
            action.run();
          },
        },
        action.label,
      ),
    );
  }
  el.toast.classList.toggle('error', isError);
  el.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.toast.hidden = true;
  }, action ? UNDO_MS : isError ? 6000 : 2500);
}

// ---------------------------------------------------------------- selection

function toggleSelected(id, on) {
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  state.lastTicked = id;
  listView.setSelected(state.selected);
  renderBulk();
}

/** Shift-click: every row between the last ticked one and this one takes this one's state. */
function selectRange(id, on) {
  const ids = rowIds();
  const from = ids.indexOf(state.lastTicked);
  const to = ids.indexOf(id);
  if (from === -1 || to === -1) return toggleSelected(id, on);
  const [a, b] = from < to ? [from, to] : [to, from];
  for (const each of ids.slice(a, b + 1)) {
    if (on) state.selected.add(each);
    else state.selected.delete(each);
  }
  state.lastTicked = id;
  listView.setSelected(state.selected);
  renderBulk();
  return undefined;
}

function clearSelection() {
  state.selected.clear();
  state.lastTicked = null;
  listView.setSelected(state.selected);
  renderBulk();
}

/** Ticked messages that left the page (deleted, another page or search) are no longer ticked. */
function pruneSelection() {
  const shown = new Set((state.page ? state.page.messages : []).map((m) => m.ID));
  for (const id of [...state.selected]) if (!shown.has(id)) state.selected.delete(id);
}

function renderBulk() {
  const count = state.selected.size;
  el.bulk.hidden = count === 0;
  el.bulkCount.textContent = count ? `${formatCount(count)} selected` : '';
  const ids = rowIds();
  el.selectAll.checked = count > 0 && ids.every((id) => state.selected.has(id));
  el.selectAll.indeterminate = count > 0 && !el.selectAll.checked;
}

function bulk(action) {
  const ids = rowIds().filter((id) => state.selected.has(id));
  if (!ids.length) return undefined;
  if (action === 'delete') {
    clearSelection();
    return removeMessages(ids);
  }
  commitDelete();
  const read = action === 'read';
  return run(async () => {
    await api.setRead(ids, read);
    clearSelection();
  }, plural(ids.length, read ? 'message marked as read' : 'message marked as unread', read ? 'messages marked as read' : 'messages marked as unread'));
}

// ---------------------------------------------------------------- layout choices

/** Rows per page: remembered; the page shown starts at the first message it showed. */
function setPageSize(size) {
  if (!PAGE_SIZES.includes(size) || size === pageSize) return;
  pageSize = size;
  body.dataset.pageSize = String(size);
  remember('postroom_page_size', String(size));
  commitDelete();
  goToPage(Math.floor(state.start / size) * size);
}

/** Compact rows (one line each) or comfortable ones (three lines): remembered. */
function setDensity(compact) {
  if (compact) document.documentElement.dataset.density = 'compact';
  else delete document.documentElement.dataset.density;
  el.density.setAttribute('aria-pressed', compact ? 'true' : 'false');
  remember('postroom_density', compact ? 'compact' : '');
  if (state.cursorId) listView.reveal(state.cursorId);
}

/**
 * The list pane beside an open message is as wide as it was dragged (or moved with the arrow
 * keys on the separator), within what leaves the message readable; remembered.
 */
const listWidth = {
  px: Number.parseInt(body.dataset.listWidth, 10) || 0, // 0: the stylesheet's default

  bounds() {
    const total = el.panes.getBoundingClientRect().width;
    const side = el.tagSide.hidden ? 0 : el.tagSide.getBoundingClientRect().width;
    return { min: LIST_WIDTH.min, max: Math.max(LIST_WIDTH.min, Math.round(total - side - 330)) };
  },

  current() {
    return Math.round(el.listPane.getBoundingClientRect().width);
  },

  apply(px) {
    if (px) el.panes.style.setProperty('--list-width', `${px}px`);
    else el.panes.style.removeProperty('--list-width');
    this.describe();
  },

  describe() {
    const { min, max } = this.bounds();
    const now = this.current();
    el.resizer.setAttribute('aria-valuemin', String(min));
    el.resizer.setAttribute('aria-valuemax', String(max));
    if (now) {
      el.resizer.setAttribute('aria-valuenow', String(now));
      el.resizer.setAttribute('aria-valuetext', `${now} pixels wide`);
    }
  },

  set(px, save) {
    const { min, max } = this.bounds();
    this.px = Math.round(Math.min(Math.max(px, min), max));
    this.apply(this.px);
    if (save) remember('postroom_list_width', String(this.px));
  },
};

listWidth.apply(listWidth.px);

el.resizer.addEventListener('pointerdown', (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  const startX = event.clientX;
  const startWidth = listWidth.current();
  el.resizer.setPointerCapture(event.pointerId);
  el.app.classList.add('resizing');
  const move = (e) => listWidth.set(startWidth + e.clientX - startX, false);
  const done = (e) => {
    // The release's own position: a busy browser coalesces moves, and the last may not come.
    if (e.type === 'pointerup') move(e);
    el.resizer.removeEventListener('pointermove', move);
    el.resizer.removeEventListener('pointerup', done);
    el.resizer.removeEventListener('pointercancel', done);
    el.app.classList.remove('resizing');
    listWidth.set(listWidth.current(), true);
  };
  el.resizer.addEventListener('pointermove', move);
  el.resizer.addEventListener('pointerup', done);
  el.resizer.addEventListener('pointercancel', done);
});

el.resizer.addEventListener('keydown', (event) => {
  const step = event.shiftKey ? LIST_WIDTH.bigStep : LIST_WIDTH.step;
  const { min, max } = listWidth.bounds();
  const now = listWidth.current();
  const to = { ArrowLeft: now - step, ArrowRight: now + step, Home: min, End: max }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  listWidth.set(to, true);
});

// Dragged back to the default: a double click forgets the width.
el.resizer.addEventListener('dblclick', () => {
  listWidth.px = 0;
  listWidth.apply(0);
  remember('postroom_list_width', '');
});

// ---------------------------------------------------------------- tags

function filterByTag(tag) {
  if (state.openId) closeMessage();
  setQuery(tag ? tagQuery(tag) : '', true);
}

let tagRequest = 0;
async function loadTagCounts() {
  const ticket = ++tagRequest;
  try {
    const data = await api.tagCounts();
    if (ticket !== tagRequest) return;
    state.tagCounts = data.Tags || [];
  } catch {
    return;
  }
  renderTagSide();
}
// Counting every tag reads all tagged messages: at most every TAG_COUNTS_MS while mail
// arrives, and only while the sidebar can show (wide screens).
const TAG_COUNTS_MS = 5000;
const wide = window.matchMedia('(min-width: 1101px)');
let tagCountsAt = -Infinity;
let tagCountsTimer = 0;
function loadTagCountsSoon() {
  if (tagCountsTimer || !wide.matches) return;
  const wait = Math.max(300, tagCountsAt + TAG_COUNTS_MS - performance.now());
  tagCountsTimer = setTimeout(() => {
    tagCountsTimer = 0;
    tagCountsAt = performance.now();
    loadTagCounts();
  }, wait);
}
wide.addEventListener('change', () => loadTagCountsSoon());

function renderTagSide() {
  const tags = state.tagCounts;
  el.panes.classList.toggle('with-tags', tags.length > 0);
  el.tagSide.hidden = tags.length === 0;
  const current = state.q;
  el.tagList.replaceChildren(
    h(
      'li',
      null,
      h(
        'a',
        { href: urls.inbox(), class: 'tag-link', dataset: { tag: '' }, 'aria-current': current ? null : 'page' },
        h('span', { class: 'tag-name' }, 'All messages'),
      ),
    ),
    ...tags.map((t) =>
      h(
        'li',
        null,
        h(
          'a',
          {
            href: `${urls.inbox()}?q=${encodeURIComponent(tagQuery(t.Name))}`,
            class: 'tag-link',
            dataset: { tag: t.Name },
            'aria-current': current === tagQuery(t.Name) ? 'page' : null,
            title: `${plural(t.Total, 'message', 'messages')}, ${formatCount(t.Unread)} unread`,
          },
          h('span', { class: 'tag-name' }, t.Name),
          t.Unread ? h('span', { class: 'tag-unread', 'aria-hidden': 'true' }, formatCount(t.Unread)) : null,
          h('span', { class: 'tag-total', 'aria-hidden': 'true' }, formatCount(t.Total)),
          srOnly(`(${plural(t.Total, 'message', 'messages')}, ${formatCount(t.Unread)} unread)`),
        ),
      ),
    ),
  );
}

/** The sidebar entry of the search shown (a tag, or all messages) is the current one. */
function markCurrentTag() {
  for (const link of el.tagList.querySelectorAll('a[data-tag]')) {
    const tag = link.dataset.tag;
    const current = tag ? state.q === tagQuery(tag) : !state.q;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- projects

const projects = { list: [] };
const PROJECTS_REFRESH_MS = 15000;

function currentProject() {
  return projects.list.find((p) => p.ID === config.project) || null;
}

/** The project's name for the title: when it is not the only (default) project. */
function projectLabel() {
  if (!base && projects.list.length <= 1) return '';
  const current = currentProject();
  return current ? current.Name || current.ID : config.project;
}

/** The open project's unread count follows the list (live), the others' the last read. */
function renderProjectBadge(unread) {
  el.projectUnread.hidden = !unread;
  el.projectUnread.textContent = unread ? formatCount(unread) : '';
  el.projectUnread.title = unread ? plural(unread, 'unread message', 'unread messages') : '';
  const current = currentProject();
  if (current && current.Unread !== unread) {
    current.Unread = unread;
    renderProjects();
  }
}

function renderProjects() {
  const current = currentProject();
  el.projectName.textContent = current ? current.Name || current.ID : config.project;
  el.projects.hidden = !base && projects.list.length <= 1;
  el.projectsMenu.replaceChildren(
    ...projects.list.map((p) =>
      h(
        'li',
        null,
        h(
          'a',
          {
            href: p.URL,
            class: 'project-link',
            dataset: { project: p.ID },
            'aria-current': p.ID === config.project ? 'page' : null,
          },
          h('span', { class: 'project-label' }, p.Name || p.ID),
          p.Name && p.Name !== p.ID ? h('span', { class: 'project-id' }, p.ID) : null,
          p.Mode === 'live' ? h('span', { class: 'mode' }, 'live') : null,
          p.Unread
            ? h('span', { class: 'unread-badge', 'aria-hidden': 'true' }, formatCount(p.Unread))
            : null,
          srOnly(`, ${p.Unread ? plural(p.Unread, 'unread message', 'unread messages') : 'no unread messages'}`),
        ),
      ),
    ),
  );
}

async function loadProjects() {
  try {
    const data = await api.projects();
    projects.list = data.Projects || [];
    const current = currentProject();
    if (current && state.page && !state.listError) current.Unread = state.page.unread;
    renderProjects();
    if (state.page) renderCounts();
  } catch {
    // The switcher keeps what it showed; the list reports a server that is gone.
  }
}

// ---------------------------------------------------------------- live updates

function connectEvents() {
  const source = new EventSource(urls.events());
  let wasDown = false;
  const setLive = (value, text) => {
    el.live.dataset.state = value;
    el.live.querySelector('.live-text').textContent = text;
    el.live.title = value === 'live' ? 'New mail appears as it arrives' : text;
  };
  let opened = false;
  source.addEventListener('open', () => {
    setLive('live', 'Live');
    if (wasDown) reloadSoon(); // catch up with what happened while disconnected
    else if (!opened) checkFirstPage();
    opened = true;
    wasDown = false;
  });
  source.addEventListener('error', () => {
    wasDown = true;
    setLive('offline', 'Reconnecting…');
  });
  source.addEventListener('new', (event) => onNew(JSON.parse(event.data)));
  source.addEventListener('update', () => reloadSoon());
  source.addEventListener('delete', (event) => onDelete(JSON.parse(event.data).IDs || [], false));
  source.addEventListener('truncate', (event) => onDelete(JSON.parse(event.data).IDs || [], true));
}

/**
 * The first page was read before the event stream was open; mail that arrived (or went) in
 * between has no event here. A one-row probe of the counts tells whether to read it again.
 */
async function checkFirstPage() {
  await listLoading;
  const shown = state.page;
  if (!shown) return;
  try {
    const probe = await api.list('', 0, 1);
    const newest = probe.messages.length ? probe.messages[0].ID : null;
    const shownNewest = !state.q && state.start === 0 ? (shown.messages[0] || {}).ID || null : newest;
    if (probe.total !== shown.total || probe.unread !== shown.unread || newest !== shownNewest) {
      reloadSoon();
    }
  } catch {
    // The stream just opened, so the server is there; a failed probe changes nothing.
  }
}

function onNew(summary) {
  const page = state.page;
  if (!page || state.q || state.start > 0 || state.listError) {
    // A search or a later page: the server decides where (and whether) it belongs.
    reloadSoon();
    return;
  }
  if (page.messages.some((m) => m.ID === summary.ID)) return;
  page.messages = [summary, ...page.messages].slice(0, pageSize);
  page.total += 1;
  page.messages_count += 1;
  if (!summary.Read) {
    page.unread += 1;
    page.messages_unread += 1;
  }
  for (const tag of summary.Tags || []) if (!state.tags.includes(tag)) state.tags.push(tag);
  renderList();
}

function onDelete(ids, everything) {
  if (everything) {
    state.page && (state.page.messages = []);
    listView.clear();
  } else {
    listView.remove(ids);
  }
  if (state.openId && (everything || ids.includes(state.openId))) {
    closeMessage({ push: false });
    toast('The open message was deleted');
  }
  reloadSoon();
}

// ---------------------------------------------------------------- keyboard

function rowIds() {
  return [...el.list.querySelectorAll('a.row')].map((a) => a.dataset.id);
}

async function moveCursor(delta, { open = Boolean(state.openId) } = {}) {
  const ids = rowIds();
  if (!ids.length) return;
  if (open && state.openId && ids.includes(state.openId)) state.cursorId = state.openId;
  let index = ids.indexOf(state.cursorId);
  if (index === -1) index = delta > 0 ? -1 : ids.length;
  index += delta;
  const page = state.page;
  if (index >= ids.length && moreAfter(page, ids.length)) {
    await goToPage(state.start + pageSize);
    index = 0;
  } else if (index < 0 && state.start > 0) {
    await goToPage(state.start - pageSize);
    index = rowIds().length - 1;
  }
  const now = rowIds();
  index = Math.min(Math.max(index, 0), now.length - 1);
  state.cursorId = now[index] || null;
  if (open && state.cursorId) {
    // With a message open, j/k (and the view's buttons) open the next one: one highlighted
    // row, the open one; the keyboard stays where it was.
    if (state.cursorId !== state.openId) openMessage(state.cursorId, { push: false });
    return;
  }
  listView.setCursor(state.cursorId, true);
}

function isTyping(target) {
  return Boolean(
    target &&
      target.closest &&
      target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]'),
  );
}

document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (el.confirm.open) return;
  const target = event.target;
  if (event.key === 'Escape') {
    if (el.projects.open) {
      el.projects.open = false;
      el.projects.querySelector('summary').focus();
    } else if (target === el.search) {
      el.search.blur();
      listView.setCursor(state.cursorId || rowIds()[0] || null, true);
    } else if (!el.help.hidden) toggleHelp(false);
    else if (state.openId && !isTyping(target)) closeMessage();
    else if (state.selected.size && !isTyping(target)) clearSelection();
    return;
  }
  if (isTyping(target)) return;
  const inList = el.listPane.contains(target) || target === document.body;
  switch (event.key) {
    case '/':
      event.preventDefault();
      el.search.focus();
      el.search.select();
      break;
    case 'j':
    case 'k':
      event.preventDefault();
      moveCursor(event.key === 'j' ? 1 : -1);
      break;
    case 'ArrowDown':
    case 'ArrowUp':
      if (!inList) return;
      event.preventDefault();
      moveCursor(event.key === 'ArrowDown' ? 1 : -1, { open: false });
      break;
    case 'Enter':
      if (target.closest && target.closest('a, button, input')) return; // native activation
      if (state.cursorId) {
        event.preventDefault();
        openMessage(state.cursorId, { focus: true });
      }
      break;
    case 'x': {
      const id = state.cursorId || state.openId;
      if (id) {
        event.preventDefault();
        toggleSelected(id, !state.selected.has(id));
      }
      break;
    }
    case 'Delete': {
      if (inList && state.selected.size) {
        // Rows ticked: those go, as with the bulk bar's Delete (with Undo).
        event.preventDefault();
        bulk('delete');
        listView.setCursor(state.cursorId, true);
        break;
      }
      const id = inList ? state.cursorId || state.openId : state.openId || state.cursorId;
      if (id) {
        event.preventDefault();
        removeMessages([id]);
        // At once, not when the server answers: by then the user may have moved on (say,
        // pressed "/"), and focusing the row would take the keyboard from them.
        listView.setCursor(state.cursorId, inList);
      }
      break;
    }
    case '?':
      toggleHelp();
      break;
    default:
  }
});

function toggleHelp(force) {
  const show = force === undefined ? el.help.hidden : force;
  el.help.hidden = !show;
  el.helpToggle.setAttribute('aria-expanded', show ? 'true' : 'false');
}

// ---------------------------------------------------------------- wiring

el.search.addEventListener('input', () => setQuery(el.search.value, false));
el.searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  reloadSoon.cancel();
  setQuery(el.search.value, true);
  if (state.q === el.search.value.trim()) loadList();
});
el.helpToggle.addEventListener('click', () => toggleHelp());
el.list.addEventListener('focusin', (event) => {
  const row = event.target.closest('a.row');
  if (row && row.dataset.id !== state.cursorId) {
    state.cursorId = row.dataset.id;
    listView.setCursor(state.cursorId, false);
  }
});
el.pageSize.addEventListener('change', () => setPageSize(Number.parseInt(el.pageSize.value, 10)));
el.density.addEventListener('click', () => setDensity(el.density.getAttribute('aria-pressed') !== 'true'));
el.prev.addEventListener('click', () => goToPage(state.start - pageSize));
el.next.addEventListener('click', () => goToPage(state.start + pageSize));
el.deleteAll.addEventListener('click', deleteAll);
el.list.addEventListener('click', (event) => {
  const box = event.target.closest && event.target.closest('input.row-check');
  if (box) {
    const id = box.dataset.id;
    if (event.shiftKey && state.lastTicked) selectRange(id, box.checked);
    else toggleSelected(id, box.checked);
    return;
  }
  // "+N more" recipients in a row: the row shows them all (or the first few again).
  const more = event.target.closest && event.target.closest('.row-more');
  if (more) {
    event.preventDefault();
    more.closest('li').classList.toggle('to-open');
    return;
  }
  // Ctrl-click (cmd-click on macOS) ticks or unticks a row without opening it; shift-click
  // ticks the range from the last ticked row (once a selection has begun).
  const row = event.target.closest && event.target.closest('a.row');
  if (!row || event.button !== 0 || event.altKey) return;
  const id = row.dataset.id;
  if (event.ctrlKey || event.metaKey) {
    event.preventDefault();
    toggleSelected(id, !state.selected.has(id));
  } else if (event.shiftKey && state.selected.size && state.lastTicked) {
    event.preventDefault();
    selectRange(id, true);
  } else return;
  state.cursorId = id;
  listView.setCursor(id, false);
});
el.selectAll.addEventListener('change', () => {
  if (el.selectAll.checked) {
    for (const id of rowIds()) state.selected.add(id);
    listView.setSelected(state.selected);
    renderBulk();
  } else clearSelection();
});
el.bulkRead.addEventListener('click', () => bulk('read'));
el.bulkUnread.addEventListener('click', () => bulk('unread'));
el.bulkDelete.addEventListener('click', () => bulk('delete'));
el.bulkClear.addEventListener('click', () => clearSelection());
// Leaving the page sends a delete still waiting for its Undo (keepalive outlives the page).
window.addEventListener('pagehide', () => commitDelete(true));
el.projects.addEventListener('toggle', () => {
  if (el.projects.open) loadProjects();
});
document.addEventListener('click', (event) => {
  if (el.projects.open && !el.projects.contains(event.target)) el.projects.open = false;
});
el.markAll.addEventListener('click', markAllRead);

// Tags are filters: a row's tag, a tag in the message view, the sidebar's entries.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  const tag = event.target.closest && event.target.closest('[data-tag]');
  if (!tag) return;
  event.preventDefault();
  event.stopPropagation();
  filterByTag(tag.dataset.tag);
}, true);

// Same-page navigation for rows and internal links; modified clicks keep their native meaning.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest && event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  const inBase = !base || url.pathname.startsWith(`${base}/`);
  const pathname = base && inBase ? url.pathname.slice(base.length) : url.pathname;
  const match = inBase && pathname.match(/^\/message\/([^/]+)$/);
  if (match) {
    event.preventDefault();
    const id = decodeURIComponent(match[1]);
    state.cursorId = id;
    // A row activated with the keyboard (Enter: detail 0) hands the focus to the message.
    openMessage(id, { focus: event.detail === 0 && Boolean(link.closest('#message-list')) });
  } else if (inBase && pathname === '/') {
    event.preventDefault();
    if (link.classList.contains('brand')) {
      setQuery('', true);
      if (state.start) goToPage(0);
    }
    closeMessage();
  }
});

window.addEventListener('popstate', applyLocation);
setInterval(() => listView.tick(), 30000);

// Start: old-style deep links become real paths, then list, message and the event stream.
{
  performance.mark('postroom:boot');
  const loc = readLocation();
  state.q = loc.q;
  state.start = loc.start;
  el.search.value = loc.q;
  if (loc.id) {
    state.scrollToOpen = true;
    openMessage(loc.id, { push: false });
  } else syncUrl(false);
  loadList(); // the shell carries this page, or has the browser fetch it already (preload)
  connectEvents();
  loadProjects();
  setInterval(loadProjects, PROJECTS_REFRESH_MS);
}
