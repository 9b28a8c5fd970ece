// The address confirmation page: the button posts the token as JSON (the GET that shows the
// page changes nothing, so that link scanners in mail systems confirm nothing).

const box = document.getElementById('confirm-box');
const button = document.getElementById('confirm-button');
const result = document.getElementById('confirm-result');

async function confirmAddress() {
  button.disabled = true;
  result.className = '';
  result.textContent = 'Confirming…';
  let response;
  let body = {};
  try {
    response = await fetch('/confirm-address', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ token: box.dataset.token }),
      credentials: 'omit',
      cache: 'no-store',
    });
    body = await response.json().catch(() => ({}));
  } catch {
    result.className = 'alert';
    result.textContent = 'The server could not be reached. Try again.';
    button.disabled = false;
    return;
  }
  if (response.ok) {
    box.hidden = true;
    result.className = 'notice';
    result.textContent = `Confirmed: project ${body.project} may now send mail as ${body.address}.`;
  } else {
    result.className = 'alert';
    result.textContent = body.Error ? `Not confirmed: ${body.Error}.` : 'Not confirmed.';
  }
}

if (box && button) button.addEventListener('click', confirmAddress);
