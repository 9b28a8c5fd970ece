// Address lists as the list rows and the message header show them: each name isolated in its
// own direction (a right-to-left name does not reorder the commas around it), and a long list
// cut to its first few with "+N more", which expands.

import { h } from './dom.js';
import { fullAddress, shortAddress } from './format.js';

/**
 * One address. Its name is isolated (`dir="auto"` takes its direction from its own first
 * strong letter), so a right-to-left name reads right to left and neither the address after it
 * nor the commas around it move.
 */
function addressNode(address, format) {
  const name = address.Name || '';
  if (format === fullAddress && name && address.Address) {
    return h('span', { class: 'addr' }, h('span', { class: 'addr-name', dir: 'auto' }, name), ` <${address.Address}>`);
  }
  return h('span', { class: 'addr' }, h('span', { class: 'addr-name', dir: 'auto' }, format(address)));
}

function joined(addresses, format, first) {
  const out = [];
  addresses.forEach((a, i) => {
    if (i > 0 || !first) out.push(', ');
    out.push(addressNode(a, format));
  });
  return out;
}

/**
 * The message header's list: the first `max` addresses, then a "+N more" button that shows the
 * rest (and "Show fewer" hides them again).
 */
export function recipientLine(list, max = 8) {
  const addresses = (list || []).filter((a) => a && (a.Address || a.Name));
  if (addresses.length <= max + 1) return joined(addresses, fullAddress, true);
  const restCount = addresses.length - max;
  const rest = h('span', { class: 'addr-rest', hidden: true }, joined(addresses.slice(max), fullAddress, false));
  const more = `+${restCount} more`;
  const button = h(
    'button',
    {
      type: 'button',
      class: 'addr-more',
      'aria-expanded': 'false',
      title: `Show all ${addresses.length} addresses`,
      onclick: () => {
        const open = rest.hidden;
        rest.hidden = !open;
        button.setAttribute('aria-expanded', open ? 'true' : 'false');
        button.textContent = open ? 'Show fewer' : more;
      },
    },
    more,
  );
  return [...joined(addresses.slice(0, max), fullAddress, true), rest, ' ', button];
}

/**
 * A list row's recipients: names (or addresses) of the first `max`, the rest hidden behind a
 * "+N more" the row expands on a click (app.js); the title lists them all.
 */
export function rowRecipients(list, max = 3) {
  const addresses = (list || []).filter((a) => a && (a.Address || a.Name));
  if (!addresses.length) return ['(no recipients)'];
  if (addresses.length <= max + 1) return joined(addresses, shortAddress, true);
  return [
    // The addresses in a box of their own, which a narrow row cuts short ("…") while the
    // "+N more" after it stays in sight.
    h('span', { class: 'row-to-list' }, [
      ...joined(addresses.slice(0, max), shortAddress, true),
      h('span', { class: 'row-to-rest' }, joined(addresses.slice(max), shortAddress, false)),
    ]),
    ' ',
    // Both words are there; the row's `to-open` class (app.js) says which one shows, so a row
    // redrawn by a live update keeps saying the right one.
    h(
      'span',
      { class: 'row-more' },
      h('span', { class: 'row-more-closed' }, `+${addresses.length - max} more`),
      h('span', { class: 'row-more-open' }, 'fewer'),
    ),
  ];
}
