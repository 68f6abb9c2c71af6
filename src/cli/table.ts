// Plain-text tables for CLI output, kubectl-style: columns padded to their widest cell, two
// spaces apart, the last column unpadded. Every cell is made safe for the terminal first
// (terminal.ts): a name or URL can hold escape sequences, line breaks or bidi overrides.
import { forTerminal } from './terminal.ts'

export function formatColumns(header: readonly string[], rows: readonly string[][]): string {
  const safe = rows.map((r) => r.map(forTerminal))
  const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => r[i]!.length)))
  return (
    [header, ...safe]
      .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
      .join('\n') + '\n'
  )
}

/** A cell cut to `max` characters, visibly (`…`), never silently. */
export function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}
