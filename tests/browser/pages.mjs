// The host pages the widget is embedded in: a small "Acme app" page with
// its own script (/host.js, served as a file so a strict CSP needs no
// unsafe-inline) and the snippet from the widget's contract.
//
// /page takes its options from the query:
//   site=NAME      which seeded site's key the snippet carries
//   snippet=0      no widget snippet (the baseline for the globals check)
//   stub=0         host.js defines no `chatdesk` queue stub and queues nothing
//   identify=good|bad   host.js queues chatdesk('identify', …) with the
//                  right or a wrong userHash
//   csp=1          sent with a strict Content-Security-Policy header
//   api=dead       the snippet's data-api names a port where nothing listens

import { createHmac } from 'node:crypto';

export const NONCE = 'aG9zdC1wYWdlLW5vbmNl';
export const VISITOR = { externalId: 'user-42', email: 'ada@example.com', plan: 'team' };

/** The page's own script: globals of its own, a log the tests read, the queue stub. */
const HOST_JS = `(function () {
  var config = JSON.parse(document.querySelector('meta[name="host-config"]').content);
  window.hostLog = [];
  window.appState = { user: 'ada', cart: [1, 2, 3] };
  window.hostFetch = window.fetch;
  document.addEventListener('securitypolicyviolation', function (e) {
    hostLog.push({ type: 'csp', directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
  });
  window.addEventListener('error', function (e) { hostLog.push({ type: 'error', message: String(e.message) }); });
  window.addEventListener('unhandledrejection', function (e) { hostLog.push({ type: 'rejection', message: String(e.reason) }); });
  if (!config.stub) return;
  window.chatdesk = window.chatdesk || function () { (chatdesk.q = chatdesk.q || []).push(arguments); };
  chatdesk('on', 'ready', function (e) { hostLog.push({ type: 'ready', detail: e }); });
  chatdesk('on', 'content', function (e) { hostLog.push({ type: 'content', detail: e }); });
  if (config.identify) chatdesk('identify', config.identify);
})();
`;

/** hex(HMAC-SHA256(secret, the visitor's externalId)): what the site's server computes. */
export function userHash(secret) {
  return createHmac('sha256', secret).update(VISITOR.externalId).digest('hex');
}

function escapeAttr(text) {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** The strict policy of the csp=1 pages: scripts and connections to the API only, no inline anything. */
export function strictCsp(api) {
  return [
    "default-src 'none'",
    `script-src ${api} 'nonce-${NONCE}'`,
    `connect-src ${api}`,
    "style-src 'none'",
    "img-src 'none'",
    "font-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The page handlers for startPages. `state()` gives the API origin, an
 * origin where nothing listens, the site keys by name and the identity
 * secret of the main site, known once chatdesk is seeded.
 */
export function hostPages(state) {
  return {
    '/host.js': () => ({ headers: { 'content-type': 'text/javascript; charset=utf-8' }, body: HOST_JS }),
    '/page': (url) => {
      const { api, deadApi, keys, identitySecret } = state();
      const q = url.searchParams;
      const site = q.get('site') || 'main';
      let identify = null;
      if (q.get('identify')) {
        const secret = q.get('identify') === 'good' ? identitySecret : 'not-the-secret';
        identify = {
          externalId: VISITOR.externalId,
          traits: { email: VISITOR.email, plan: VISITOR.plan },
          userHash: userHash(secret),
        };
      }
      const config = { stub: q.get('stub') !== '0', identify };
      const snippet = q.get('snippet') === '0'
        ? ''
        : `<script async nonce="${NONCE}" src="${api}/widget.js" data-site-key="${escapeAttr(keys[site])}"${
          q.get('api') === 'dead' ? ` data-api="${deadApi}"` : ''}></script>`;
      const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="host-config" content="${escapeAttr(JSON.stringify(config))}">
<title>Acme app</title>
<script nonce="${NONCE}" src="/host.js"></script>
${snippet}
</head>
<body>
<header><a href="#top" id="home">Acme home</a></header>
<main><h1>Acme app</h1><p>Projects, invoices and your team, in one place.</p></main>
</body>
</html>
`;
      const headers = { 'content-type': 'text/html; charset=utf-8' };
      if (q.get('csp') === '1') headers['content-security-policy'] = strictCsp(api);
      return { headers, body };
    },
  };
}
