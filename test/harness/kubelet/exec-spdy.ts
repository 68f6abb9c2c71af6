// placeholder until src/spdy lands
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ExecOptions } from './remote-command.ts'
export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1'
}
export function serveSpdyCommand(
  _r: IncomingMessage,
  socket: Duplex,
  _h: Buffer,
  _o: ExecOptions,
  _a: string[],
  _e: Record<string, string>,
): void {
  socket.destroy()
}
