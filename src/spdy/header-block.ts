// SPDY/3 header blocks (section 2.6.10): a count, then length-prefixed names and values
// (several values of one name joined by NUL), all compressed with zlib. Each direction of a
// connection has ONE compression context that spans every header block sent on it, so blocks
// must be compressed and decompressed in connection order.
//
// Decompression is synchronous (pako's streaming inflate: Node's zlib streams are asynchronous
// only), so a frame's headers are known, and its limits checked, before anyone forwards the
// frame: the session tap must never relay a block it has not read (issue 18: a zlib bomb, a
// 2^31 header count or an uppercase name reached the kubelet while node:zlib was still busy).
import { constants, createDeflate, type Deflate } from 'node:zlib'
import { Inflate, Z_SYNC_FLUSH } from 'pako'
import { SPDY3_HEADER_DICTIONARY } from './dictionary.ts'
import { SpdyProtocolError } from './frames.ts'

/** Lowercase header name → values, in the order received. */
export type SpdyHeaders = Map<string, string[]>

/** Default bound on one decompressed header block: a zlib bomb must not exhaust memory. */
export const DEFAULT_MAX_HEADER_BLOCK_BYTES = 256 * 1024
/** Default bound on the headers of one block (Kubernetes sends one to three). */
export const DEFAULT_MAX_HEADERS = 100
/** Default bound on decompressed/compressed, checked once a block is past RATIO_FLOOR_BYTES. */
export const DEFAULT_MAX_RATIO = 100
const RATIO_FLOOR_BYTES = 1024

export interface HeaderLimits {
  /** Decompressed bytes of one block (and compressed bytes, which cannot usefully be more). */
  maxHeaderBlockBytes?: number
  maxHeaders?: number
  /** Decompressed bytes per compressed byte of one block (a bomb's tell). */
  maxRatio?: number
}

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

export function decodeHeaderBlock(
  block: Buffer,
  maxHeaders: number = DEFAULT_MAX_HEADERS,
): SpdyHeaders {
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
  if (count > maxHeaders)
    throw new SpdyProtocolError(
      `header block has ${count} headers, more than the limit of ${maxHeaders}`,
    )
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

/** Runs deflate work strictly in call order on one persistent stream. */
class OrderedDeflate {
  readonly #stream: Deflate
  #queue: Promise<unknown> = Promise.resolve()
  #output: Buffer[] = []
  #error: Error | undefined

  constructor(stream: Deflate) {
    this.#stream = stream
    stream.on('data', (chunk: Buffer) => this.#output.push(chunk))
    stream.on('error', (err: Error) => {
      this.#error ??= new SpdyProtocolError(`header compression failed: ${err.message}`)
    })
  }

  run(input: Buffer): Promise<Buffer> {
    const job = this.#queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.#error) return reject(this.#error)
          this.#output = []
          this.#stream.write(input)
          this.#stream.flush(constants.Z_SYNC_FLUSH, () =>
            this.#error ? reject(this.#error) : resolve(Buffer.concat(this.#output)),
          )
        }),
    )
    this.#queue = job.catch(() => undefined)
    return job
  }

  close(): void {
    this.#error ??= new SpdyProtocolError('header compression: closed')
    this.#stream.destroy()
  }
}

/** Compresses the header blocks one endpoint sends, in order, on one shared context. */
export class HeaderCompressor {
  readonly #zlib = new OrderedDeflate(createDeflate({ dictionary: SPDY3_HEADER_DICTIONARY }))

  compress(headers: SpdyHeaders | Record<string, string | string[]>): Promise<Buffer> {
    return this.#zlib.run(encodeHeaderBlock(headers))
  }

  close(): void {
    this.#zlib.close()
  }
}

/**
 * Decompresses the header blocks one endpoint receives, in order, synchronously. A corrupt or
 * oversized block poisons the context for good (every later block depends on it), so the
 * connection must be closed.
 */
export class HeaderDecompressor {
  readonly #inflate = new Inflate({ dictionary: SPDY3_HEADER_DICTIONARY, chunkSize: 16 * 1024 })
  readonly #max: number
  readonly #maxHeaders: number
  readonly #maxRatio: number
  #failed: SpdyProtocolError | undefined

  constructor(limits: HeaderLimits = {}) {
    this.#max = limits.maxHeaderBlockBytes ?? DEFAULT_MAX_HEADER_BLOCK_BYTES
    this.#maxHeaders = limits.maxHeaders ?? DEFAULT_MAX_HEADERS
    this.#maxRatio = limits.maxRatio ?? DEFAULT_MAX_RATIO
  }

  decompress(block: Buffer): SpdyHeaders {
    if (this.#failed) throw this.#failed
    if (block.length === 0) return new Map()
    try {
      return decodeHeaderBlock(this.#inflateBlock(block), this.#maxHeaders)
    } catch (e) {
      this.#failed =
        e instanceof SpdyProtocolError
          ? e
          : new SpdyProtocolError(`header decompression failed: ${String(e)}`)
      throw this.#failed
    }
  }

  #inflateBlock(block: Buffer): Buffer {
    if (block.length > this.#max)
      throw new SpdyProtocolError(
        `header block of ${block.length} compressed bytes exceeds the limit of ${this.#max} bytes`,
      )
    const out: Uint8Array[] = []
    let bytes = 0
    // Checked as output arrives, so a zlib bomb is cut off after one chunk, not inflated whole.
    this.#inflate.onData = (chunk: Uint8Array): void => {
      bytes += chunk.length
      if (bytes > this.#max)
        throw new SpdyProtocolError(`header block exceeds the limit of ${this.#max} bytes`)
      if (bytes > RATIO_FLOOR_BYTES && bytes > block.length * this.#maxRatio)
        throw new SpdyProtocolError(
          `header block inflates more than ${this.#maxRatio} times (a compression bomb)`,
        )
      out.push(chunk)
    }
    const ok = this.#inflate.push(block, Z_SYNC_FLUSH)
    if (!ok || this.#inflate.err)
      throw new SpdyProtocolError(
        `header decompression failed: ${this.#inflate.msg || 'corrupt data'}`,
      )
    // SPDY's header stream never ends: a final block means a peer that does not speak SPDY
    if (this.#inflate.ended)
      throw new SpdyProtocolError('header decompression failed: stream ended')
    return Buffer.concat(out)
  }

  close(): void {
    this.#failed ??= new SpdyProtocolError('header decompression: closed')
  }
}
