// Notifications of approval steps: outgoing webhooks (JSON, signed with HMAC-SHA256 so receivers
// can verify them) and Slack-compatible incoming webhooks (a text message with a link to the
// approval page). Deliveries run in the background with exponential backoff and never block or
// fail the data path; each outcome is reported (the service records a `notified` audit step).
//
// Signature: X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">, with the
// timestamp (Unix seconds) in X-Gatehouse-Timestamp, so a receiver can refuse replays.
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import type { ApprovalsConfig } from '../config/index.ts'
import type { Logger } from '../observability/logger.ts'
import { quote } from '../kube/describe.ts'
import type { ApprovalRecord } from './record.ts'
import { summaryParts } from './summary.ts'
import type { ApprovalEvent } from './steps.ts'

type NotificationsConfig = NonNullable<ApprovalsConfig['notifications']>

/** Steps worth telling people about (`used` and `notified` are audit-only). */
const NOTIFIED: readonly ApprovalEvent[] = ['requested', 'approved', 'denied', 'expired']

export interface Delivery {
  target: string
  ok: boolean
  attempts: number
  error?: string
}

interface Target {
  name: string
  url: string
  agent: Agent | undefined
  body(event: ApprovalEvent, a: ApprovalRecord, link: string): string
  headers(body: string): Record<string, string>
}

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

export function webhookPayload(event: ApprovalEvent, a: ApprovalRecord, link: string): unknown {
  return {
    type: `gatehouse.approval.${event}`,
    breakGlass: a.breakGlass === true,
    url: link,
    approval: {
      id: a.id,
      state: a.state,
      cluster: a.cluster,
      requester: { name: a.requester.name, groups: a.requester.groups, extra: a.requester.extra },
      request: a.request,
      justification: a.justification,
      rule: a.rule,
      quorum: a.settings.quorum,
      createdAt: a.createdAt,
      expiresAt: a.expiresAt,
      decisions: a.decisions,
    },
  }
}

/** Slack's escaping of its control characters (& < >): no mention, no link, no markup from text. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * Text someone else chose (names, the justification, comments), in a code span: quoted with
 * control and bidi characters escaped, one line, Slack's characters escaped, backticks shown as
 * \u0060 so the span cannot end early. Slack neither formats nor links inside a code span.
 */
export function slackLiteral(s: string): string {
  return `\`${slackEscape(quote(s).replace(/`/g, '\\u0060'))}\``
}

/** The request summary with every client-chosen literal in its own code span. */
export function slackSummary(a: ApprovalRecord): string {
  return summaryParts(a)
    .map((p) =>
      'list' in p
        ? `[${p.list.map(slackLiteral).join(', ')}]`
        : p.literal
          ? slackLiteral(p.text)
          : slackEscape(p.text),
    )
    .join(' ')
}

/** Gatehouse's own link: the only one in a message (the URL is ours, the label fixed). */
function slackLink(link: string, id: string): string {
  return `<${link.replace(/[<>|]/g, encodeURIComponent)}|approval ${id}>`
}

export function slackText(event: ApprovalEvent, a: ApprovalRecord, link: string): string {
  const last = a.decisions.at(-1)
  const who = slackLiteral(a.requester.name)
  const by = last ? slackLiteral(last.by) : '?'
  const what = slackSummary(a)
  const head =
    event === 'requested'
      ? `Approval needed: ${who} asks to ${what} on cluster ${slackLiteral(a.cluster)}`
      : event === 'approved'
        ? `${a.breakGlass ? ':rotating_light: *BREAK-GLASS* ' : ''}Approved by ${by}: ${what} for ${who}`
        : event === 'denied'
          ? `Denied by ${by}: ${what} for ${who}`
          : `Expired without a decision: ${what} for ${who}`
  const highlights =
    event === 'requested'
      ? (a.highlights ?? [])
          .slice(0, 6)
          .map(
            (h) =>
              `\n• ${slackEscape(h.field)}: ${slackLiteral(JSON.stringify(h.value).slice(0, 300))}`,
          )
          .join('')
      : ''
  const why = a.justification ? `\nJustification: ${slackLiteral(a.justification)}` : ''
  const comment =
    last?.comment && event !== 'requested' ? `\nComment: ${slackLiteral(last.comment)}` : ''
  return `${head}${highlights}${why}${comment}\nRule ${slackLiteral(`${a.rule.policy}/${a.rule.rule}`)} · ${slackLink(link, a.id)}`
}

const agentFor = (caFile: string | undefined): Agent | undefined =>
  caFile ? new Agent({ connect: { ca: readFileSync(caFile) } }) : undefined

function targets(config: NotificationsConfig): Target[] {
  const out: Target[] = []
  for (const w of config.webhooks) {
    const secret = readFileSync(w.secretFile, 'utf8').trim()
    out.push({
      name: `webhook ${new URL(w.url).host}`,
      url: w.url,
      agent: agentFor(w.caFile),
      body: (e, a, link) => JSON.stringify(webhookPayload(e, a, link)),
      headers: (body) => {
        const ts = String(Math.floor(Date.now() / 1000))
        return {
          'content-type': 'application/json',
          'x-gatehouse-timestamp': ts,
          'x-gatehouse-signature': signature(secret, ts, body),
        }
      },
    })
  }
  for (const s of config.slack)
    out.push({
      name: `slack ${new URL(s.url).host}`,
      url: s.url,
      agent: agentFor(s.caFile),
      // no previews of anything a message mentions
      body: (e, a, link) =>
        JSON.stringify({ text: slackText(e, a, link), unfurl_links: false, unfurl_media: false }),
      headers: () => ({ 'content-type': 'application/json' }),
    })
  return out
}

/** Returns the listener to hand to ApprovalService.onEvent. */
export function createNotifier(
  config: NotificationsConfig,
  deps: {
    logger: Logger
    link: (id: string) => string
    onDelivery?: (event: ApprovalEvent, a: ApprovalRecord, d: Delivery) => void
    sleep?: (ms: number) => Promise<void>
  },
): (event: ApprovalEvent, a: ApprovalRecord) => void {
  const list = targets(config)
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()))

  const deliver = async (t: Target, event: ApprovalEvent, a: ApprovalRecord): Promise<Delivery> => {
    const body = t.body(event, a, deps.link(a.id))
    let error = ''
    let attempts = 0
    for (let attempt = 1; attempt <= config.maxAttempts; attempt++) {
      attempts = attempt
      try {
        const res = await request(t.url, {
          method: 'POST',
          headers: t.headers(body),
          body,
          ...(t.agent ? { dispatcher: t.agent } : {}),
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        })
        await res.body.dump()
        if (res.statusCode < 300) return { target: t.name, ok: true, attempts: attempt }
        error = `HTTP ${res.statusCode}`
        // a 4xx other than 408/429 will not get better by retrying
        if (res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) break
      } catch (e) {
        error = (e as Error).message
      }
      if (attempt < config.maxAttempts)
        await sleep(config.initialBackoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5))
    }
    return { target: t.name, ok: false, attempts, error }
  }

  return (event, a) => {
    if (!NOTIFIED.includes(event)) return
    if (a.breakGlass && event === 'approved')
      deps.logger.warn({ approval: a.id }, 'notifying a BREAK-GLASS approval')
    for (const t of list)
      void deliver(t, event, a).then((d) => {
        if (!d.ok)
          deps.logger.warn({ approval: a.id, event, ...d }, 'approval notification not delivered')
        deps.onDelivery?.(event, a, d)
      })
  }
}
