/**
 * The control socket protocol of a mounted VG (documented in docs/control-protocol.md):
 * newline-delimited JSON over a root-only Unix socket. A request is {id, method, params}; the
 * daemon answers with zero or more {id, event, data} frames and then one {id, result} or
 * {id, error} frame (error = LvmfsError.toJSON()).
 */
import { connect, type Socket } from 'node:net'
import { LvmfsError, type ErrorCode } from '../errors/index.js'

export interface RequestFrame {
  readonly id: number
  readonly method: string
  readonly params: Record<string, unknown>
}

export type ResponseFrame =
  | { readonly id: number; readonly event: string; readonly data: unknown }
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: { code: ErrorCode; message: string; detail?: string; hint?: string;
      context?: Record<string, unknown> } }

/** Splits a byte stream into JSON lines. */
export function onJsonLines(socket: Socket, handler: (value: unknown) => void): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffered += chunk
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.trim() === '') continue
      try {
        handler(JSON.parse(line))
      } catch {
        socket.destroy(new LvmfsError('ENGINE_PROTOCOL', 'malformed JSON line on the control socket'))
      }
    }
  })
}

/** One request over a fresh connection; `onEvent` sees the event frames as they come. Aborting
 * `signal` closes the connection and resolves undefined (a streaming request ends so). */
export async function callControl(socketPath: string, method: string, params: Record<string, unknown> = {},
  onEvent?: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<unknown> {
  const socket = connect(socketPath)
  return await new Promise((resolve, reject) => {
    let settled = false
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      socket.end()
      fn()
    }
    socket.once('error', (error) => finish(() => reject(new LvmfsError('ENGINE_NOT_MOUNTED',
      `no lvmfs daemon answers on ${socketPath}`, { cause: error }))))
    socket.once('close', () => finish(() => reject(new LvmfsError('ENGINE_PROTOCOL',
      `the daemon closed ${socketPath} before answering "${method}"`))))
    const onAbort = (): void => finish(() => resolve(undefined))
    if (signal?.aborted === true) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.once('close', () => signal?.removeEventListener('abort', onAbort))
    onJsonLines(socket, (value) => {
      const frame = value as ResponseFrame
      if ('event' in frame) onEvent?.(frame.event, frame.data)
      else if ('result' in frame) finish(() => resolve(frame.result))
      else if ('error' in frame) finish(() => reject(LvmfsError.fromJSON(frame.error)))
    })
    socket.write(JSON.stringify({ id: 1, method, params } satisfies RequestFrame) + '\n')
  })
}
