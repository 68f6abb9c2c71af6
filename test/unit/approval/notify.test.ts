// Notifications against local receivers: a webhook signed with HMAC-SHA256 (verified here as a
// receiver would), retried with backoff through 503s, not retried on a 400; a Slack-compatible
// message with the link; and the data path never waits for a receiver.
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createNotifier, type Delivery } from '../../../src/approval/notify.ts'
import { silentLogger } from '../../../src/observability/logger.ts'
import { pendingApproval } from './records.ts'
import { tempDir } from '../../harness/temp-dir.ts'

interface Received {
  headers: IncomingMessage['headers']
  body: string
}

async function receiver(
  answer: (n: number) => number | 'hang',
): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      const code = answer(got.length)
      if (code === 'hang') return
      res.writeHead(code)
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server }
}

const SECRET = 'webhook-shared-secret'
const dir = tempDir('gh-notify-')
writeFileSync(join(dir, 'secret'), `${SECRET}\n`)
const servers: Server[] = []
after(() => {
  for (const s of servers) s.closeAllConnections()
  for (const s of servers) s.close()
})

function notifier(
  webhooks: string[],
  slack: string[],
  deliveries: Delivery[],
): ReturnType<typeof createNotifier> {
  return createNotifier(
    {
      webhooks: webhooks.map((url) => ({ url, secretFile: join(dir, 'secret') })),
      slack: slack.map((url) => ({ url })),
      maxAttempts: 4,
      initialBackoffMs: 10,
    },
    {
      logger: silentLogger(),
      link: (id) => `https://gatehouse.example/approvals/${id}`,
      onDelivery: (_e, _a, d) => deliveries.push(d),
    },
  )
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('approval notifications', () => {
  it('signs webhooks with HMAC-SHA256 and retries through server errors', async () => {
    const hook = await receiver((n) => (n < 3 ? 503 : 200))
    servers.push(hook.server)
    const deliveries: Delivery[] = []
    notifier([hook.url], [], deliveries)('requested', pendingApproval({ justification: 'INC-42' }))
    await until(() => deliveries.length === 1)
    assert.deepEqual(deliveries[0], {
      target: `webhook ${new URL(hook.url).host}`,
      ok: true,
      attempts: 3,
    })
    assert.equal(hook.got.length, 3)
    const last = hook.got[2]!
    const ts = String(last.headers['x-gatehouse-timestamp'])
    const expected = createHmac('sha256', SECRET).update(`${ts}.${last.body}`).digest('hex')
    assert.equal(last.headers['x-gatehouse-signature'], `sha256=${expected}`)
    const payload = JSON.parse(last.body) as {
      type: string
      url: string
      approval: { id: string; justification: string }
    }
    assert.equal(payload.type, 'gatehouse.approval.requested')
    assert.equal(payload.approval.justification, 'INC-42')
    assert.match(payload.url, /\/approvals\/00000000-0000-4000-8000-000000000001$/)
  })

  it('does not retry a client error', async () => {
    const hook = await receiver(() => 400)
    servers.push(hook.server)
    const deliveries: Delivery[] = []
    notifier([hook.url], [], deliveries)('denied', pendingApproval({ state: 'denied' }))
    await until(() => deliveries.length === 1)
    assert.equal(deliveries[0]!.ok, false)
    assert.equal(deliveries[0]!.attempts, 1)
    assert.equal(deliveries[0]!.error, 'HTTP 400')
  })

  it('posts a Slack-compatible message with the link, loud for break-glass', async () => {
    const slack = await receiver(() => 200)
    servers.push(slack.server)
    const deliveries: Delivery[] = []
    const a = pendingApproval({
      state: 'approved',
      breakGlass: true,
      decisions: [
        {
          by: 'human:oncall',
          groups: [],
          decision: 'approve',
          comment: 'outage',
          at: '',
          via: 'api',
          breakGlass: true,
        },
      ],
    })
    notifier([], [slack.url], deliveries)('approved', a)
    await until(() => deliveries.length === 1)
    const { text } = JSON.parse(slack.got[0]!.body) as { text: string }
    assert.match(text, /BREAK-GLASS/)
    assert.match(text, /Approved by `"human:oncall"`/)
    assert.match(
      text,
      /<https:\/\/gatehouse\.example\/approvals\/0{8}-0000-4000-8000-0{11}1\|approval /,
    )
  })

  it("escapes what others chose for Slack: no mention, no link but Gatehouse's, no forged scope", async () => {
    const slack = await receiver(() => 200)
    servers.push(slack.server)
    const deliveries: Delivery[] = []
    const forged = 'ci-view" in namespace "sandbox'
    const a = pendingApproval({
      justification: 'urgent <!channel> see <https://evil.example/x|approval 1234> & `run` this',
      requester: {
        name: 'human:b\u202eob',
        groups: [],
        method: 'oidc',
        claims: {},
        extra: {},
      },
    })
    a.request.objectName = forged
    a.request.summary = 'unused by Slack'
    notifier([], [slack.url], deliveries)('requested', a)
    await until(() => deliveries.length === 1)
    const body = JSON.parse(slack.got[0]!.body) as { text: string; unfurl_links: boolean }
    const text = body.text
    assert.equal(body.unfurl_links, false)
    assert.doesNotMatch(text, /<!channel>/)
    assert.doesNotMatch(text, /<https:\/\/evil/)
    assert.match(text, /&lt;!channel&gt;/)
    assert.equal(text.match(/<[^>]*\|[^>]*>/g)?.length, 1, 'one link only')
    assert.match(text, /<https:\/\/gatehouse\.example\/approvals\/[^|]+\|approval [^>]+>$/)
    assert.ok(!text.includes('\u202e'), 'no raw RLO')
    assert.match(text, /`"human:b\\u202eob"`/)
    assert.match(
      text,
      /create clusterrolebindings\.rbac\.authorization\.k8s\.io cluster-wide named `"ci-view\\" in namespace \\"sandbox"`/,
    )
    assert.match(text, /\\u0060run\\u0060/, 'a backtick cannot end the code span')
    assert.equal(text.split('\n').length, 3, 'no line an attacker added')
  })

  it('never makes the caller wait, even for a receiver that never answers', async () => {
    const stuck = await receiver(() => 'hang')
    servers.push(stuck.server)
    const t0 = performance.now()
    notifier([stuck.url], [stuck.url], [])('requested', pendingApproval())
    assert.ok(performance.now() - t0 < 50)
    await until(() => stuck.got.length === 2)
  })

  it('tells nobody about audit-only steps', async () => {
    const hook = await receiver(() => 200)
    servers.push(hook.server)
    notifier([hook.url], [], [])('used', pendingApproval())
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(hook.got.length, 0)
  })
})
