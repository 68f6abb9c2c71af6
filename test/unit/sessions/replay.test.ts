// Replay: stdout and stderr events to their own streams, byte for byte, paced by the recorded
// times (scaled by --speed, pauses capped by --max-idle), or at once.
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import type { AsciicastEvent } from '../../../src/sessions/recording.ts'
import { replay, transcript } from '../../../src/sessions/replay.ts'

const events: AsciicastEvent[] = [
  [0, 'i', 'ignored: stdin is what the client sent'],
  [0.01, 'o', 'first\n'],
  [0.02, 'r', '80x24'],
  [0.5, 'e', 'warning\n'],
  [1.0, 'ob', Buffer.from([0xff, 0x00, 0x41]).toString('base64')],
  [1.0, 'x', '0'],
]

async function play(speed: number, maxIdleSeconds?: number) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (d: Buffer) => out.push(d))
  stderr.on('data', (d: Buffer) => err.push(d))
  const t0 = performance.now()
  await replay(
    events,
    { stdout, stderr },
    {
      speed,
      ...(maxIdleSeconds === undefined ? {} : { maxIdleSeconds }),
    },
  )
  return { ms: performance.now() - t0, out: Buffer.concat(out), err: Buffer.concat(err) }
}

test('streams apart and exact, binary included', async () => {
  const r = await play(Infinity)
  assert.ok(r.out.equals(Buffer.concat([Buffer.from('first\n'), Buffer.from([0xff, 0x00, 0x41])])))
  assert.equal(r.err.toString(), 'warning\n')
})

test('paced by the recording: original pace takes the recorded second, --speed 10 a tenth, --max-idle caps pauses', async () => {
  assert.ok((await play(1)).ms >= 900)
  assert.ok((await play(10)).ms < 600)
  assert.ok((await play(1, 0.1)).ms < 600)
})

test('a transcript names every event', () => {
  const t = transcript(events)
  assert.match(t, /stdin +"ignored/)
  assert.match(t, /resize +"80x24"/)
  assert.match(t, /stdout +\(base64\) /)
  assert.match(t, /exit +"0"/)
})
