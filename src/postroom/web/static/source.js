// The HTML source tab: the message's HTML with syntax highlighting and line numbers, made in
// the page from text nodes only (the HTML is tokenized here, never parsed by the browser), so
// nothing of it can run and no style attribute is needed under the page's CSP.

import { h } from './dom.js';
import { bodyDownload } from './viewtools.js';

/** Highlight at most this much; the rest is shown as plain text (the download has it all). */
export const HIGHLIGHT_LIMIT = 1024 * 1024;

const NAME = /[^\s/>"'=]/;

/**
 * Split HTML into [kind, text] tokens: 'text', 'entity', 'punct' (< > </ /> =), 'tag' (a
 * tag's name), 'attr', 'value', 'comment', 'doctype' and 'raw' (the inside of script and
 * style). Joined, the texts give back the input exactly; bad markup is just text.
 */
export function tokenize(html) {
  const tokens = [];
  const push = (kind, text) => {
    if (!text) return;
    const last = tokens[tokens.length - 1];
    if (last && last[0] === kind) last[1] += text;
    else tokens.push([kind, text]);
  };
  const n = html.length;
  let i = 0;
  while (i < n) {
    const lt = html.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd > i) {
      const text = html.slice(i, textEnd);
      let last = 0;
      for (const match of text.matchAll(/&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});?/gi)) {
        push('text', text.slice(last, match.index));
        push('entity', match[0]);
        last = match.index + match[0].length;
      }
      push('text', text.slice(last));
      i = textEnd;
      continue;
    }
    // html[i] === '<'
    if (html.startsWith('<!--', i)) {
      const end = html.indexOf('-->', i + 4);
      const stop = end < 0 ? n : end + 3;
      push('comment', html.slice(i, stop));
      i = stop;
      continue;
    }
    if (html[i + 1] === '!' || html[i + 1] === '?') {
      const end = html.indexOf('>', i);
      const stop = end < 0 ? n : end + 1;
      push('doctype', html.slice(i, stop));
      i = stop;
      continue;
    }
    const closing = html[i + 1] === '/';
    const nameStart = i + (closing ? 2 : 1);
    if (!/[a-z]/i.test(html[nameStart] || '')) {
      push('text', '<');
      i += 1;
      continue;
    }
    push('punct', closing ? '</' : '<');
    let j = nameStart;
    while (j < n && NAME.test(html[j])) j += 1;
    const tagName = html.slice(nameStart, j).toLowerCase();
    push('tag', html.slice(nameStart, j));
    // attributes up to '>' (quotes may hold '>')
    while (j < n && html[j] !== '>') {
      const ch = html[j];
      if (/\s/.test(ch)) {
        let k = j;
        while (k < n && /\s/.test(html[k])) k += 1;
        push('text', html.slice(j, k));
        j = k;
      } else if (ch === '/' ) {
        push('punct', '/');
        j += 1;
      } else if (ch === '=') {
        push('punct', '=');
        j += 1;
        while (j < n && /\s/.test(html[j])) {
          push('text', html[j]);
          j += 1;
        }
        if (html[j] === '"' || html[j] === "'") {
          const end = html.indexOf(html[j], j + 1);
          const stop = end < 0 ? n : end + 1;
          push('value', html.slice(j, stop));
          j = stop;
        } else {
          let k = j;
          while (k < n && !/[\s>]/.test(html[k])) k += 1;
          push('value', html.slice(j, k));
          j = k;
        }
      } else {
        let k = j;
        while (k < n && NAME.test(html[k])) k += 1;
        if (k === j) k += 1; // a stray quote
        push('attr', html.slice(j, k));
        j = k;
      }
    }
    if (j < n) {
      push('punct', '>');
      j += 1;
    }
    i = j;
    if (!closing && (tagName === 'script' || tagName === 'style')) {
      const end = html.toLowerCase().indexOf(`</${tagName}`, i);
      const stop = end < 0 ? n : end;
      push('raw', html.slice(i, stop));
      i = stop;
    }
  }
  return tokens;
}

/**
 * The source as an ordered list, one item per line (`id` source-L<n>), each token a span of
 * class `hl-<kind>`. `limit`: characters highlighted; the rest is one plain text line run.
 */
export function sourceView(html, limit = HIGHLIGHT_LIMIT) {
  const shown = html.length > limit ? html.slice(0, limit) : html;
  const list = h('ol', { class: 'source-lines', 'aria-label': 'HTML source' });
  let line = h('li', { id: 'source-L1' });
  let number = 1;
  const lines = [line];
  for (const [kind, text] of tokenize(shown)) {
    const pieces = text.split('\n');
    pieces.forEach((piece, index) => {
      if (index > 0) {
        number += 1;
        line = h('li', { id: `source-L${number}` });
        lines.push(line);
      }
      if (!piece) return;
      if (kind === 'text') line.append(piece);
      else line.append(h('span', { class: `hl-${kind}` }, piece));
    });
  }
  // A final line break ends the last line; it does not start another.
  if (number > 1 && !line.firstChild) {
    lines.pop();
    number -= 1;
  }
  for (const item of lines) if (!item.firstChild) item.append('\u200b'); // keep empty lines' height
  list.append(...lines);
  // Room for the widest line number (CSSOM: the page's CSP allows it, style attributes not).
  list.style.setProperty('--digits', String(String(number).length));
  return { list, lines: number, truncated: html.length > limit };
}

/**
 * The tab's content for a message: toolbar (line count, download), then the source. `line`:
 * a line to show and mark (from the HTML check's "line N" links), or 0.
 */
export function sourcePanel(message, line = 0) {
  const { list, lines, truncated } = sourceView(message.HTML || '');
  const note = truncated
    ? ` · only the first ${Math.round(HIGHLIGHT_LIMIT / 1024)} KiB shown; download it for all`
    : '';
  const body = h('div', { class: 'source-body', tabindex: '0' }, list);
  if (line > 0) {
    const target = list.querySelector(`#source-L${line}`);
    if (target) {
      target.classList.add('source-target');
      target.setAttribute('aria-current', 'true');
      requestAnimationFrame(() => target.scrollIntoView({ block: 'center' }));
    }
  }
  return [
    h(
      'div',
      { class: 'panel-toolbar' },
      h('span', { class: 'muted', id: 'source-count' }, `${lines} ${lines === 1 ? 'line' : 'lines'}${note}`),
      h('span', { class: 'panel-tools' }, bodyDownload(message.ID, 'html')),
    ),
    body,
  ];
}
