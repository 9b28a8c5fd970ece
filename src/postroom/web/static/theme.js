// The theme switch of the top bar (inbox and admin pages): system, light or dark, remembered
// in the postroom_theme cookie, which the server reads to render <html data-theme> (so a page
// never flashes in the other theme). "system" follows prefers-color-scheme.

const THEMES = ['system', 'light', 'dark'];
const LABELS = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };
const COOKIE = 'postroom_theme';

function current() {
  const match = document.cookie.match(/(?:^|;\s*)postroom_theme=([^;]*)/);
  const value = match ? decodeURIComponent(match[1]) : 'system';
  return THEMES.includes(value) ? value : 'system';
}

function apply(theme) {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${COOKIE}=${theme}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
}

function label(button, theme) {
  button.dataset.choice = theme;
  button.setAttribute('aria-label', `${LABELS[theme]} (change)`);
  button.title = `${LABELS[theme]}: click for ${THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]}`;
  const text = button.querySelector('.theme-label');
  if (text) text.textContent = theme[0].toUpperCase() + theme.slice(1);
}

const button = document.getElementById('theme-toggle');
if (button) {
  label(button, current());
  button.addEventListener('click', () => {
    const next = THEMES[(THEMES.indexOf(current()) + 1) % THEMES.length];
    apply(next);
    label(button, next);
  });
}
