// The message list: one row per summary, reconciled by ID so that live updates neither rebuild
// the whole list nor steal the keyboard focus.

import { urls } from './api.js';
import { h, icon, srOnly } from './dom.js';
import {
  exactTime,
  formatSize,
  fullAddress,
  parseDate,
  plural,
  relativeTime,
  shortAddress,
} from './format.js';
import { rowRecipients } from './recipients.js';

const MAX_ROW_TAGS = 3;

function signature(m) {
  return JSON.stringify([m.Read, m.Tags, m.Subject, m.Snippet, m.Size, m.Attachments, m.Created]);
}

function rowContent(m) {
  const created = parseDate(m.Created);
  const from = shortAddress(m.From) || '(no sender)';
  const recipients = [...(m.To || []), ...(m.Cc || [])];
  const meta = h('span', { class: 'row-meta' });
  const tags = m.Tags || [];
  for (const tag of tags.slice(0, MAX_ROW_TAGS)) {
    meta.append(h('span', { class: 'tag', title: `Show the messages tagged ${tag}`, dataset: { tag } }, tag));
  }
  if (tags.length > MAX_ROW_TAGS) {
    const rest = tags.slice(MAX_ROW_TAGS);
    meta.append(h('span', { class: 'tag tag-more', title: rest.join(', ') }, `+${rest.length}`));
  }
  if (m.Warnings && m.Warnings.length) {
    meta.append(
      h('span', { class: 'row-warn', title: m.Warnings.join('\n') }, icon('warn'), srOnly('Has warnings')),
    );
  }
  if (m.Attachments > 0) {
    meta.append(
      h(
        'span',
        { class: 'row-attach', title: plural(m.Attachments, 'attachment', 'attachments') },
        icon('clip'),
        srOnly(`${plural(m.Attachments, 'attachment', 'attachments')},`),
      ),
    );
  }
  meta.append(h('span', { class: 'row-size' }, formatSize(m.Size)));
  return [
    h('span', { class: 'row-dot', 'aria-hidden': 'true' }),
    h(
      'span',
      { class: 'row-from', title: fullAddress(m.From) },
      m.Read ? null : srOnly('Unread, '),
      h('span', { class: 'addr', dir: 'auto' }, from),
    ),
    h(
      'time',
      { class: 'row-time', datetime: m.Created, dataset: { ts: m.Created } },
      relativeTime(created),
    ),
    h(
      'span',
      { class: 'row-line', elementtiming: 'row' },
      // Subject and snippet each in their own direction (a Hebrew or Arabic subject reads
      // right to left, its digits and Latin words in place) without reordering the row.
      h('span', { class: 'row-subject', dir: 'auto' }, m.Subject || '(no subject)'),
      m.Snippet ? h('span', { class: 'row-sep' }, ' — ') : null,
      m.Snippet ? h('span', { class: 'row-snippet', dir: 'auto' }, m.Snippet) : null,
    ),
    h(
      'span',
      { class: 'row-to', title: recipients.map(fullAddress).join(', ') },
      h('span', { class: 'row-to-label' }, 'To: '),
      rowRecipients(recipients),
    ),
    meta,
  ];
}

function fillRow(link, m) {
  link.replaceChildren(...rowContent(m));
  link.classList.toggle('unread', !m.Read);
  link.dataset.sig = signature(m);
}

export class ListView {
  constructor(ul) {
    this.ul = ul;
    this.rows = new Map(); // ID -> <li>
    // The rows the server rendered into the shell (web/rows.py, the same markup as here) are
    // kept: `adopt` takes them as they are, else the first render fills them again.
    for (const li of ul.children) {
      const id = li.firstElementChild && li.firstElementChild.dataset.id;
      if (id) this.rows.set(id, li);
    }
  }

  /**
   * The shell's rows were rendered from `messages` (the page it carries): take them as they are
   * (no second rendering before the first paint), only the times read again in the browser's
   * own time zone.
   */
  adopt(messages) {
    for (const m of messages) {
      const li = this.rows.get(m.ID);
      if (li && !li.firstElementChild.dataset.sig) li.firstElementChild.dataset.sig = signature(m);
    }
    this.tick();
  }

  /** Make the list show `messages` in order, reusing existing rows; `selected`: ticked IDs. */
  render(messages, openId, selected = new Set()) {
    const wanted = new Set(messages.map((m) => m.ID));
    for (const [id, li] of this.rows) {
      if (!wanted.has(id)) {
        li.remove();
        this.rows.delete(id);
      }
    }
    let next = this.ul.firstElementChild;
    for (const m of messages) {
      let li = this.rows.get(m.ID);
      if (!li) {
        const link = h('a', { class: 'row', href: urls.message(m.ID), dataset: { id: m.ID } });
        fillRow(link, m);
        const box = h('input', {
          type: 'checkbox',
          class: 'row-check',
          dataset: { id: m.ID },
          'aria-label': `Select: ${m.Subject || '(no subject)'}`,
        });
        li = h('li', { class: 'row-item' }, link, box);
        this.rows.set(m.ID, li);
      } else {
        const link = li.firstElementChild;
        if (link.dataset.sig !== signature(m)) fillRow(link, m);
      }
      li.firstElementChild.toggleAttribute('aria-current', m.ID === openId);
      const ticked = selected.has(m.ID);
      li.lastElementChild.checked = ticked;
      li.classList.toggle('selected', ticked);
      if (li === next) next = next.nextElementSibling;
      else this.ul.insertBefore(li, next);
    }
  }

  remove(ids) {
    for (const id of ids) {
      const li = this.rows.get(id);
      if (li) {
        li.remove();
        this.rows.delete(id);
      }
    }
  }

  clear() {
    this.ul.replaceChildren();
    this.rows.clear();
  }

  link(id) {
    const li = this.rows.get(id);
    return li ? li.firstElementChild : null;
  }

  setSelected(selected) {
    for (const [id, li] of this.rows) {
      const ticked = selected.has(id);
      li.lastElementChild.checked = ticked;
      li.classList.toggle('selected', ticked);
    }
  }

  /** Scroll a row into view (without moving the focus). */
  reveal(id, block = 'nearest') {
    const link = this.link(id);
    if (link) link.scrollIntoView({ block });
  }

  markOpen(openId) {
    for (const [id, li] of this.rows) li.firstElementChild.toggleAttribute('aria-current', id === openId);
  }

  setCursor(id, focus) {
    for (const [rowId, li] of this.rows) li.firstElementChild.classList.toggle('cursor', rowId === id);
    const link = this.link(id);
    if (link && focus) {
      link.focus({ preventScroll: true });
      link.scrollIntoView({ block: 'nearest' });
    }
  }

  /** Give every time its exact value on hover (done after the rows are shown: see format.js). */
  fillExactTimes() {
    for (const time of this.ul.querySelectorAll('time[data-ts]:not([title])')) {
      time.title = exactTime(parseDate(time.dataset.ts));
    }
  }

  /** Refresh the relative times ("5 min ago") without touching anything else. */
  tick(now = new Date()) {
    for (const time of this.ul.querySelectorAll('time[data-ts]')) {
      const text = relativeTime(parseDate(time.dataset.ts), now);
      if (time.textContent !== text) time.textContent = text;
    }
  }
}
