// Masks Kubernetes JSON response bodies as they stream, with bounded memory:
//
// - `list`: a list (or a Table) is masked item by item: its `items` (Table: `rows`) are cut out
//   of the byte stream one element at a time, each decoded, masked and written out before the
//   next is read, so 10,000 Secrets never sit in memory at once. The members around the array
//   (kind, apiVersion, metadata) are small and masked as one object. A body without an items
//   array (a Status, say) is masked whole.
// - `watch`: each event (one JSON value after another, as the API server writes them) is masked
//   on its own and written out at once, followed by a newline.
// - `object`: one object, decoded whole and masked.
//
// This is not a JSON parser: it only finds where top-level members and array elements end
// (strings and nesting tracked byte by byte) and leaves validation to JSON.parse on each piece.
// Anything it cannot follow is an error, and the caller ends the response (fail closed): a
// client then sees a truncated body, never an unmasked one.
import { Transform, type TransformCallback } from 'node:stream'
import {
  itemTypeOf,
  maskKubernetesJson,
  type ObjectMaskingRules,
  type TypeHint,
} from './objects.ts'

export type JsonShape = 'object' | 'list' | 'watch'

export class JsonMaskingError extends Error {}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/** Where the top-level reader is (list shape). */
const At = {
  Start: 0,
  /** after `{` or `,`: a key, or `}` */
  Key: 1,
  InKey: 2,
  Colon: 3,
  ValueStart: 4,
  /** inside a member's value (nesting tracked) */
  Value: 5,
  AfterValue: 6,
  /** inside the items array, between elements */
  Items: 7,
  Item: 8,
  AfterItem: 9,
  End: 10,
} as const
type At = (typeof At)[keyof typeof At]

/** Collects the bytes of one piece across chunks, bounded. */
class Piece {
  parts: Buffer[] = []
  bytes = 0
  add(b: Buffer, limit: number): void {
    this.bytes += b.length
    if (this.bytes > limit)
      throw new JsonMaskingError(`an object of more than ${limit} bytes cannot be masked`)
    this.parts.push(b)
  }
  take(): string {
    const s = Buffer.concat(this.parts).toString('utf8')
    this.parts = []
    this.bytes = 0
    return s
  }
}

export class JsonMaskingTransform extends Transform {
  /** Values masked so far. */
  masked = 0
  /** Items (and watch events) left out by `drop`. */
  dropped = 0
  /** Objects `keep` sent unmasked, and objects `notice` saw masked. */
  kept = 0
  noticed = 0
  readonly #shape: JsonShape
  readonly #rules: ObjectMaskingRules
  readonly #hint: TypeHint | undefined
  readonly #limit: number
  readonly #drop: ((object: unknown) => boolean) | undefined
  readonly #maskValues: boolean
  readonly #keep: ((object: unknown) => boolean) | undefined
  readonly #notice: ((object: unknown) => boolean) | undefined

  #at: At = At.Start
  /** Nesting inside the current value or element (0: at its own level). */
  #depth = 0
  #inString = false
  #escape = false
  /** Scalars (numbers, literals) end at a delimiter rather than a closing byte. */
  #scalar = false

  /** Members outside the items array: raw `"key":value` texts. */
  #members: string[] = []
  #membersBytes = 0
  #key = new Piece()
  #keyText = ''
  #value = new Piece()
  #item = new Piece()
  #itemsSeen = false
  #items = 0
  #itemType: TypeHint | undefined

  constructor(opts: {
    shape: JsonShape
    rules: ObjectMaskingRules
    /** The type the request asked for: objects that do not name theirs get it. */
    typeHint?: TypeHint
    maxObjectBytes: number
    /** Leaves out list items, Table rows and watch events whose object this returns true for. */
    drop?: (object: unknown) => boolean
    /** false: only `drop` applies, values go out as they are (masking is off for the caller). */
    mask?: boolean
    /** Objects (items, watch event objects, the object) this returns true for go out unmasked. */
    keep?: (object: unknown) => boolean
    /** Counts masked objects this returns true for (`noticed`), for a Warning. */
    notice?: (object: unknown) => boolean
  }) {
    super()
    this.#shape = opts.shape
    this.#rules = opts.rules
    this.#hint = opts.typeHint
    this.#limit = opts.maxObjectBytes
    this.#drop = opts.drop
    this.#maskValues = opts.mask ?? true
    this.#keep = opts.keep
    this.#notice = opts.notice
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (this.#shape === 'list') this.#list(chunk)
      else if (this.#shape === 'watch') this.#watch(chunk)
      else this.#value.add(chunk, this.#limit)
      cb()
    } catch (e) {
      cb(e instanceof JsonMaskingError ? e : new JsonMaskingError((e as Error).message))
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#shape === 'object') this.#pushMasked(this.#value.take(), this.#hint, '')
      else if (this.#shape === 'watch') {
        if (this.#at !== At.Start || this.#value.bytes)
          throw new JsonMaskingError('the watch stream ended inside an event')
      } else this.#finishList()
      cb()
    } catch (e) {
      cb(e instanceof JsonMaskingError ? e : new JsonMaskingError((e as Error).message))
    }
  }

  #decode(text: string): unknown {
    try {
      return JSON.parse(text)
    } catch (e) {
      throw new JsonMaskingError(
        `the API server sent JSON Gatehouse cannot decode: ${(e as Error).message}`,
      )
    }
  }

  #mask(text: string, hint: TypeHint | undefined, decoded?: unknown): unknown {
    const value = decoded === undefined ? this.#decode(text) : decoded
    if (!this.#maskValues) return value
    if (this.#keep || this.#notice) {
      const o = this.#shape === 'watch' ? (value as { object?: unknown } | null)?.object : value
      if (this.#keep?.(o)) {
        this.kept++
        return value
      }
      if (this.#notice?.(o)) this.noticed++
    }
    const r = maskKubernetesJson(value, this.#rules, hint)
    this.masked += r.masked
    return r.value
  }

  #pushMasked(text: string, hint: TypeHint | undefined, suffix: string): void {
    this.push(JSON.stringify(this.#mask(text, hint)) + suffix)
  }

  /** Tracks strings and nesting for one byte inside a value; true when the value just ended. */
  #step(b: number): boolean {
    if (this.#inString) {
      if (this.#escape) this.#escape = false
      else if (b === BACKSLASH) this.#escape = true
      else if (b === QUOTE) {
        this.#inString = false
        return this.#depth === 0
      }
      return false
    }
    if (b === QUOTE) this.#inString = true
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.#depth++
    else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      this.#depth--
      if (this.#depth < 0) throw new JsonMaskingError('unbalanced JSON from the API server')
      return this.#depth === 0
    }
    return false
  }

  #startValue(b: number): void {
    this.#depth = 0
    this.#inString = false
    this.#escape = false
    this.#scalar = !(b === QUOTE || b === OPEN_BRACE || b === OPEN_BRACKET)
  }

  // ---- watch: one value after another ----

  #watch(chunk: Buffer): void {
    let start = this.#at === At.Value ? 0 : -1
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      if (this.#at === At.Start) {
        if (isSpace(b)) continue
        if (b !== OPEN_BRACE) throw new JsonMaskingError('a watch event is not a JSON object')
        this.#startValue(b)
        this.#at = At.Value
        start = i
      }
      if (this.#step(b)) {
        this.#value.add(chunk.subarray(start, i + 1), this.#limit)
        const text = this.#value.take()
        const event = this.#drop ? this.#decode(text) : undefined
        if (event === undefined || this.#keepEvent(event))
          this.push(JSON.stringify(this.#mask(text, this.#hint, event)) + '\n')
        this.#at = At.Start
        start = -1
      }
    }
    if (this.#at === At.Value) this.#value.add(chunk.subarray(start), this.#limit)
  }

  /**
   * Whether a watch event goes out under `drop`; a Table event (`kubectl get -w`) loses the rows
   * whose object is dropped, and goes only while rows remain. Bookmarks and errors always go.
   */
  #keepEvent(event: unknown): boolean {
    const e = event as { type?: unknown; object?: unknown } | null
    if (!e || e.type === 'BOOKMARK' || e.type === 'ERROR') return true
    const o = e.object as { kind?: unknown; rows?: unknown } | null | undefined
    if (o?.kind === 'Table' && Array.isArray(o.rows)) {
      const rows = o.rows as { object?: unknown }[]
      const kept = rows.filter((r) => !this.#drop!(r?.object ?? r))
      this.dropped += rows.length - kept.length
      o.rows = kept
      return kept.length > 0 || rows.length === 0
    }
    if (!this.#drop!(o)) return true
    this.dropped++
    return false
  }

  // ---- list: members around an items array streamed element by element ----

  #list(chunk: Buffer): void {
    /** Start of the piece being collected in this chunk (key, value or item). */
    let from = 0
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      switch (this.#at) {
        case At.Start:
          if (isSpace(b)) continue
          if (b !== OPEN_BRACE) throw new JsonMaskingError('the response is not a JSON object')
          this.#at = At.Key
          continue
        case At.Key:
          if (isSpace(b)) continue
          if (b === CLOSE_BRACE && this.#members.length === 0 && !this.#itemsSeen) {
            this.#at = At.End
            continue
          }
          if (b !== QUOTE) throw new JsonMaskingError('expected a member name in the response')
          this.#startValue(b)
          this.#inString = true
          this.#at = At.InKey
          from = i
          continue
        case At.InKey:
          if (this.#step(b)) {
            this.#key.add(chunk.subarray(from, i + 1), 4096)
            this.#keyText = this.#key.take()
            this.#at = At.Colon
          }
          continue
        case At.Colon:
          if (isSpace(b)) continue
          if (b !== COLON) throw new JsonMaskingError('expected : after a member name')
          this.#at = At.ValueStart
          continue
        case At.ValueStart: {
          if (isSpace(b)) continue
          const name = JSON.parse(this.#keyText) as string
          if (b === OPEN_BRACKET && !this.#itemsSeen && (name === 'items' || name === 'rows')) {
            this.#openItems()
            this.#at = At.Items
            continue
          }
          this.#startValue(b)
          this.#at = At.Value
          from = i
          if (this.#scalar) continue
          if (this.#step(b)) this.#endMember(chunk.subarray(from, i + 1))
          continue
        }
        case At.Value:
          if (this.#scalar) {
            if (isSpace(b) || b === COMMA || b === CLOSE_BRACE) {
              this.#endMember(chunk.subarray(from, i))
              i-- // the delimiter is read again after the value
            }
            continue
          }
          if (this.#step(b)) this.#endMember(chunk.subarray(from, i + 1))
          continue
        case At.AfterValue:
          if (isSpace(b)) continue
          if (b === COMMA) this.#at = At.Key
          else if (b === CLOSE_BRACE) this.#at = At.End
          else throw new JsonMaskingError('expected , or } after a member')
          continue
        case At.Items:
          if (isSpace(b)) continue
          if (b === CLOSE_BRACKET) {
            this.#at = At.AfterValue
            continue
          }
          this.#startValue(b)
          this.#at = At.Item
          from = i
          if (this.#scalar) continue
          if (this.#step(b)) this.#endItem(chunk.subarray(from, i + 1))
          continue
        case At.Item:
          if (this.#scalar) {
            if (isSpace(b) || b === COMMA || b === CLOSE_BRACKET) {
              this.#endItem(chunk.subarray(from, i))
              i--
            }
            continue
          }
          if (this.#step(b)) this.#endItem(chunk.subarray(from, i + 1))
          continue
        case At.AfterItem:
          if (isSpace(b)) continue
          if (b === COMMA) this.#at = At.Items
          else if (b === CLOSE_BRACKET) this.#at = At.AfterValue
          else throw new JsonMaskingError('expected , or ] between items')
          continue
        case At.End:
          if (!isSpace(b)) throw new JsonMaskingError('bytes after the end of the response')
          continue
      }
    }
    if (this.#at === At.InKey) this.#key.add(chunk.subarray(from), 4096)
    else if (this.#at === At.Value) this.#value.add(chunk.subarray(from), this.#limit)
    else if (this.#at === At.Item) this.#item.add(chunk.subarray(from), this.#limit)
  }

  #endMember(last: Buffer): void {
    this.#value.add(last, this.#limit)
    const text = `${this.#keyText}:${this.#value.take()}`
    this.#membersBytes += text.length
    if (this.#membersBytes > this.#limit)
      throw new JsonMaskingError(`an object of more than ${this.#limit} bytes cannot be masked`)
    this.#members.push(text)
    this.#at = At.AfterValue
  }

  /** The items array starts: what came before it goes out now, masked. */
  #openItems(): void {
    this.#itemsSeen = true
    const head = this.#mask(`{${this.#members.join(',')}}`, this.#hint) as Record<string, unknown>
    this.#itemType = itemTypeOf(head) ?? this.#hint
    const inner = JSON.stringify(head).slice(1, -1)
    this.push(`{${inner}${inner ? ',' : ''}${JSON.stringify(JSON.parse(this.#keyText))}:[`)
    this.#members = []
    this.#membersBytes = 0
  }

  #endItem(last: Buffer): void {
    this.#item.add(last, this.#limit)
    const text = this.#item.take()
    this.#at = At.AfterItem
    const item = this.#drop ? this.#decode(text) : undefined
    // Table rows carry their object (metadata at least) under `object`
    const object = (item as { object?: unknown } | undefined)?.object ?? item
    if (this.#drop?.(object)) {
      this.dropped++
      return
    }
    const masked = JSON.stringify(this.#mask(text, this.#itemType, item))
    this.push(this.#items++ === 0 ? masked : `,${masked}`)
  }

  #finishList(): void {
    if (this.#at !== At.End) throw new JsonMaskingError('the response ended before its end')
    const rest = `{${this.#members.join(',')}}`
    if (!this.#itemsSeen) {
      // no items array (an object, a Status): masked whole
      this.#pushMasked(rest, this.#hint, '')
      return
    }
    const inner = JSON.stringify(this.#mask(rest, this.#hint)).slice(1, -1)
    this.push(`]${inner ? ',' : ''}${inner}}`)
  }
}
