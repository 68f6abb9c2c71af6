// One approval's page: what matters first (the highlights: roleRef and subjects, images and
// privileges, the argv), then exactly what the binding covers, the decoded body and the dry run
// in full (collapsible when long, never cut), the requester, the decisions and the form.
import type { ApprovalRecord } from '../approval/record.ts'
import { block, esc, stateBadge, t } from './web-pages.ts'

/** Blocks longer than this many lines or bytes start collapsed (a click shows all of it). */
const OPEN_LINES = 60
const OPEN_BYTES = 16 * 1024

const dl = (pairs: [string, string | undefined][]): string =>
  `<dl>${pairs
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`)
    .join('')}</dl>`

/** CI provenance (repository, ref, run id...) from the identity's Impersonate-Extra values. */
function provenance(a: ApprovalRecord): [string, string][] {
  return Object.entries(a.requester.extra)
    .filter(([k]) => !['gatehouse.dev/request-id'].includes(k))
    .map(([k, v]) => [k.replace(/^gatehouse\.dev\//, ''), t(v.join(', '))])
}

/** A whole text in a <details>: open when short; the summary says how long it is. */
function collapsible(title: string, text: string): string {
  const lines = text.split('\n').length
  const open = lines <= OPEN_LINES && Buffer.byteLength(text) <= OPEN_BYTES
  return `<details${open ? ' open' : ''}><summary>${esc(title)} (${lines} lines, ${Buffer.byteLength(text)} bytes; shown in full)</summary><pre>${block(text)}</pre></details>`
}

function body(a: ApprovalRecord): string {
  const b = a.body
  if (!b) return ''
  const what = `Body, ${b.contentType || 'untyped'}, ${b.bytes} bytes`
  if (b.shownAs === 'dry-run')
    return `<p><strong>${esc(what)}</strong>: Gatehouse cannot decode this encoding; the API server decoded it for the dry run below, which shows the whole object.</p>`
  const how = { decoded: 'decoded', text: 'as text', hex: 'as hex' }[b.shownAs]
  return collapsible(`${what}, ${how}${b.masked ? `, ${b.masked} values masked` : ''}`, b.text)
}

function highlights(a: ApprovalRecord): string {
  const h = a.highlights ?? []
  if (h.length === 0) return ''
  return `<section class="highlights" aria-labelledby="matters"><h2 id="matters">What this request does</h2>
${dl(h.map((x) => [x.field, `<pre>${block(JSON.stringify(x.value, null, 2))}</pre>`]))}</section>`
}

function bound(a: ApprovalRecord): string {
  const b = a.bound
  const r = a.request
  const query = b?.query.length
    ? `<table><caption>Query parameters (bound)</caption><thead><tr><th scope="col">Parameter</th><th scope="col">Values</th></tr></thead><tbody>${b.query
        .map(([k, v]) => `<tr><td>${t(k)}</td><td>${v.map((x) => t(x)).join('<br>')}</td></tr>`)
        .join('')}</tbody></table>`
    : ''
  return `<section aria-labelledby="request"><h2 id="request">Exactly what is approved</h2>
<p>The approval lets through only a request with every one of these; anything else asks anew.</p>
${dl([
  ['Cluster', t(a.cluster)],
  ['Method', t(b?.method ?? r.method)],
  ['Path', t(b?.path ?? r.path ?? r.target)],
  ...(b?.rawQuery !== undefined
    ? [['Raw query (proxied as sent)', t(b.rawQuery)] as [string, string]]
    : []),
  ['Not bound', b?.unbound.length ? t(b.unbound.join(', ')) : undefined],
  ['Content-Type', b?.contentType ? t(b.contentType) : undefined],
  ['Body SHA-256', esc(r.bodySha256 || '(no body)')],
  ['Identity', t(b?.identity ?? a.requester.name)],
  ['Rule', t(`${a.rule.policy}/${a.rule.rule}`)],
  ['Approvals needed', esc(a.settings.quorum)],
  ['Approval id', esc(a.id)],
])}
${query}
${body(a)}
${a.dryRun ? collapsible("Dry run: the API server's answer with dryRun=All, as the requester", 'error' in a.dryRun ? a.dryRun.error : `HTTP ${a.dryRun.code}\n${a.dryRun.text}`) : ''}
</section>`
}

function requester(a: ApprovalRecord): string {
  return `<section aria-labelledby="requester"><h2 id="requester">Requester</h2>
${dl([
  ['Identity', t(a.requester.name)],
  ['Groups', t(a.requester.groups.join(', '))],
  [
    'Authenticated by',
    t(`${a.requester.method}${a.requester.issuer ? ` (${a.requester.issuer})` : ''}`),
  ],
  ...provenance(a),
  ['Justification', t(a.justification ?? '(none given)')],
])}</section>`
}

function decisions(a: ApprovalRecord): string {
  const items = a.decisions.map(
    (d) =>
      `<li><strong>${t(d.by)}</strong> ${d.decision === 'approve' ? 'approved' : 'denied'}${d.breakGlass ? ' <strong>as break-glass</strong>' : ''} at <time datetime="${esc(d.at)}">${esc(d.at)}</time>${d.comment ? `: “${t(d.comment)}”` : ''}</li>`,
  )
  return `<section aria-labelledby="decisions"><h2 id="decisions">Decisions</h2>${items.length ? `<ul>${items.join('')}</ul>` : '<p>No decision yet.</p>'}</section>`
}

export function detailPage(
  a: ApprovalRecord,
  opts: { canDecide: boolean; why?: string; csrf: string; message?: string },
): string {
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
    : opts.why
      ? `<p class="notice">${t(opts.why)}</p>`
      : ''
  return `${opts.message ? `<p class="alert" role="alert">${t(opts.message)}</p>` : ''}
<p>${stateBadge(a)} ${a.state === 'pending' ? `expires at <time datetime="${esc(a.expiresAt)}">${esc(a.expiresAt)}</time>` : t(a.reason ?? '')}</p>
${a.breakGlass ? '<p class="alert" role="alert">Approved through break-glass, without quorum.</p>' : ''}
${highlights(a)}
${bound(a)}
${requester(a)}
${decisions(a)}
${form}`
}
