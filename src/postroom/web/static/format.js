// Formatting of times, sizes, addresses and counts for display.

// Intl date formatting costs tens of milliseconds the first time (locale data is loaded), so
// it is created on first use: the list renders without it and fills in exact times later.
let exactFormat = null;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parseDate(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", then a short date. */
export function relativeTime(date, now = new Date()) {
  if (!date) return '';
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  if (date >= startOfToday) return `${hours} h ago`;
  const days = Math.ceil((startOfToday.getTime() - date.getTime()) / 86400000);
  if (days <= 1) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  const short = `${date.getDate()} ${MONTHS[date.getMonth()]}`;
  return date.getFullYear() === now.getFullYear() ? short : `${short} ${date.getFullYear()}`;
}

export function exactTime(date) {
  if (!date) return '';
  exactFormat ||= new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  return exactFormat.format(date);
}

export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** 100000 -> "100,000" (the UI is in English). */
export function formatCount(n) {
  return String(Math.trunc(Number(n) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function plural(n, one, many) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** "Name <address>" or just the address. */
export function fullAddress(a) {
  if (!a) return '';
  if (a.Name && a.Address) return `${a.Name} <${a.Address}>`;
  return a.Name || a.Address || '';
}

/** The name if there is one, else the address. */
export function shortAddress(a) {
  if (!a) return '';
  return a.Name || a.Address || '';
}

export function addressList(list, max = Infinity) {
  const items = (list || []).map(shortAddress).filter(Boolean);
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} +${items.length - max}`;
}
