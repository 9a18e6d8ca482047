/**
 * Serves the control socket of a mounted VG. Handlers are registered by method name; each gets
 * the params and an `emit(event, data)` for progress and output frames.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createServer, type Server } from 'node:net'
import { LvmfsError } from '../errors/index.js'
import { onJsonLines, type RequestFrame } from './control-protocol.js'

export type ControlHandler = (params: Record<string, unknown>,
  emit: (event: string, data: unknown) => void) => Promise<unknown>

export class ControlServer {
  private readonly server: Server
  private readonly handlers = new Map<string, ControlHandler>()

  constructor(private readonly path: string) {
    this.server = createServer((socket) => {
      socket.on('error', () => socket.destroy())
      onJsonLines(socket, (value) => { void this.handle(value as RequestFrame, (frame) => {
        if (!socket.destroyed) socket.write(JSON.stringify(frame) + '\n')
      }) })
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

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    rmSync(this.path, { force: true })
  }

  private async handle(request: RequestFrame, send: (frame: unknown) => void): Promise<void> {
    const handler = this.handlers.get(request.method)
    try {
      if (!handler) throw new LvmfsError('ENGINE_PROTOCOL', `unknown control method "${request.method}"`)
      const result = await handler(request.params ?? {}, (event, data) => send({ id: request.id, event, data }))
      send({ id: request.id, result: result ?? null })
    } catch (error) {
      const typed = error instanceof LvmfsError ? error
        : new LvmfsError('ENGINE_IO', (error as Error).message ?? String(error), { cause: error })
      send({ id: request.id, error: typed.toJSON() })
    }
  }
}
