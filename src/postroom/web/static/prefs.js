// The inbox's remembered layout choices, kept in cookies the server reads to render the shell
// as chosen (like the theme switch, theme.js): no flash of the other layout on load.
//   postroom_page_size   rows per page (25, 50, 100, 200): also the first page the shell preloads
//   postroom_density     "compact" (one line a row) or absent
//   postroom_list_width  the list pane's width in pixels beside an open message

const YEAR = 31536000;

export function readCookie(name) {
  const match = document.cookie.match(new RegExp(`(?:^|;\\s*)${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : '';
}

/** Remember `value` under `name` for a year; an empty value forgets it. */
export function remember(name, value) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  const age = value === '' ? 0 : YEAR;
  document.cookie = `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${age}; SameSite=Lax${secure}`;
}

export const PAGE_SIZES = [25, 50, 100, 200];
export const LIST_WIDTH = { min: 240, step: 16, bigStep: 64 };
