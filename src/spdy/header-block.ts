// SPDY/3 header blocks (section 2.6.10): a count, then length-prefixed names and values
// (several values of one name joined by NUL), all compressed with zlib. Each direction of a
// connection has ONE compression context that spans every header block sent on it, so blocks
// must be compressed and decompressed in connection order; these classes serialise calls.
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib'
import { SPDY3_HEADER_DICTIONARY } from './dictionary.ts'
import { SpdyProtocolError } from './frames.ts'

/** Lowercase header name → values, in the order received. */
export type SpdyHeaders = Map<string, string[]>

/** Default bound on one decompressed header block: a zlib bomb must not exhaust memory. */
export const DEFAULT_MAX_HEADER_BLOCK_BYTES = 256 * 1024

export function encodeHeaderBlock(
  headers: SpdyHeaders | Record<string, string | string[]>,
): Buffer {
  const entries =
    headers instanceof Map
      ? [...headers]
      : Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]] as const)
  const parts: Buffer[] = []
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }
  parts.push(u32(entries.length))
  const seen = new Set<string>()
  for (const [name, values] of entries) {
    if (name.length === 0 || name !== name.toLowerCase())
      throw new SpdyProtocolError(
        `header name must be non-empty lowercase: ${JSON.stringify(name)}`,
      )
    if (seen.has(name)) throw new SpdyProtocolError(`duplicate header name ${name}`)
    seen.add(name)
    if (values.some((v) => v.includes('\0')))
      throw new SpdyProtocolError(`header ${name} has a value containing NUL`)
    const n = Buffer.from(name, 'utf8')
    const v = Buffer.from(values.join('\0'), 'utf8')
    parts.push(u32(n.length), n, u32(v.length), v)
  }
  return Buffer.concat(parts)
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  let offset = 0
  const u32 = (what: string): number => {
    if (offset + 4 > block.length)
      throw new SpdyProtocolError(`header block truncated reading ${what}`)
    const n = block.readUInt32BE(offset)
    offset += 4
    return n
  }
  const bytes = (n: number, what: string): string => {
    if (offset + n > block.length)
      throw new SpdyProtocolError(
        `header block truncated: ${what} claims ${n} bytes, ${block.length - offset} left`,
      )
    const s = block.toString('utf8', offset, offset + n)
    offset += n
    return s
  }
  const count = u32('the header count')
  // Each pair needs at least 8 bytes, so a huge count cannot make us loop for long.
  if (count * 8 > block.length - 4)
    throw new SpdyProtocolError(
      `header block claims ${count} headers but has only ${block.length - 4} bytes`,
    )
  const headers: SpdyHeaders = new Map()
  for (let i = 0; i < count; i++) {
    const name = bytes(u32('a name length'), 'a header name')
    if (name.length === 0) throw new SpdyProtocolError('header block has an empty header name')
    if (name !== name.toLowerCase())
      throw new SpdyProtocolError(`header name is not lowercase: ${name}`)
    if (headers.has(name)) throw new SpdyProtocolError(`duplicate header name ${name}`)
    const value = bytes(u32(`the length of ${name}`), `the value of ${name}`)
    headers.set(name, value.split('\0'))
  }
  if (offset !== block.length)
    throw new SpdyProtocolError(`header block has ${block.length - offset} trailing bytes`)
  return headers
}

/** Runs zlib work strictly in call order on one persistent stream. */
class OrderedZlib {
  readonly #stream: Deflate | Inflate
  readonly #maxOutput: number
  readonly #what: string
  #queue: Promise<unknown> = Promise.resolve()
  #output: Buffer[] = []
  #outputBytes = 0
  #error: Error | undefined
  #pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined

  constructor(stream: Deflate | Inflate, maxOutput: number, what: string) {
    this.#stream = stream
    this.#maxOutput = maxOutput
    this.#what = what
    stream.on('data', (chunk: Buffer) => {
      this.#outputBytes += chunk.length
      // Checked as output arrives, so a zlib bomb is cut off, not merely counted.
      if (this.#outputBytes > this.#maxOutput) {
        return this.#fail(
          new SpdyProtocolError(
            `${what}: header block exceeds the limit of ${this.#maxOutput} bytes`,
          ),
        )
      }
      this.#output.push(chunk)
    })
    stream.on('error', (err: Error) =>
      this.#fail(new SpdyProtocolError(`${what} failed: ${err.message}`)),
    )
  }

  #fail(err: Error): void {
    this.#error ??= err
    this.#stream.destroy()
    this.#pending?.reject(this.#error)
    this.#pending = undefined
  }

  run(input: Buffer): Promise<Buffer> {
    const job = this.#queue.then(() => this.#process(input))
    this.#queue = job.catch(() => undefined)
    return job
  }

  #process(input: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#error) return reject(this.#error)
      this.#output = []
      this.#outputBytes = 0
      this.#pending = { resolve, reject }
      this.#stream.write(input)
      this.#stream.flush(constants.Z_SYNC_FLUSH, () => {
        const pending = this.#pending
        this.#pending = undefined
        if (this.#error) return pending?.reject(this.#error)
        pending?.resolve(Buffer.concat(this.#output))
      })
    })
  }

  close(): void {
    this.#fail(new SpdyProtocolError(`${this.#what}: closed`))
  }
}

/** Compresses the header blocks one endpoint sends, in order, on one shared context. */
export class HeaderCompressor {
  readonly #zlib = new OrderedZlib(
    createDeflate({ dictionary: SPDY3_HEADER_DICTIONARY }),
    Number.MAX_SAFE_INTEGER,
    'header compression',
  )

  compress(headers: SpdyHeaders | Record<string, string | string[]>): Promise<Buffer> {
    return this.#zlib.run(encodeHeaderBlock(headers))
  }

  close(): void {
    this.#zlib.close()
  }
}

/**
 * Decompresses the header blocks one endpoint receives, in order. A corrupt block poisons the
 * context for good (every later block depends on it), so the connection must be closed.
 */
export class HeaderDecompressor {
  readonly #zlib: OrderedZlib

  constructor(options: { maxHeaderBlockBytes?: number } = {}) {
    const max = options.maxHeaderBlockBytes ?? DEFAULT_MAX_HEADER_BLOCK_BYTES
    this.#zlib = new OrderedZlib(
      createInflate({ dictionary: SPDY3_HEADER_DICTIONARY }),
      max,
      'header decompression',
    )
  }

  async decompress(block: Buffer): Promise<SpdyHeaders> {
    if (block.length === 0) return new Map()
    return decodeHeaderBlock(await this.#zlib.run(block))
  }

  close(): void {
    this.#zlib.close()
  }
}
