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
