/**
 * Serves the control socket of a mounted VG. Handlers are registered by method name; each gets
 * the params, an `emit(event, data)` for progress and output frames, and a signal that aborts
 * when the client goes away or the server closes (a streaming method ends on it).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createServer, type Server, type Socket } from 'node:net'
import { LvmfsError } from '../errors/index.js'
import { onJsonLines, type RequestFrame } from './control-protocol.js'

export type ControlHandler = (params: Record<string, unknown>,
  emit: (event: string, data: unknown) => void, signal: AbortSignal) => Promise<unknown>

export class ControlServer {
  private readonly server: Server
  private readonly handlers = new Map<string, ControlHandler>()
  private readonly connections = new Map<Socket, AbortController>()
  private readonly running = new Set<Promise<void>>()

  constructor(private readonly path: string) {
    this.server = createServer((socket) => {
      const gone = new AbortController()
      this.connections.set(socket, gone)
      socket.on('error', () => socket.destroy())
      socket.on('close', () => {
        this.connections.delete(socket)
        gone.abort()
      })
      onJsonLines(socket, (value) => {
        const handled = this.handle(value as RequestFrame, gone.signal, (frame) => {
          if (!socket.destroyed) socket.write(JSON.stringify(frame) + '\n')
        })
        this.running.add(handled)
        void handled.finally(() => this.running.delete(handled))
      })
    })
  }

  on(method: string, handler: ControlHandler): this {
    this.handlers.set(method, handler)
    return this
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 })
    rmSync(this.path, { force: true })
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.path, () => resolve())
    })
    chmodSync(this.path, 0o600)
  }

  /** Ends streaming requests, lets every running request send its final frame, then closes. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const gone of this.connections.values()) gone.abort()
    await Promise.all([...this.running])
    for (const socket of this.connections.keys()) socket.end()
    await closed
    rmSync(this.path, { force: true })
  }

  private async handle(request: RequestFrame, signal: AbortSignal, send: (frame: unknown) => void): Promise<void> {
    const handler = this.handlers.get(request.method)
    try {
      if (!handler) throw new LvmfsError('ENGINE_PROTOCOL', `unknown control method "${request.method}"`)
      const result = await handler(request.params ?? {}, (event, data) => send({ id: request.id, event, data }), signal)
      send({ id: request.id, result: result ?? null })
    } catch (error) {
      const typed = error instanceof LvmfsError ? error
        : new LvmfsError('ENGINE_IO', (error as Error).message ?? String(error), { cause: error })
      send({ id: request.id, error: typed.toJSON() })
    }
  }
}
