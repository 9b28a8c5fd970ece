// Small DOM helpers. Message data only ever reaches the page as text nodes or attribute values
// set through the DOM API: nothing here parses HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Create an element. `props` sets attributes (`class`, `dataset`, `on<event>` listeners, booleans);
 * children may be nodes, strings (added as text), numbers, arrays, or null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An icon from the sprite in the page shell. Decorative: the control carries the name. */
export function icon(name, extraClass = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', extraClass ? `icon ${extraClass}` : 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

// The short words an icon button shows beside its icon where there is room (app.css shows
// `.button-label` in a wide message toolbar); the full name stays its accessible name and title.
const SHORT_LABELS = {
  'Back to the list': 'Back',
  'Previous message (k)': 'Previous',
  'Next message (j)': 'Next',
  'Mark as unread': 'Mark unread',
  'Mark as read': 'Mark read',
  'Delete message': 'Delete',
  'Copy link to this message': 'Copy link',
};

/** A button with an icon and an accessible name (shown as text unless `iconOnly`). */
export function iconButton(name, label, { iconOnly = true, className = '', onclick, id } = {}) {
  const button = h('button', {
    type: 'button',
    class: `${iconOnly ? 'icon-button' : 'button'} ${className}`.trim(),
    'aria-label': iconOnly ? label : null,
    title: label,
    id,
    onclick,
  });
  button.append(icon(name));
  if (!iconOnly) button.append(h('span', null, label));
  else {
    const short = SHORT_LABELS[label] || label.replace(/\s*\([^)]*\)$/, '');
    button.append(h('span', { class: 'button-label', 'aria-hidden': 'true' }, short));
  }
  return button;
}

/** Text visible only to assistive technology. */
export function srOnly(text) {
  return h('span', { class: 'sr-only' }, text);
}

export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
