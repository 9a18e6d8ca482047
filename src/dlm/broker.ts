/**
 * The lock broker behind `lvmfs lockd`: one LockManager served on a root-only Unix socket.
 *
 * Invariants:
 *  - one connection = one client of the manager; the socket closing is the client's death
 *    (`clientGone`), whatever the reason;
 *  - replies on a connection are written in request order; events may interleave with them;
 *  - after a restart under live clients (sessions file not empty) the manager is in grace until
 *    every listed session has said hello (re-asserting its locks) or `graceMs` has passed.
 */
import { mkdirSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import { AssertionError } from '../util/index.js'
import {
  acquireBrokerLock, readSessions, releaseBrokerLock, writeSessions,
} from './broker-files.js'
import { LockManager } from './lock-manager.js'
import {
  FrameDecoder, decodeValueBlock, encodeFrame, wireGrant, type ReplyMessage, type WireError,
} from './protocol.js'
import type { ClientId, DlmEvent } from './types.js'
import { dispatch, type Args } from './broker-ops.js'

export const DEFAULT_SOCKET_PATH = '/run/lvmfs/lockd.sock'

export function socketPathFromEnv(): string {
  return process.env['LVMFS_LOCKD_SOCKET'] ?? DEFAULT_SOCKET_PATH
}

export interface BrokerOptions {
  readonly socketPath: string
  /** How long a restarted broker waits for known sessions to re-assert (default 5 s). */
  readonly graceMs?: number
  /** Logs one line; the CLI passes its logger. */
  readonly log?: (line: string) => void
  /** Create the socket's directory when missing (default true). */
  readonly createDirectory?: boolean
  /** Called once nobody has been connected for this long and no lock state is left (0 = never). */
  readonly idleExitMs?: number
  readonly onIdle?: () => void
}

export interface Connection {
  readonly socket: Socket
  clientId: ClientId | null
  session: string | null
  out: Buffer[]
}

export class Broker {
  readonly manager: LockManager
  private readonly connections = new Map<ClientId, Connection>()
  private readonly dirty = new Set<Connection>()
  private readonly sessions = new Set<string>()
  private readonly expected: Set<string>
  private server: Server | null = null
  private graceTimer: NodeJS.Timeout | null = null
  private idleTimer: NodeJS.Timeout | null = null

  constructor(readonly options: BrokerOptions) {
    this.manager = new LockManager({ emit: (clientId, event) => this.deliver(clientId, event) })
    this.expected = new Set(readSessions(options.socketPath))
  }

  /** Listens; resolves false when another broker owns the socket path. */
  async start(): Promise<boolean> {
    const path = this.options.socketPath
    if (this.options.createDirectory !== false) mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
    if (!acquireBrokerLock(path)) return false
    try {
      unlinkSync(path)
    } catch {
      // no stale socket
    }
    if (this.expected.size > 0) this.beginGrace()
    const server = createServer((socket) => this.accept(socket))
    this.server = server
    const umask = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(path, () => resolve())
      })
    } finally {
      process.umask(umask)
    }
    this.log(`listening on ${path} (pid ${process.pid}${this.manager.grace ? ', grace period' : ''})`)
    this.armIdle()
    return true
  }

  async stop(): Promise<void> {
    if (this.graceTimer !== null) clearTimeout(this.graceTimer)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    for (const connection of this.connections.values()) connection.socket.destroy()
    const server = this.server
    this.server = null
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()))
    releaseBrokerLock(this.options.socketPath)
  }

  get connectionCount(): number {
    return this.connections.size
  }

  private armIdle(): void {
    const idleMs = this.options.idleExitMs ?? 0
    if (idleMs <= 0 || this.connections.size > 0) return
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null
      // Only an empty broker may go: otherwise invalid value blocks and orphans would be forgotten.
      if (this.connections.size === 0 && this.manager.resources.size === 0) this.options.onIdle?.()
      else this.armIdle()
    }, idleMs)
  }

  private beginGrace(): void {
    this.manager.grace = true
    this.graceTimer = setTimeout(() => this.endGrace('grace period over'), this.options.graceMs ?? 5000)
    this.graceTimer.unref()
  }

  private endGrace(why: string): void {
    if (!this.manager.grace) return
    this.manager.grace = false
    if (this.graceTimer !== null) clearTimeout(this.graceTimer)
    this.expected.clear()
    this.log(`grace period ended: ${why}`)
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    this.idleTimer = null
    const connection: Connection = { socket, clientId: null, session: null, out: [] }
    const decoder = new FrameDecoder()
    socket.on('data', (chunk: Buffer) => {
      let messages: unknown[]
      try {
        messages = decoder.push(chunk)
      } catch (error) {
        this.log(`dropping connection: ${(error as Error).message}`)
        socket.destroy()
        return
      }
      for (const message of messages) this.handle(connection, message)
      this.flush()
    })
    socket.on('close', () => this.closed(connection))
    socket.on('error', () => socket.destroy())
  }

  private closed(connection: Connection): void {
    if (connection.clientId === null) {
      this.armIdle()
      return
    }
    this.connections.delete(connection.clientId)
    this.manager.clientGone(connection.clientId)
    if (connection.session !== null) {
      this.sessions.delete(connection.session)
      this.persistSessions()
    }
    this.flush()
    this.armIdle()
  }

  private handle(connection: Connection, message: unknown): void {
    const request = message as { id?: unknown, op?: unknown, args?: unknown }
    const id = typeof request?.id === 'number' ? request.id : -1
    let reply: ReplyMessage
    try {
      if (id < 0 || typeof request.op !== 'string') {
        throw new LvmfsError('DLM_EFAULT', 'request lacks a numeric id or an op name')
      }
      if (typeof request.args !== 'object' || request.args === null) {
        throw new LvmfsError('DLM_EFAULT', `request "${request.op}" lacks its argument object`)
      }
      const result = request.op === 'hello'
        ? this.hello(connection, request.args as Args)
        : dispatch(this.manager, connection, request.op, request.args as Args)
      reply = { id, ok: true, result }
    } catch (error) {
      // An assertion means the manager's state is not understood: stop (clients re-assert).
      if (error instanceof AssertionError) throw error
      reply = { id, ok: false, error: toWireError(error) }
    }
    this.queue(connection, reply)
  }

  private hello(connection: Connection, args: Args): unknown {
    if (connection.clientId !== null) throw new LvmfsError('DLM_ATTACHED', 'hello was already said')
    const pid = typeof args['pid'] === 'number' ? args['pid'] : 0
    const label = typeof args['label'] === 'string' ? args['label'] : ''
    const clientId = this.manager.addClient({ pid, label })
    connection.clientId = clientId
    this.connections.set(clientId, connection)
    const session = typeof args['session'] === 'string' ? args['session'] : null
    connection.session = session
    const restored = restoreClient(this.manager, clientId, args)
    if (session !== null) {
      this.sessions.add(session)
      this.persistSessions()
      if (this.expected.delete(session) && this.expected.size === 0) this.endGrace('all sessions re-asserted')
    }
    return { clientId, grace: this.manager.grace, ...restored }
  }

  private persistSessions(): void {
    try {
      writeSessions(this.options.socketPath, this.sessions)
    } catch (error) {
      this.log(`cannot write sessions file: ${(error as Error).message}`)
    }
  }

  private deliver(clientId: ClientId, event: DlmEvent): void {
    const connection = this.connections.get(clientId)
    if (connection === undefined) return
    this.queue(connection, { event: wireEvent(event) })
  }

  private queue(connection: Connection, message: ReplyMessage): void {
    connection.out.push(encodeFrame(message))
    this.dirty.add(connection)
  }

  private flush(): void {
    for (const connection of this.dirty) {
      if (!connection.socket.destroyed) {
        connection.socket.write(connection.out.length === 1 ? connection.out[0]! : Buffer.concat(connection.out))
      }
      connection.out = []
    }
    this.dirty.clear()
  }

  private log(line: string): void {
    this.options.log?.(line)
  }
}

/** Re-joins namespaces and groups, re-attaches domains and re-asserts locks listed in hello. */
function restoreClient(manager: LockManager, clientId: ClientId, args: Args): Record<string, unknown> {
  const list = (value: unknown): Args[] => (Array.isArray(value) ? value as Args[] : [])
  for (const namespace of list(args['namespaces'])) manager.nsJoin(clientId, namespace as unknown as string)
  for (const group of list(args['groups'])) manager.groupJoin(clientId, group as unknown as string)
  const rds: Record<string, unknown> = {}
  const rdIds = new Map<unknown, number>()
  for (const rd of list(args['rds'])) {
    try {
      const rdId = manager.rdAttach(clientId, {
        namespace: String(rd['namespace']), name: String(rd['name']),
        scope: rd['scope'] === 'group' ? 'group' : 'process',
        ...(typeof rd['group'] === 'string' ? { group: rd['group'] } : {}),
      })
      rdIds.set(rd['key'], rdId)
      rds[String(rd['key'])] = { rdId }
    } catch (error) {
      rds[String(rd['key'])] = { error: toWireError(error) }
    }
  }
  const locks: Record<string, unknown> = {}
  for (const lock of list(args['locks'])) {
    try {
      const rdId = lock['rdKey'] === undefined ? undefined : rdIds.get(lock['rdKey'])
      const valueBlock = decodeValueBlock(lock['valueBlock'])
      const grant = manager.reassert(clientId, {
        namespace: String(lock['namespace']), resource: String(lock['resource']),
        mode: lock['mode'] as 'NL', persistent: lock['persistent'] === true,
        ...(rdId === undefined ? {} : { rdId }),
        ...(valueBlock === undefined ? {} : { valueBlock }),
        ...(typeof lock['valueBlockSeq'] === 'number' ? { valueBlockSeq: lock['valueBlockSeq'] } : {}),
        ...(typeof lock['valueBlockValid'] === 'boolean' ? { valueBlockValid: lock['valueBlockValid'] } : {}),
      })
      locks[String(lock['key'])] = { grant: wireGrant(grant) }
    } catch (error) {
      locks[String(lock['key'])] = { error: toWireError(error) }
    }
  }
  return { rds, locks }
}

function wireEvent(event: DlmEvent): unknown {
  return event.type === 'granted' ? { ...wireGrant(event), type: 'granted' } : event
}

export function toWireError(error: unknown): WireError {
  if (error instanceof LvmfsError) {
    return { code: error.code, message: error.message,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      ...(error.hint === undefined ? {} : { hint: error.hint }) }
  }
  // An assertion or bug inside the manager: report it, the connection stays usable.
  return { code: 'ENGINE_PROTOCOL', message: `internal error: ${(error as Error)?.message ?? String(error)}` }
}
