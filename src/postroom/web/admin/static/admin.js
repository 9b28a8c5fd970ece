// Postroom admin pages: copy buttons and confirmations. Everything works without this script.

const live = document.getElementById('live-region');

function announce(text) {
  if (!live) return;
  live.textContent = '';
  window.setTimeout(() => {
    live.textContent = text;
  }, 30);
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host is not a secure context: fall back to a selection.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'sr-only';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await writeClipboard(text);
    button.textContent = 'Copied';
    button.dataset.copied = '';
    announce('Copied to the clipboard');
    window.setTimeout(() => {
      button.textContent = 'Copy';
      delete button.dataset.copied;
    }, 2000);
  } catch {
    selectText(source);
    announce('Copying is not allowed here: the text is selected, press Ctrl+C to copy it');
  }
});

document.addEventListener('submit', (event) => {
  const form = event.target;
  const question = form.dataset ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Narrow screens show a table one block a row (admin.css): each cell says its column.
for (const table of document.querySelectorAll('table.table')) {
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll('tbody tr')) {
    let column = 0;
    for (const cell of row.children) {
      const label = heads[column];
      if (label && !cell.hasAttribute('data-label')) cell.dataset.label = label;
      column += cell.colSpan || 1;
    }
  }
}
