// The approvals web page, rendered on the server as plain HTML: inbox, history, login (one
// request's details: web-detail.ts). No script, no external resource (the stylesheet is served
// by Gatehouse); every value is escaped for HTML, and control, bidi and invisible characters in
// what clients chose are shown as escapes; client-chosen names are literals in their own style
// (quoted, monospace, boxed); landmarks, labels, table headers and a skip link for screen
// readers and keyboards.
import type { ApprovalRecord } from '../approval/record.ts'
import { summaryParts } from '../approval/summary.ts'
import type { Identity } from '../authn/index.ts'
import { escapeInvisible, quote, type Part } from '../kube/describe.ts'

export const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  )

/** One line of text someone else chose: HTML-escaped, invisible characters shown as escapes. */
export const t = (s: unknown): string => `<bdi>${esc(escapeInvisible(String(s)))}</bdi>`

/** A block (a body, a dry run): like t() line by line, the line breaks kept. */
export const block = (s: string): string => esc(s.split('\n').map(escapeInvisible).join('\n'))

/** A client-chosen literal (a name, a namespace, a selector): quoted, in its own style. */
const literal = (s: string): string => `<code class="literal">${esc(quote(s))}</code>`

export function partsHtml(parts: readonly Part[]): string {
  return parts
    .map((p) =>
      'list' in p
        ? `[${p.list.map(literal).join(', ')}]`
        : p.literal
          ? literal(p.text)
          : esc(p.text),
    )
    .join(' ')
}

/** The request summary with its literals styled. */
export const summaryHtml = (a: ApprovalRecord): string => partsHtml(summaryParts(a))

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
code.literal { font-family: ui-monospace, monospace; background: #fff2cc; border: 1px solid #bf9000; border-radius: .2rem; padding: 0 .2rem; unicode-bidi: isolate; white-space: pre-wrap; word-break: break-all; }
pre { white-space: pre-wrap; word-break: break-all; }
.highlights { border: 2px solid #1b4f72; padding: .5rem 1rem; }
.highlights pre { max-height: none; }
details > summary { cursor: pointer; font-weight: 600; margin: .5rem 0; }
nav.pages { margin: 1rem 0; }
`

export function layout(
  title: string,
  who: Identity | undefined,
  csrf: string | undefined,
  main: string,
  /** The heading as HTML (a request summary with styled literals); default: the title. */
  heading?: string,
): string {
  const user =
    who && csrf
      ? `<div>Signed in as <strong>${t(who.name)}</strong>
         <form method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit">Sign out</button></form></div>`
      : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(escapeInvisible(title))} · Gatehouse approvals</title>
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
<h1>${heading ?? esc(escapeInvisible(title))}</h1>
${main}
</main>
</body>
</html>
`
}

export const stateBadge = (a: ApprovalRecord): string =>
  `<span class="state state-${esc(a.state)}">${esc(a.state)}${a.breakGlass ? ' (break-glass)' : ''}</span>`

export function approvalTable(
  items: readonly ApprovalRecord[],
  caption: string,
  total: number,
): string {
  if (total === 0) return `<p>${esc(caption)}: none.</p>`
  const rows = items
    .map(
      (a) => `<tr>
<td><a href="/approvals/${esc(a.id)}">${summaryHtml(a)}</a></td>
<td>${t(a.requester.name)}</td>
<td>${t(a.cluster)}</td>
<td>${t(`${a.rule.policy}/${a.rule.rule}`)}</td>
<td>${a.decisions.filter((d) => d.decision === 'approve').length} of ${a.settings.quorum}</td>
<td>${stateBadge(a)}</td>
<td><time datetime="${esc(a.createdAt)}">${esc(a.createdAt)}</time></td>
<td><time datetime="${esc(a.expiresAt)}">${esc(a.expiresAt)}</time></td>
</tr>`,
    )
    .join('\n')
  return `<table>
<caption>${esc(caption)}: ${total}</caption>
<thead><tr><th scope="col">Request</th><th scope="col">Requester</th><th scope="col">Cluster</th><th scope="col">Rule</th><th scope="col">Approvals</th><th scope="col">State</th><th scope="col">Asked</th><th scope="col">Expires</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}

/** Links to the other pages of a listing. */
export function pager(path: string, page: number, size: number, total: number): string {
  const pages = Math.max(1, Math.ceil(total / size))
  if (pages === 1) return ''
  const link = (n: number, label: string): string => `<a href="${path}?page=${n}">${label}</a>`
  return `<nav class="pages" aria-label="Pages"><p>Page ${Math.min(page, pages)} of ${pages}
${page > 1 ? link(page - 1, 'Newer') : ''} ${page < pages ? link(page + 1, 'Older') : ''}</p></nav>`
}

export function loginPage(opts: {
  oidc: boolean
  devLogin: boolean
  next: string
  /** The login form's CSRF token (also in its cookie). */
  csrf: string
  error?: string
}): string {
  const dev = opts.devLogin
    ? `<section aria-labelledby="dev"><h2 id="dev">Development login</h2>
<p class="alert">Development login is enabled (approvals.web.insecureDevLogin): anyone can sign in as anyone. Never in production.</p>
<form method="post" action="/login/dev">
<input type="hidden" name="next" value="${esc(opts.next)}">
<input type="hidden" name="csrf" value="${esc(opts.csrf)}">
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
