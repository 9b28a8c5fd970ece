// The message view: headers, warnings, tags, actions and the HTML / Text / Headers / Raw /
// Attachments tabs, and the checks: HTML check, Link check and Spam (how to set spamd up, when it is not). Captured mail is untrusted: everything from it is set as text, and the HTML
// body is only ever shown inside a sandboxed iframe (no scripts, no same origin) whose document
// carries its own restrictive Content-Security-Policy.

import { api, urls } from './api.js';
import { append, h, icon, iconButton } from './dom.js';
import {
  exactTime,
  formatSize,
  parseDate,
  plural,
  relativeTime,
} from './format.js';
import { sourcePanel } from './source.js';
import { recipientLine } from './recipients.js';
import { bodyDownload, openPart, releaseButton, screenshotButton } from './viewtools.js';
import { headerWarnings, headersCheckPanel, warnedValue, warningNote } from './headerscheck.js';

const TABS = [
  { id: 'html', label: 'HTML' },
  { id: 'source', label: 'HTML source' },
  { id: 'text', label: 'Text' },
  { id: 'headers', label: 'Headers' },
  { id: 'raw', label: 'Raw' },
  { id: 'attachments', label: 'Attachments' },
  { id: 'htmlcheck', label: 'HTML check' },
  { id: 'links', label: 'Link check' },
  { id: 'headerscheck', label: 'Headers check' },
  { id: 'spam', label: 'Spam' },
];
const SUPPORT_LABEL = { yes: 'Supported', partial: 'Partly supported', no: 'Not supported' };
const WIDTHS = [
  { id: 'phone', label: 'Phone', detail: '375 px' },
  { id: 'tablet', label: 'Tablet', detail: '768 px' },
  { id: 'desktop', label: 'Desktop', detail: 'full width' },
];
const RAW_DISPLAY_LIMIT = 2 * 1024 * 1024;
const REMOTE_REFERENCE =
  /\b(?:src|background|poster|srcset)\s*=\s*["']?\s*(?:https?:)?\/\/|url\(\s*["']?\s*(?:https?:)?\/\/|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?\/\//gi;
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g;

function stored(key, fallback, allowed) {
  try {
    const value = localStorage.getItem(key);
    return allowed.includes(value) ? value : fallback;
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode or storage disabled: the preference just is not kept.
  }
}

export function countRemoteReferences(html) {
  return ((html || '').match(REMOTE_REFERENCE) || []).length;
}

/** Text with http(s) URLs turned into links that open in a new tab. */
function linkified(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    nodes.push(
      h('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer' }, match[0]),
    );
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

export class MessageView {
  /**
   * @param {HTMLElement} root the <article> to render into
   * @param {object} actions callbacks: back(), remove(id), setRead(id, read), setTags(id, tags),
   *   copyLink(id), knownTags() -> string[], toast(text)
   */
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.message = null;
    this.tab = stored('postroom.tab', 'html', TABS.map((t) => t.id));
    this.width = stored('postroom.width', 'desktop', WIDTHS.map((w) => w.id));
    this.remote = false;
    this.headers = null;
    this.raw = null;
    this.derivedText = null;
    this.checks = {};
    this.sourceLine = 0;
    // The HTML check's line numbers open the HTML source tab at that line.
    root.addEventListener('click', (event) => {
      const link = event.target.closest && event.target.closest('a.source-link');
      if (!link || !this.message) return;
      event.preventDefault();
      this.sourceLine = Number(link.dataset.line) || 0;
      this.selectTab('source', false);
    });
    this.spamEnabled = null; // SpamAssassin of /api/v1/webui; null until it answers
    this.relay = null; // MessageRelay of /api/v1/webui: Release is offered when Enabled
    this.screenshots = false; // Screenshots of /api/v1/webui: Chromium is there
    api.webui().then(
      (config) => {
        this.spamEnabled = Boolean(config && config.SpamAssassin);
        this.relay = (config && config.MessageRelay) || null;
        this.screenshots = Boolean(config && config.Screenshots);
        if (!this.message) return;
        if (this.spamEnabled || this.tab === 'spam') {
          this.render(this.message);
          return;
        }
        // Only what the answer adds, so an open view keeps its frame and focus.
        const toolbar = this.root.querySelector('.msg-toolbar');
        if (this.relay && this.relay.Enabled && toolbar) toolbar.replaceWith(this.renderToolbar());
        const tools = this.root.querySelector('#message-panel[data-tab="html"] .panel-tools');
        if (this.screenshots && tools && !tools.querySelector('#screenshot')) {
          tools.prepend(...screenshotButton(this.message, () => this.width));
        }
      },
      () => {},
    );
  }

  get id() {
    return this.message ? this.message.ID : null;
  }

  /** The source line an HTML check's "line N" link asked for (once), or 0. */
  takeSourceLine() {
    const line = this.sourceLine || 0;
    this.sourceLine = 0;
    return line;
  }

  showLoading() {
    this.message = null;
    this.root.replaceChildren(
      h('div', { class: 'message-loading', role: 'status' }, 'Loading message…'),
    );
  }

  showError(error) {
    this.message = null;
    const notFound = error && error.status === 404;
    this.root.replaceChildren(
      h(
        'div',
        { class: 'message-error', role: 'alert' },
        h('h2', null, notFound ? 'This message is gone' : 'The message could not be loaded'),
        h(
          'p',
          null,
          notFound
            ? 'It was deleted, or the link points to a message that never existed here.'
            : String((error && error.message) || error),
        ),
        h('p', null, h('a', { href: urls.inbox(), class: 'button', 'data-nav': 'list' }, 'Back to the inbox')),
      ),
    );
  }

  render(message) {
    const sameMessage = this.message && this.message.ID === message.ID;
    this.message = message;
    if (!sameMessage) {
      this.remote = false;
      this.headers = null;
      this.raw = null;
      this.derivedText = null;
      this.checks = {};
    }
    const available = this.availableTabs();
    if (!available.some((t) => t.id === this.tab)) this.tab = available[0].id;
    this.root.replaceChildren(
      this.renderToolbar(),
      this.renderHead(),
      this.renderTabs(available),
      h('div', {
        class: 'tab-panel',
        id: 'message-panel',
        role: 'tabpanel',
        'aria-labelledby': `tab-${this.tab}`,
      }),
    );
    this.renderPanel();
  }

  /** Live update from the list (read state and tags changed elsewhere). */
  updateSummary(summary) {
    const m = this.message;
    if (!m || summary.ID !== m.ID) return;
    const tagsChanged = JSON.stringify(summary.Tags || []) !== JSON.stringify(m.Tags || []);
    const readChanged = summary.Read !== m.Read;
    if (!tagsChanged && !readChanged) return;
    m.Tags = summary.Tags || [];
    m.Read = summary.Read;
    const tags = this.root.querySelector('.msg-tags');
    if (tags) tags.replaceWith(this.renderTags());
    const toggle = this.root.querySelector('#toggle-read');
    if (toggle) toggle.replaceWith(this.readButton());
  }

  availableTabs() {
    const m = this.message;
    const count = (m.Attachments || []).length + (m.Inline || []).length;
    return TABS.filter(
      (t) =>
        !['html', 'htmlcheck', 'source'].includes(t.id) || m.HTML,
    ).map((t) =>
      t.id === 'attachments' ? { ...t, label: `Attachments (${count})` } : t,
    );
  }

  readButton() {
    const m = this.message;
    return iconButton(m.Read ? 'mail' : 'mail-open', m.Read ? 'Mark as unread' : 'Mark as read', {
      id: 'toggle-read',
      onclick: () => this.actions.setRead(m.ID, !m.Read),
    });
  }

  renderToolbar() {
    const m = this.message;
    return h(
      'div',
      { class: 'msg-toolbar', role: 'toolbar', 'aria-label': 'Message actions' },
      iconButton('back', 'Back to the list', { className: 'back-button', onclick: () => this.actions.back() }),
      iconButton('prev', 'Previous message (k)', { id: 'prev-message', onclick: () => this.actions.step(-1) }),
      iconButton('next', 'Next message (j)', { id: 'next-message', onclick: () => this.actions.step(1) }),
      this.readButton(),
      iconButton('trash', 'Delete message', {
        className: 'danger',
        id: 'delete-message',
        onclick: () => this.actions.remove(m.ID),
      }),
      iconButton('link', 'Copy link to this message', {
        id: 'copy-link',
        onclick: () => this.actions.copyLink(m.ID),
      }),
      releaseButton(m, this.relay, api.release),
      h(
        'a',
        {
          class: 'icon-button',
          href: urls.raw(m.ID, true),
          download: `${m.ID}.eml`,
          'aria-label': 'Download .eml',
          title: 'Download .eml',
        },
        icon('download'),
      ),
    );
  }

  renderHead() {
    const m = this.message;
    const date = parseDate(m.Date);
    const rows = [
      ['From', [m.From].filter((a) => a && (a.Address || a.Name))],
      ['To', m.To],
      ['Cc', m.Cc],
      ['Bcc', m.Bcc],
      ['Reply-To', m.ReplyTo],
    ];
    const meta = h('dl', { class: 'msg-meta' });
    const warned = headerWarnings(m);
    for (const [label, list] of rows) {
      if (warned[label]) {
        meta.append(h('dt', null, label), warnedValue(label, warned[label]));
        continue;
      }
      if (!list || !list.length) continue;
      meta.append(
        h('dt', null, label),
        h('dd', { class: `msg-${label.toLowerCase()}` }, recipientLine(list)),
      );
    }
    meta.append(
      h('dt', null, 'Date'),
      h(
        'dd',
        { class: 'msg-date' },
        h('time', { datetime: m.Date, title: exactTime(date) }, exactTime(date)),
        h('span', { class: 'muted' }, ` (${relativeTime(date)})`),
        warned.Date ? [' ', warningNote(warned.Date)] : null,
      ),
      h('dt', null, 'Size'),
      h('dd', null, formatSize(m.Size)),
    );
    const notes = [...(m.Warnings || [])];
    const defects = m.Defects || [];
    return h(
      'header',
      { class: 'msg-head' },
      h('h1', { class: 'msg-subject', id: 'message-subject', dir: 'auto' }, m.Subject || '(no subject)'),
      meta,
      this.renderTags(),
      notes.length
        ? h(
            'div',
            { class: 'msg-warnings', role: 'note', 'aria-label': 'Warnings' },
            notes.map((text) => h('p', null, icon('warn'), h('span', null, text))),
          )
        : null,
      defects.length
        ? h(
            'details',
            { class: 'msg-defects' },
            h('summary', null, plural(defects.length, 'parsing problem', 'parsing problems')),
            h('ul', null, defects.map((d) => h('li', null, d))),
          )
        : null,
    );
  }

  renderTags() {
    const m = this.message;
    const tags = m.Tags || [];
    const wrap = h('div', { class: 'msg-tags', role: 'group', 'aria-label': 'Tags' });
    for (const tag of tags) {
      wrap.append(
        h(
          'span',
          { class: 'tag tag-editable' },
          h(
            'a',
            { href: '#', class: 'tag-filter', dataset: { tag }, title: `Show the messages tagged ${tag}` },
            tag,
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'tag-remove',
              'aria-label': `Remove tag ${tag}`,
              title: `Remove tag ${tag}`,
              onclick: () => this.actions.setTags(m.ID, tags.filter((t) => t !== tag)),
            },
            icon('x'),
          ),
        ),
      );
    }
    const listId = 'known-tags';
    const datalist = h(
      'datalist',
      { id: listId },
      this.actions.knownTags().filter((t) => !tags.includes(t)).map((t) => h('option', { value: t })),
    );
    const input = h('input', {
      type: 'text',
      class: 'tag-input',
      list: listId,
      placeholder: 'Add tag',
      'aria-label': 'Add a tag',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const add = () => {
      const value = input.value.trim();
      if (!value) return;
      if (!tags.includes(value)) this.actions.setTags(m.ID, [...tags, value]);
      input.value = '';
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        add();
      }
    });
    const form = h(
      'span',
      { class: 'tag-add' },
      icon('tag'),
      input,
      h('button', { type: 'button', class: 'button small', onclick: add }, 'Add'),
      datalist,
    );
    wrap.append(form);
    return wrap;
  }

  renderTabs(available) {
    const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Message views' });
    for (const t of available) {
      const selected = t.id === this.tab;
      list.append(
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: 'tab',
            id: `tab-${t.id}`,
            'aria-selected': selected ? 'true' : 'false',
            'aria-controls': 'message-panel',
            tabindex: selected ? '0' : '-1',
            dataset: { tab: t.id },
            onclick: () => this.selectTab(t.id, false),
          },
          t.label,
        ),
      );
    }
    list.addEventListener('keydown', (event) => {
      const ids = available.map((t) => t.id);
      let index = ids.indexOf(this.tab);
      if (event.key === 'ArrowRight') index = (index + 1) % ids.length;
      else if (event.key === 'ArrowLeft') index = (index - 1 + ids.length) % ids.length;
      else if (event.key === 'Home') index = 0;
      else if (event.key === 'End') index = ids.length - 1;
      else return;
      event.preventDefault();
      this.selectTab(ids[index], true);
    });
    return list;
  }

  selectTab(id, focus) {
    this.tab = id;
    store('postroom.tab', id);
    for (const tab of this.root.querySelectorAll('[role="tab"]')) {
      const selected = tab.dataset.tab === id;
      tab.setAttribute('aria-selected', selected ? 'true' : 'false');
      tab.tabIndex = selected ? 0 : -1;
      if (selected && focus) tab.focus();
    }
    const panel = this.root.querySelector('#message-panel');
    panel.setAttribute('aria-labelledby', `tab-${id}`);
    this.renderPanel();
  }

  renderPanel() {
    const panel = this.root.querySelector('#message-panel');
    if (!panel || !this.message) return;
    panel.dataset.tab = this.tab;
    const render = {
      html: () => this.htmlPanel(),
      source: () => sourcePanel(this.message, this.takeSourceLine()),
      text: () => this.textPanel(),
      headers: () => this.headersPanel(),
      raw: () => this.rawPanel(),
      attachments: () => this.attachmentsPanel(),
      htmlcheck: () => this.htmlCheckPanel(),
      links: () => this.linkCheckPanel(),
      spam: () => this.spamPanel(),
      headerscheck: () => headersCheckPanel(this, api.headersCheck),
    }[this.tab];
    panel.replaceChildren(...[render()].flat());
  }

  htmlPanel() {
    const m = this.message;
    const remoteCount = countRemoteReferences(m.HTML);
    const frame = h('iframe', {
      class: 'html-frame',
      title: 'HTML body of the message',
      // No allow-scripts and no allow-same-origin: the message can neither run script nor
      // reach this page, its cookies or the API. Links open in a new tab (allow-popups).
      sandbox: 'allow-popups allow-popups-to-escape-sandbox',
      referrerpolicy: 'no-referrer',
      src: urls.html(m.ID, this.remote),
    });
    const stage = h('div', { class: 'frame-stage', dataset: { width: this.width } }, frame);
    const widthGroup = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Preview width' });
    for (const w of WIDTHS) {
      widthGroup.append(
        h(
          'button',
          {
            type: 'button',
            class: 'segment',
            'aria-pressed': w.id === this.width ? 'true' : 'false',
            title: `${w.label} (${w.detail})`,
            onclick: (event) => {
              this.width = w.id;
              store('postroom.width', w.id);
              stage.dataset.width = w.id;
              for (const b of widthGroup.children) b.setAttribute('aria-pressed', 'false');
              event.currentTarget.setAttribute('aria-pressed', 'true');
            },
          },
          w.label,
        ),
      );
    }
    const toggle = h('input', {
      type: 'checkbox',
      id: 'remote-toggle',
      class: 'switch-input',
      role: 'switch',
      checked: this.remote,
    });
    toggle.addEventListener('change', () => {
      this.remote = toggle.checked;
      frame.src = urls.html(m.ID, this.remote);
      note.hidden = this.remote || remoteCount === 0;
    });
    const note = h(
      'span',
      { class: 'remote-note', hidden: this.remote || remoteCount === 0 },
      icon('warn'),
      'Remote images and styles blocked',
    );
    return [
      h(
        'div',
        { class: 'panel-toolbar' },
        widthGroup,
        h('label', { class: 'switch', for: 'remote-toggle' }, toggle, h('span', null, 'Load remote content')),
        note,
        h(
          'span',
          { class: 'panel-tools' },
          this.screenshots ? screenshotButton(m, () => this.width) : null,
          bodyDownload(m.ID, 'html'),
        ),
      ),
      stage,
    ];
  }

  textPanel() {
    const m = this.message;
    const tools = h('div', { class: 'panel-toolbar' }, bodyDownload(m.ID, 'txt'));
    if (m.Text) return [tools, h('pre', { class: 'text-body' }, linkified(m.Text))];
    if (!m.HTML) return h('p', { class: 'panel-empty' }, 'This message has no body.');
    // No text part: show the text Postroom derives from the HTML, and say so.
    const note = h('p', { class: 'panel-note', role: 'status' }, 'This message has no text part. Text generated from the HTML:');
    const pre = h('pre', { class: 'text-body' });
    const id = m.ID;
    if (this.derivedText !== null) pre.replaceChildren(...linkified(this.derivedText));
    else {
      api.textFromHtml(id).then(
        (text) => {
          if (this.id !== id) return;
          this.derivedText = text;
          pre.replaceChildren(...linkified(text));
        },
        (error) => {
          note.textContent = `This message has no text part, and none could be derived: ${error.message}`;
        },
      );
    }
    return [tools, note, pre];
  }

  headersPanel() {
    const id = this.message.ID;
    const container = h('div', { class: 'headers-panel' });
    const filter = h('input', {
      type: 'search',
      class: 'filter-input',
      placeholder: 'Filter headers',
      'aria-label': 'Filter headers',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const body = h('tbody');
    const table = h(
      'table',
      { class: 'headers-table' },
      h('caption', { class: 'sr-only' }, 'Message headers'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
      body,
    );
    const status = h('p', { class: 'panel-empty', role: 'status' }, 'Loading headers…');
    container.append(h('div', { class: 'panel-toolbar' }, filter), status, table);
    const fill = () => {
      const needle = filter.value.trim().toLowerCase();
      const rows = [];
      for (const [name, values] of Object.entries(this.headers || {})) {
        for (const value of values) {
          if (needle && !name.toLowerCase().includes(needle) && !value.toLowerCase().includes(needle)) continue;
          rows.push(h('tr', null, h('th', { scope: 'row' }, name), h('td', null, value)));
        }
      }
      body.replaceChildren(...rows);
      status.hidden = rows.length > 0;
      status.textContent = needle ? 'No header matches the filter.' : 'No headers.';
    };
    filter.addEventListener('input', fill);
    if (this.headers) fill();
    else {
      api.headers(id).then(
        (headers) => {
          if (this.id !== id) return;
          this.headers = headers;
          fill();
        },
        (error) => {
          status.textContent = `Could not load the headers: ${error.message}`;
        },
      );
    }
    return container;
  }

  rawPanel() {
    const id = this.message.ID;
    const pre = h('pre', { class: 'raw-body', tabindex: '0', 'aria-label': 'Raw message source' });
    const status = h('p', { class: 'panel-empty', role: 'status' }, 'Loading source…');
    const toolbar = h(
      'div',
      { class: 'panel-toolbar' },
      h(
        'a',
        { class: 'button', href: urls.raw(id, true), download: `${id}.eml` },
        icon('download'),
        h('span', null, 'Download .eml'),
      ),
      h('a', { class: 'button', href: urls.raw(id), target: '_blank', rel: 'noopener' }, 'Open raw'),
    );
    const show = () => {
      const raw = this.raw;
      status.hidden = raw.length <= RAW_DISPLAY_LIMIT;
      status.textContent = `Showing the first ${formatSize(RAW_DISPLAY_LIMIT)} of ${formatSize(raw.length)}; download the .eml for all of it.`;
      pre.textContent = raw.length > RAW_DISPLAY_LIMIT ? raw.slice(0, RAW_DISPLAY_LIMIT) : raw;
    };
    if (this.raw !== null) show();
    else {
      api.raw(id).then(
        (raw) => {
          if (this.id !== id) return;
          this.raw = raw;
          show();
        },
        (error) => {
          status.textContent = `Could not load the source: ${error.message}`;
        },
      );
    }
    return [toolbar, status, pre];
  }

  attachmentsPanel() {
    const m = this.message;
    const sections = [];
    const section = (title, parts) => {
      if (!parts.length) return;
      sections.push(
        h('h2', { class: 'panel-heading' }, title),
        h('ul', { class: 'attachments' }, parts.map((p) => this.attachmentItem(p))),
      );
    };
    section('Attachments', m.Attachments || []);
    section('Inline parts', m.Inline || []);
    if (!sections.length) return h('p', { class: 'panel-empty' }, 'This message has no attachments.');
    return sections;
  }

  attachmentItem(part) {
    const id = this.message.ID;
    const name = part.FileName || part.ContentID || `part ${part.PartID}`;
    const type = part.ContentType || 'application/octet-stream';
    const isImage = /^image\//i.test(type) && part.Size < 10 * 1024 * 1024;
    const preview = isImage
      ? h('img', { class: 'thumb', src: urls.part(id, part.PartID), alt: '', loading: 'lazy' })
      : h('span', { class: 'thumb thumb-generic', 'aria-hidden': 'true' }, icon('clip'));
    return h(
      'li',
      { class: 'attachment' },
      preview,
      h(
        'span',
        { class: 'attachment-info' },
        h('span', { class: 'attachment-name', title: name }, name),
        h(
          'span',
          { class: 'attachment-detail' },
          `${type} · ${formatSize(part.Size)}`,
          part.ContentID ? ` · cid:${part.ContentID}` : '',
        ),
      ),
      openPart(id, part, name),
      h(
        'a',
        {
          class: 'icon-button',
          href: urls.part(id, part.PartID, true),
          download: part.FileName || '',
          'aria-label': `Download ${name}`,
          title: `Download ${name}`,
        },
        icon('download'),
      ),
    );
  }

  /** Run a check once per message and fill `status` / call `show` with its result. */
  loadCheck(name, load, status, show) {
    const id = this.message.ID;
    if (this.checks[name]) {
      status.hidden = true;
      show(this.checks[name]);
      return;
    }
    load(id).then(
      (result) => {
        if (this.id !== id) return;
        this.checks[name] = result;
        status.hidden = true;
        show(result);
      },
      (error) => {
        if (this.id !== id) return;
        status.textContent = `The check failed: ${error.message}`;
      },
    );
  }

  htmlCheckPanel() {
    const status = h('p', { class: 'panel-empty', role: 'status' }, 'Checking the HTML…');
    const body = h('div', { class: 'check-body' });
    this.loadCheck('html', api.htmlCheck, status, (result) => {
      const total = result.Total || {};
      const warnings = result.Warnings || [];
      body.replaceChildren(
        h(
          'div',
          { class: 'check-summary' },
          h('p', { class: 'check-score', id: 'html-check-score' }, `${Math.round(total.Supported || 0)}%`),
          h(
            'div',
            null,
            h('p', null, 'of the mail clients checked render every feature this message uses.'),
            supportBar(total),
            h(
              'p',
              { class: 'muted' },
              `${plural(total.Nodes || 0, 'element', 'elements')} · ${plural(total.Tests || 0, 'feature', 'features')} checked` +
                (result.Truncated ? ' · only the first 2 MB of HTML were read' : ''),
            ),
          ),
        ),
        warnings.length
          ? h('ul', { class: 'check-list', 'aria-label': 'Features with limited support' }, warnings.map((w) => htmlWarning(w)))
          : h('p', { class: 'panel-empty' }, 'Every feature this message uses is supported by all the clients checked.'),
      );
    });
    return [status, body];
  }

  linkCheckPanel() {
    const id = this.message.ID;
    const follow = h('input', { type: 'checkbox', id: 'link-follow', class: 'switch-input', role: 'switch' });
    const run = h('button', { type: 'button', class: 'button', id: 'link-check-run' }, 'Check links');
    const status = h(
      'p',
      { class: 'panel-empty', role: 'status' },
      'Postroom requests every link and image URL of this message from the server (HEAD, no bodies) and shows the answers.',
    );
    const body = h('div', { class: 'check-body' });
    const show = (result) => {
      const links = result.Links || [];
      status.textContent = links.length
        ? `${plural(links.length, 'link', 'links')} checked, ${plural(result.Errors || 0, 'error', 'errors')}.`
        : 'This message has no http(s) links or images.';
      status.hidden = false;
      body.replaceChildren();
      append(body, [
        links.length
          ? h(
              'table',
              { class: 'check-table', id: 'link-table' },
              h('caption', { class: 'sr-only' }, 'Links and their HTTP status'),
              h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'URL'))),
              h('tbody', null, links.map((link) => linkRow(link))),
            )
          : null,
        (result.NotChecked || []).length
          ? h('p', { class: 'panel-note' }, `${plural(result.NotChecked.length, 'more URL', 'more URLs')} not checked (at most 100 per message).`)
          : null,
      ]);
    };
    run.addEventListener('click', () => {
      run.disabled = true;
      status.hidden = false;
      status.textContent = 'Checking links…';
      body.replaceChildren();
      api.linkCheck(id, follow.checked).then(
        (result) => {
          run.disabled = false;
          if (this.id !== id) return;
          this.checks.links = result;
          show(result);
        },
        (error) => {
          run.disabled = false;
          status.textContent = `The link check failed: ${error.message}`;
        },
      );
    });
    if (this.checks.links) show(this.checks.links);
    return [
      h(
        'div',
        { class: 'panel-toolbar' },
        run,
        h('label', { class: 'switch', for: 'link-follow' }, follow, h('span', null, 'Follow redirects')),
      ),
      status,
      body,
    ];
  }

  spamPanel() {
    if (this.spamEnabled === null) {
      return h('p', { class: 'panel-empty', role: 'status' }, 'Loading…');
    }
    if (!this.spamEnabled) {
      // The tab is there anyway, to say how to get the check (it is optional, as Mailpit's).
      return h(
        'div',
        { class: 'check-body', id: 'spam-setup' },
        h('p', null, "The spam check asks SpamAssassin's spamd for a score, and this server has none set up. To enable it:"),
        h(
          'ol',
          null,
          h('li', null, 'Install it (Debian, Ubuntu): ', h('code', null, 'apt-get install spamassassin spamd')),
          h('li', null, 'Start it: ', h('code', null, 'spamd --listen=127.0.0.1:783 --local --nouser-config')),
          h('li', null, 'Start Postroom with ', h('code', null, '--spamassassin 127.0.0.1:783'), ' (or POSTROOM_SPAMASSASSIN).'),
        ),
      );
    }
    const status = h('p', { class: 'panel-empty', role: 'status' }, 'Asking SpamAssassin…');
    const body = h('div', { class: 'check-body' });
    this.loadCheck('spam', api.spamCheck, status, (result) => {
      if (result.Error) {
        body.replaceChildren(h('p', { class: 'panel-empty', role: 'alert' }, `SpamAssassin could not check this message: ${result.Error}`));
        return;
      }
      const rules = result.Rules || [];
      body.replaceChildren(
        h(
          'div',
          { class: 'check-summary' },
          h('p', { class: `check-score ${result.IsSpam ? 'bad' : 'good'}`, id: 'spam-score' }, String(result.Score)),
          h('p', null, result.IsSpam ? 'SpamAssassin scores this message as spam.' : 'SpamAssassin does not score this message as spam.'),
        ),
        rules.length
          ? h(
              'table',
              { class: 'check-table', id: 'spam-rules' },
              h('caption', { class: 'sr-only' }, 'SpamAssassin rules that matched'),
              h(
                'thead',
                null,
                h('tr', null, h('th', { scope: 'col' }, 'Points'), h('th', { scope: 'col' }, 'Rule'), h('th', { scope: 'col' }, 'Description')),
              ),
              h(
                'tbody',
                null,
                rules.map((rule) =>
                  h(
                    'tr',
                    null,
                    h('td', { class: 'num' }, String(rule.Score)),
                    h('td', null, h('code', null, rule.Name)),
                    h('td', null, rule.Description),
                  ),
                ),
              ),
            )
          : h('p', { class: 'panel-empty' }, 'No rule matched.'),
      );
    });
    return [status, body];
  }
}

function supportBar(score) {
  const bar = h('div', { class: 'support-bar', role: 'img', 'aria-label': `${Math.round(score.Supported || 0)}% supported, ${Math.round(score.Partial || 0)}% partly, ${Math.round(score.Unsupported || 0)}% not supported` });
  for (const [kind, value] of [['yes', score.Supported], ['partial', score.Partial], ['no', score.Unsupported]]) {
    if (!(value > 0)) continue;
    const part = h('span', { class: `support-${kind}` });
    part.style.width = `${Number(value)}%`; // CSSOM, which the page's CSP allows (not a style attribute)
    bar.append(part);
  }
  return bar;
}

function htmlWarning(warning) {
  const score = warning.Score || {};
  const lines = warning.Lines || [];
  const results = warning.Results || [];
  const notes = warning.NotesByNumber || {};
  return h(
    'li',
    { class: 'check-item', dataset: { slug: warning.Slug } },
    h(
      'details',
      null,
      h(
        'summary',
        null,
        h('span', { class: 'check-title' }, warning.Title),
        h('span', { class: 'tag' }, warning.Category),
        h('span', { class: 'muted' }, ` ${Math.round(score.Supported || 0)}% supported`),
        lines.length ? h('span', { class: 'muted check-lines' }, ` · line ${lines.join(', ')}`) : null,
      ),
      lines.length
        ? h(
            'p',
            { class: 'check-source-lines' },
            'In the HTML source on line ',
            lines.map((n, i) => [
              i ? ', ' : '',
              h('a', { href: `#source-L${n}`, class: 'source-link', dataset: { line: String(n) }, title: `Show line ${n} of the HTML source` }, String(n)),
            ]),
          )
        : null,
      supportBar(score),
      h(
        'ul',
        { class: 'client-list' },
        results.map((r) =>
          h(
            'li',
            { class: `client support-${r.Support}`, title: SUPPORT_LABEL[r.Support] || r.Support },
            `${r.Family} (${r.Platform.replace(/-/g, ' ')})`,
            h('span', { class: 'client-support' }, ` ${SUPPORT_LABEL[r.Support] || r.Support}${r.NoteNumber ? ` [${r.NoteNumber}]` : ''}`),
          ),
        ),
      ),
      Object.keys(notes).length
        ? h('ol', { class: 'check-notes' }, Object.entries(notes).map(([n, text]) => h('li', { value: n }, text)))
        : null,
      warning.URL
        ? h('p', null, h('a', { href: warning.URL, target: '_blank', rel: 'noopener noreferrer' }, 'More on caniemail.com'))
        : null,
    ),
  );
}

function linkRow(link) {
  const ok = link.StatusCode >= 200 && link.StatusCode < 400;
  const redirects = link.Redirects || [];
  return h(
    'tr',
    { class: ok ? 'link-ok' : 'link-bad' },
    h('td', { class: 'num' }, h('span', { class: `status-code ${ok ? 'good' : 'bad'}` }, link.StatusCode ? String(link.StatusCode) : '—'), ` ${link.Status}`),
    h(
      'td',
      { class: 'link-url' },
      h('a', { href: link.URL, target: '_blank', rel: 'noopener noreferrer' }, link.URL),
      redirects.length
        ? h('div', { class: 'muted' }, `via ${redirects.map((r) => `${r.StatusCode} ${r.URL}`).join(' → ')}`)
        : null,
    ),
  );
}
