// The Headers check tab (GET /api/v1/message/{ID}/headers-check: DKIM, SPF, DMARC,
// List-Unsubscribe, From/Date/Message-ID) and the parse warnings of the message head: a
// header field that cannot be read is shown as written with the reason beside it, and a Date
// that cannot be read says the time shown is the receive time. Everything from the message is
// set as text.

import { h, icon } from './dom.js';
import { plural } from './format.js';

const LEVEL_LABEL = { fail: 'Fail', warn: 'Warning', pass: 'Pass', info: 'Note' };
const GOOD = new Set(['pass']);
const BAD = new Set(['fail', 'permerror']);

/** The message's HeaderWarnings by header name (the first of each). */
export function headerWarnings(message) {
  const found = {};
  for (const warning of message.HeaderWarnings || []) {
    if (!found[warning.Header]) found[warning.Header] = warning;
  }
  return found;
}

/** The reason a shown header is not what the message says, beside it. */
export function warningNote(warning) {
  return h(
    'span',
    { class: 'header-warning', role: 'note', dataset: { header: warning.Header } },
    icon('warn'),
    h('span', null, warning.Warning),
  );
}

/** A head row's value for a field that cannot be read: the field as written, and why. */
export function warnedValue(label, warning) {
  return h(
    'dd',
    { class: `msg-${label.toLowerCase()} header-warned` },
    h('span', { class: 'header-raw' }, warning.Value || '(empty)'),
    warningNote(warning),
  );
}

function verdictClass(result) {
  if (GOOD.has(result)) return 'good';
  if (BAD.has(result)) return 'bad';
  return 'meh';
}

function verdict(id, name, result, detail) {
  return h(
    'li',
    { class: `hc-verdict ${verdictClass(result)}`, id },
    h('span', { class: 'hc-verdict-name' }, name),
    h('span', { class: 'hc-verdict-result' }, result || 'not judged'),
    detail ? h('span', { class: 'muted hc-verdict-detail' }, detail) : null,
  );
}

function verdicts(result) {
  const dkim = result.DKIM || [];
  const dkimResult = dkim.length
    ? dkim.some((d) => d.Result === 'pass')
      ? 'pass'
      : dkim[0].Result
    : 'none';
  const dkimDetail = dkim.map((d) => `d=${d.Domain} ${d.Result}`).join(', ') || 'not signed';
  const spf = result.SPF;
  const dmarc = result.DMARC;
  return h(
    'ul',
    { class: 'hc-verdicts', 'aria-label': 'Authentication results' },
    verdict('hc-dkim', 'DKIM', dkimResult, dkimDetail),
    verdict(
      'hc-spf',
      'SPF',
      spf ? spf.Result : '',
      spf ? `${spf.Domain || '(no domain)'} from ${spf.ClientIP}` : 'client address unknown',
    ),
    verdict(
      'hc-dmarc',
      'DMARC',
      dmarc ? dmarc.Result : '',
      dmarc ? `${dmarc.Domain}${dmarc.Policy ? `, p=${dmarc.Policy}` : ''}` : 'no single From domain',
    ),
  );
}

function findingRow(finding) {
  return h(
    'tr',
    { class: `hc-finding hc-${finding.Level}`, dataset: { check: finding.Check } },
    h('td', null, h('span', { class: `hc-level hc-level-${finding.Level}` }, LEVEL_LABEL[finding.Level] || finding.Level)),
    h('td', null, finding.Header ? h('code', null, finding.Header) : ''),
    h('td', { class: 'hc-text' }, finding.Text),
  );
}

/**
 * The tab's content for `view` (a MessageView): loaded once per message through its
 * loadCheck, like the other checks.
 */
export function headersCheckPanel(view, load) {
  const status = h('p', { class: 'panel-empty', role: 'status' }, 'Checking the headers (DKIM, SPF and DMARC look up DNS)…');
  const body = h('div', { class: 'check-body' });
  view.loadCheck('headerscheck', load, status, (result) => {
    const summary = result.Summary || {};
    const findings = result.Findings || [];
    const fails = summary.Fail || 0;
    const warns = summary.Warn || 0;
    body.replaceChildren(
      h(
        'div',
        { class: 'check-summary' },
        h(
          'p',
          { class: `check-score hc-score ${fails ? 'bad' : warns ? '' : 'good'}`, id: 'headers-check-score' },
          fails ? plural(fails, 'failure', 'failures') : warns ? plural(warns, 'warning', 'warnings') : 'All good',
        ),
        h(
          'p',
          null,
          `${plural(summary.Pass || 0, 'check', 'checks')} passed, ${plural(warns, 'warning', 'warnings')}, ` +
            `${plural(fails, 'failure', 'failures')}, ${plural(summary.Info || 0, 'note', 'notes')}, ` +
            'as a receiving mail server would judge the message.',
        ),
      ),
      verdicts(result),
      h(
        'table',
        { class: 'check-table hc-table', id: 'headers-check-table' },
        h('caption', { class: 'sr-only' }, 'Findings of the headers check'),
        h(
          'thead',
          null,
          h('tr', null, h('th', { scope: 'col' }, 'Result'), h('th', { scope: 'col' }, 'Header'), h('th', { scope: 'col' }, 'Finding')),
        ),
        h('tbody', null, findings.map(findingRow)),
      ),
    );
  });
  return [status, body];
}
