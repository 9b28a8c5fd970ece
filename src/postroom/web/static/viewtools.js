// Tools of the message view beside its tabs: downloads of the HTML and text bodies, opening an
// attachment of a safe type in a new tab. The server decides what is shown inline
// (api/disposition.py); the UI offers "Open" for the same types only.

import { base } from './api.js';
import { h, icon } from './dom.js';

const enc = encodeURIComponent;

/** Raster images, PDF and plain text: what the server sends inline (anything else downloads). */
const SAFE_INLINE = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/pdf',
  'text/plain',
]);

export const toolUrls = {
  body: (id, kind) => `${base}/api/v1/message/${enc(id)}/body.${kind}`,
  part: (id, part) => `${base}/api/v1/message/${enc(id)}/part/${enc(part)}`,
};

export function opensInline(contentType) {
  return SAFE_INLINE.has(String(contentType || '').split(';')[0].trim().toLowerCase());
}

/** "Download HTML" / "Download text": the body as a file named after the subject. */
export function bodyDownload(id, kind) {
  const label = kind === 'html' ? 'Download HTML' : 'Download text';
  return h(
    'a',
    { class: 'button', href: toolUrls.body(id, kind), download: '', id: `download-${kind}` },
    icon('download'),
    h('span', null, label),
  );
}

/** "Open" in a new tab for a part of a safe type; null for the others (download only). */
export function openPart(id, part, name) {
  if (!opensInline(part.ContentType)) return null;
  return h(
    'a',
    {
      class: 'icon-button open-part',
      href: toolUrls.part(id, part.PartID),
      target: '_blank',
      rel: 'noopener noreferrer',
      'aria-label': `Open ${name} in a new tab`,
      title: `Open ${name} in a new tab`,
    },
    icon('external'),
  );
}

// ---------------------------------------------------------------- release

// What the release endpoint checks for good (smtp/address.py); this only catches typing slips
// before the request: an address is something@something, no spaces or angle brackets.
const ADDRESS = /^[^\s@<>,;]+@[^\s@<>,;]+$/;

/** Recipients typed as a list: commas, semicolons, spaces or new lines between them. */
export function parseRecipients(text) {
  const found = [];
  const bad = [];
  for (const item of String(text).split(/[\s,;]+/)) {
    const address = item.replace(/^<|>$/g, '');
    if (!address) continue;
    if (!ADDRESS.test(address)) bad.push(item);
    else if (!found.includes(address)) found.push(address);
  }
  return { found, bad };
}

/**
 * The "Release" button of the message toolbar, or null: shown for captured messages only, and
 * only when the server has a relay (`MessageRelay.Enabled` of /api/v1/webui).
 */
export function releaseButton(message, relay, release) {
  if (!relay || !relay.Enabled || (message.Status && message.Status !== 'captured')) return null;
  return h(
    'button',
    {
      type: 'button',
      class: 'icon-button',
      id: 'release-message',
      'aria-label': 'Release: send this message to real recipients',
      title: 'Release: send this message to real recipients',
      onclick: () => openReleaseDialog(message, relay, release),
    },
    icon('send'),
  );
}

function openReleaseDialog(message, relay, release) {
  const input = h('textarea', {
    id: 'release-to',
    class: 'release-to',
    rows: '2',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'name@example.com, other@example.com',
    'aria-describedby': 'release-hint release-status',
  });
  const status = h('p', { class: 'release-status', id: 'release-status', role: 'status' });
  const send = h('button', { type: 'submit', class: 'button primary', id: 'release-send' }, 'Release');
  const cancel = h('button', { type: 'button', class: 'button', id: 'release-cancel' }, 'Cancel');
  const allowed = relay.AllowedRecipients
    ? ` Recipients must match ${relay.AllowedRecipients}.`
    : '';
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: 'release-title' }, 'Release message'),
    h(
      'p',
      { class: 'release-subject' },
      'Send “',
      message.Subject || '(no subject)',
      '” as it was captured, byte for byte, to real recipients.',
    ),
    h('label', { for: 'release-to' }, 'Recipients'),
    input,
    h(
      'p',
      { class: 'muted release-hint', id: 'release-hint' },
      `Through the relay ${relay.SMTPServer}. Separate addresses with commas or spaces.${allowed}`,
    ),
    status,
    h('div', { class: 'confirm-actions' }, cancel, send),
  );
  const dialog = h(
    'dialog',
    { class: 'confirm release-dialog', id: 'release-dialog', 'aria-labelledby': 'release-title' },
    form,
  );
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  cancel.addEventListener('click', close);
  dialog.addEventListener('cancel', () => dialog.remove());
  input.addEventListener('input', () => {
    input.removeAttribute('aria-invalid');
    status.className = 'release-status';
    status.textContent = '';
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const { found, bad } = parseRecipients(input.value);
    const fail = (text) => {
      status.className = 'release-status error';
      status.textContent = text;
    };
    if (bad.length) {
      input.setAttribute('aria-invalid', 'true');
      fail(`Not an address: ${bad.join(', ')}`);
      input.focus();
      return;
    }
    if (!found.length) {
      input.setAttribute('aria-invalid', 'true');
      fail('Name at least one recipient.');
      input.focus();
      return;
    }
    send.disabled = true;
    status.className = 'release-status';
    status.textContent = 'Sending…';
    release(message.ID, found).then(
      () => {
        status.className = 'release-status good';
        status.textContent = `Released to ${found.join(', ')}.`;
        send.hidden = true;
        cancel.textContent = 'Close';
        cancel.focus();
      },
      (error) => {
        send.disabled = false;
        fail(`Not released: ${error.message}`);
      },
    );
  });
  document.body.append(dialog);
  dialog.showModal();
  input.focus();
  return dialog;
}

// ---------------------------------------------------------------- screenshot

const SHOT_WIDTHS = { phone: 375, tablet: 768, desktop: 1024 };

/**
 * "Screenshot": the server draws the HTML in headless Chromium (nothing remote is loaded) at
 * the preview's width and the PNG is saved. `width()` gives the preview width's id.
 */
export function screenshotButton(message, width) {
  const status = h('span', { class: 'muted shot-status', id: 'screenshot-status', role: 'status' });
  const button = h(
    'button',
    { type: 'button', class: 'button', id: 'screenshot' },
    icon('camera'),
    h('span', null, 'Screenshot'),
  );
  button.addEventListener('click', async () => {
    const pixels = SHOT_WIDTHS[width()] || 1024;
    button.disabled = true;
    status.textContent = `Drawing at ${pixels} px…`;
    try {
      const response = await fetch(
        `${base}/api/v1/message/${enc(message.ID)}/screenshot.png?width=${pixels}`,
        { cache: 'no-store' },
      );
      if (!response.ok) {
        let text = `${response.status} ${response.statusText}`;
        try {
          const data = await response.json();
          if (data && typeof data.Error === 'string') text = data.Error;
        } catch {
          // not JSON: the status line
        }
        throw new Error(text);
      }
      const blob = await response.blob();
      const link = h('a', {
        href: URL.createObjectURL(blob),
        download: `${(message.Subject || message.ID).replace(/[\\/:*?"<>|]+/g, '_').trim()}.png`,
        hidden: true,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      status.textContent = response.headers.get('X-Postroom-Cut') === '1'
        ? 'Saved (the page was cut at 8000 px).'
        : 'Saved.';
    } catch (error) {
      status.textContent = `No screenshot: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return [button, status];
}
