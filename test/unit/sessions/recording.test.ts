// Recordings: exact bytes back (UTF-8 split across chunks, invalid UTF-8, binary), readable
// after a crash (a truncated gzip file), bounded (the limit callback), retention by day.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import {
  AsciicastWriter,
  localRecordingStore,
  readRecording,
  recordingKey,
  streamBytes,
} from '../../../src/sessions/recording.ts'
import { tempDir } from '../../harness/temp-dir.ts'

function newStore() {
  return localRecordingStore(tempDir('gatehouse-rec-'))
}

function writer(
  store: ReturnType<typeof newStore>,
  key: string,
  maxBytes = 1 << 20,
  onLimit = () => undefined,
) {
  return new AsciicastWriter(
    store.create(key),
    { width: 80, height: 24, timestamp: 0, gatehouse: { session: key } },
    { start: performance.now(), maxBytes, onLimit },
  )
}

describe('asciicast recordings', () => {
  test('every byte comes back: characters split across chunks, invalid UTF-8, binary', async () => {
    const store = newStore()
    const w = writer(store, 'a.cast.gz')
    const text = Buffer.from('héllo wörld — 日本語 🎉\n')
    // split inside multi-byte characters, one byte at a time
    for (let i = 0; i < text.length; i++) w.text('o', text.subarray(i, i + 1))
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]) // ends with a lone lead byte
    w.text('e', binary)
    w.text('e', Buffer.from('x'))
    w.resize(132, 43)
    w.exit('0')
    await w.close()
    const { header, events, truncated } = await readRecording(store.open('a.cast.gz'))
    assert.equal(truncated, false)
    assert.equal(header['version'], 2)
    assert.ok(streamBytes(events, 'o').equals(text))
    assert.ok(streamBytes(events, 'e').equals(Buffer.concat([binary, Buffer.from('x')])))
    // text stays text (asciinema players show it); only the invalid bytes are base64
    assert.ok(events.some(([, c, d]) => c === 'o' && typeof d === 'string' && d.includes('日')))
    assert.ok(events.some(([, c]) => c === 'eb'))
    assert.deepEqual(events.find(([, c]) => c === 'r')?.[2], '132x43')
    assert.deepEqual(events.at(-1)?.slice(1), ['x', '0'])
  })

  test('output with LINE and PARAGRAPH SEPARATOR (U+2028, U+2029) comes back whole, on every Node', async () => {
    // JSON.stringify leaves both raw inside the event's string; node:readline on Node 24 takes
    // them for line ends, which cut the event in two and the recording read as truncated
    const store = newStore()
    const w = writer(store, 'sep.cast.gz')
    const text = Buffer.from('a\u2028b\u2029c\r\n\u0085d\n')
    w.text('o', text)
    w.exit('0')
    await w.close()
    const { events, truncated } = await readRecording(store.open('sep.cast.gz'))
    assert.equal(truncated, false)
    assert.ok(streamBytes(events, 'o').equals(text))
    assert.deepEqual(events.at(-1)?.slice(1), ['x', '0'])
  })

  test('a recording cut off mid-write (a crash) reads up to the last flush', async () => {
    const store = newStore()
    const w = writer(store, 'b.cast.gz')
    w.text('o', Buffer.from('before the crash\n'))
    await w.flush()
    w.text('o', Buffer.from('never flushed\n'))
    // simulate the crash: take the file as it is on disk now, without the gzip trailer
    const path = join(store.location, 'b.cast.gz')
    const onDisk = readFileSync(path)
    await w.close()
    const { events, truncated } = await readRecording(Readable.from([onDisk]))
    assert.equal(truncated, true)
    assert.equal(streamBytes(events, 'o').toString(), 'before the crash\n')
  })

  test('the size limit: the callback fires, nothing beyond the limit is written', async () => {
    const store = newStore()
    let limited = 0
    const w = writer(store, 'c.cast.gz', 4096, () => {
      limited++
      w.stop('limit reached')
    })
    for (let i = 0; i < 100; i++) w.text('o', Buffer.alloc(100, 'a'))
    await w.close()
    assert.equal(limited, 1)
    assert.ok(w.bytes <= 4096 + 100, String(w.bytes))
    const { events } = await readRecording(store.open('c.cast.gz'))
    assert.deepEqual(events.at(-1)?.slice(1), ['g', 'limit reached'])
  })

  test('a kill or a limit that comes after the recording closed changes nothing (no write after end)', async () => {
    const store = newStore()
    const w = writer(store, 'd.cast.gz')
    w.text('o', Buffer.from('done\n'))
    await w.close()
    w.stop('killed too late')
    w.text('o', Buffer.from('late'))
    w.exit('1')
    await w.close()
    const { events, truncated } = await readRecording(store.open('d.cast.gz'))
    assert.equal(truncated, false)
    assert.deepEqual(
      events.map((e) => e[1]),
      ['o'],
    )
  })

  test('keys stay inside the store; retention removes whole days before the cutoff', async () => {
    const store = newStore()
    assert.throws(() => store.create('../escape.cast.gz'), /leaves/)
    const old = recordingKey('old', new Date('2026-01-02T10:00:00Z'))
    const recent = recordingKey('new', new Date('2026-03-02T10:00:00Z'))
    for (const k of [old, recent]) {
      mkdirSync(join(store.location, k, '..'), { recursive: true })
      writeFileSync(join(store.location, k), 'x')
    }
    assert.equal(await store.deleteBefore(Date.parse('2026-02-01T00:00:00Z')), 1)
    assert.equal(existsSync(join(store.location, old)), false)
    assert.equal(existsSync(join(store.location, recent)), true)
  })
})
