// The approvals web page, rendered on the server as plain HTML: inbox, history, one request's
// details with the approve/deny form, login. No script, no external resource (the stylesheet is
// served by Gatehouse); every value is escaped; landmarks, labels, table headers and a skip link
// for screen readers and keyboards.
import type { ApprovalRecord } from '../approval/record.ts'
import type { Identity } from '../authn/index.ts'

export const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  )

export const STYLESHEET = `
:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fff; line-height: 1.45; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
header { display: flex; justify-content: space-between; align-items: center; border-bottom: 2px solid #1b4f72; }
header form { display: inline; }
nav a { margin-right: 1rem; }
a { color: #0b5394; } a:focus, button:focus, textarea:focus, input:focus { outline: 3px solid #f1c232; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ccc; vertical-align: top; }
th { background: #eef3f8; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .75rem; overflow: auto; max-height: 30rem; }
.state { font-weight: 600; padding: .1rem .4rem; border-radius: .3rem; background: #eee; }
.state-pending { background: #fff2cc; } .state-approved, .state-used { background: #d9ead3; }
.state-denied, .state-expired { background: #f4cccc; }
.alert { border: 2px solid #990000; padding: .5rem 1rem; background: #fdecea; }
.notice { border: 2px solid #1b4f72; padding: .5rem 1rem; background: #eef3f8; }
textarea { width: 100%; min-height: 5rem; font: inherit; }
button { font: inherit; padding: .4rem 1.2rem; margin-right: .5rem; cursor: pointer; }
button.approve { background: #38761d; color: #fff; border: 0; } button.deny { background: #990000; color: #fff; border: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; } dt { font-weight: 600; }
`

export function layout(
  title: string,
  who: Identity | undefined,
  csrf: string | undefined,
  main: string,
): string {
  const user =
    who && csrf
      ? `<div>Signed in as <strong>${esc(who.name)}</strong>
         <form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit">Sign out</button></form></div>`
      : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Gatehouse approvals</title>
<link rel="stylesheet" href="/static/approvals.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p><strong>Gatehouse</strong> approvals</p>
<nav aria-label="Approvals"><a href="/approvals">Inbox</a><a href="/approvals/history">History</a></nav>
${user}
</header>
<main id="main">
<h1>${esc(title)}</h1>
${main}
</main>
</body>
</html>
`
}

const stateBadge = (a: ApprovalRecord): string =>
  `<span class="state state-${esc(a.state)}">${esc(a.state)}${a.breakGlass ? ' (break-glass)' : ''}</span>`

export function approvalTable(items: readonly ApprovalRecord[], caption: string): string {
  if (items.length === 0) return `<p>${esc(caption)}: none.</p>`
  const rows = items
    .map(
      (a) => `<tr>
<td><a href="/approvals/${esc(a.id)}">${esc(a.request.summary)}</a></td>
<td>${esc(a.requester.name)}</td>
<td>${esc(a.cluster)}</td>
<td>${esc(`${a.rule.policy}/${a.rule.rule}`)}</td>
<td>${a.decisions.filter((d) => d.decision === 'approve').length} of ${a.settings.quorum}</td>
<td>${stateBadge(a)}</td>
<td><time datetime="${esc(a.createdAt)}">${esc(a.createdAt)}</time></td>
<td><time datetime="${esc(a.expiresAt)}">${esc(a.expiresAt)}</time></td>
</tr>`,
    )
    .join('\n')
  return `<table>
<caption>${esc(caption)}</caption>
<thead><tr><th scope="col">Request</th><th scope="col">Requester</th><th scope="col">Cluster</th><th scope="col">Rule</th><th scope="col">Approvals</th><th scope="col">State</th><th scope="col">Asked</th><th scope="col">Expires</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}

const dl = (pairs: [string, unknown][]): string =>
  `<dl>${pairs
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join('')}</dl>`

/** CI provenance (repository, ref, run id...) from the identity's Impersonate-Extra values. */
function provenance(a: ApprovalRecord): [string, unknown][] {
  return Object.entries(a.requester.extra)
    .filter(([k]) => !['gatehouse.dev/request-id'].includes(k))
    .map(([k, v]) => [k.replace(/^gatehouse\.dev\//, ''), v.join(', ')])
}

export function detailPage(
  a: ApprovalRecord,
  opts: { canDecide: boolean; why?: string; csrf: string; message?: string },
): string {
  const r = a.request
  const decisions = a.decisions.length
    ? `<ul>${a.decisions
        .map(
          (d) =>
            `<li><strong>${esc(d.by)}</strong> ${d.decision === 'approve' ? 'approved' : 'denied'}${d.breakGlass ? ' <strong>as break-glass</strong>' : ''} at <time datetime="${esc(d.at)}">${esc(d.at)}</time>${d.comment ? `: “${esc(d.comment)}”` : ''}</li>`,
        )
        .join('')}</ul>`
    : '<p>No decision yet.</p>'
  const form = opts.canDecide
    ? `<section aria-labelledby="decide">
<h2 id="decide">Decide</h2>
<form method="post" action="/approvals/${esc(a.id)}/decide">
<input type="hidden" name="csrf" value="${esc(opts.csrf)}">
<label for="comment">Comment (required to deny; the requester sees it)</label>
<textarea id="comment" name="comment" maxlength="2000"></textarea>
<p><button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button></p>
</form>
</section>`
    : a.state === 'pending' && opts.why
      ? `<p class="notice">${esc(opts.why)}</p>`
      : ''
  return `${opts.message ? `<p class="alert" role="alert">${esc(opts.message)}</p>` : ''}
<p>${stateBadge(a)} ${a.state === 'pending' ? `expires at <time datetime="${esc(a.expiresAt)}">${esc(a.expiresAt)}</time>` : esc(a.reason ?? '')}</p>
${a.breakGlass ? '<p class="alert" role="alert">Approved through break-glass, without quorum.</p>' : ''}
<section aria-labelledby="requester"><h2 id="requester">Requester</h2>
${dl([
  ['Identity', a.requester.name],
  ['Groups', a.requester.groups.join(', ')],
  [
    'Authenticated by',
    `${a.requester.method}${a.requester.issuer ? ` (${a.requester.issuer})` : ''}`,
  ],
  ...provenance(a),
  ['Justification', a.justification ?? '(none given)'],
])}</section>
<section aria-labelledby="request"><h2 id="request">Request</h2>
${dl([
  ['Cluster', a.cluster],
  ['Verb', r.verb],
  ['API group', r.apiGroup || '(core)'],
  ['Resource', r.subresource ? `${r.resource}/${r.subresource}` : r.resource],
  ['Namespace', r.namespace || '(cluster-wide)'],
  ['Name', r.name || '(in the body)'],
  ['HTTP', `${r.method} ${r.target}`],
  ['Body SHA-256', r.bodySha256 || '(no body)'],
  ['Rule', `${a.rule.policy}/${a.rule.rule}`],
  ['Approvals needed', a.settings.quorum],
  ['Approval id', a.id],
])}
${a.body ? `<h3>Body${a.body.masked ? ` (${a.body.masked} values masked)` : ''}${a.body.truncated ? ' (truncated)' : ''}</h3><pre>${esc(a.body.text)}</pre>` : ''}
${a.dryRun ? `<h3>Dry run (the API server's answer with dryRun=All, as the requester)</h3><pre>${esc('error' in a.dryRun ? a.dryRun.error : `HTTP ${a.dryRun.code}\n${a.dryRun.text}`)}</pre>` : ''}
</section>
<section aria-labelledby="decisions"><h2 id="decisions">Decisions</h2>${decisions}</section>
${form}`
}

export function loginPage(opts: {
  oidc: boolean
  devLogin: boolean
  next: string
  error?: string
}): string {
  const dev = opts.devLogin
    ? `<section aria-labelledby="dev"><h2 id="dev">Development login</h2>
<p class="alert">Development login is enabled (approvals.web.insecureDevLogin): anyone can sign in as anyone. Never in production.</p>
<form method="post" action="/login/dev">
<input type="hidden" name="next" value="${esc(opts.next)}">
<p><label for="name">Name</label> <input id="name" name="name" required></p>
<p><label for="groups">Groups (comma-separated)</label> <input id="groups" name="groups"></p>
<p><button type="submit">Sign in</button></p>
</form></section>`
    : ''
  const oidc = opts.oidc
    ? `<p><a href="/login/oidc?next=${encodeURIComponent(opts.next)}">Sign in with your identity provider</a></p>`
    : ''
  return `${opts.error ? `<p class="alert" role="alert">${esc(opts.error)}</p>` : ''}${oidc}${dev}${!opts.oidc && !opts.devLogin ? '<p>No login is configured (approvals.web.oidc).</p>' : ''}`
}
