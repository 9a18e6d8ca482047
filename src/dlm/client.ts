/**
 * DlmClient: what an lvmfs process uses to lock. It talks to the `lvmfs lockd` broker over its
 * Unix socket, starting the broker on demand, and keeps what it holds so that it can re-assert it
 * when the broker restarts.
 *
 * Invariants:
 *  - a DlmLock exists only for a granted lock; waiting requests are promises, not objects;
 *  - replies are matched to requests by id; a queued request is registered for its grant event
 *    while its reply is handled (synchronously), so an event that follows the reply in the same
 *    read cannot be missed;
 *  - when the connection is lost every request in flight fails with DLM_INTR; granted locks and
 *    attached domains are re-asserted on the next connection, locks refused there are reported
 *    through `onLost` and dropped.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { LvmfsError, type ErrorCode } from '../errors/index.js'
import { socketPathFromEnv } from './broker.js'
import type { LockMode } from './modes.js'
import { FrameDecoder, decodeValueBlock, encodeFrame, encodeValueBlock, type WireError } from './protocol.js'
import type { ManagerSnapshot } from './snapshot.js'

export interface DlmClientOptions {
  /** Default: $LVMFS_LOCKD_SOCKET or /run/lvmfs/lockd.sock. */
  readonly socketPath?: string
  /** Namespace joined on connect and used by every call (default "lvmfs"). */
  readonly namespace?: string
  readonly label?: string
  /** Start the broker when nobody answers on the socket (default true). */
  readonly startBroker?: boolean
  /** Command that runs the broker (default: node bin/lvmfs.js lockd --daemon). */
  readonly brokerCommand?: { readonly command: string, readonly args: readonly string[] }
  readonly connectTimeoutMs?: number
  /** Reconnect and re-assert after the broker restarts (default true). */
  readonly reconnect?: boolean
  /** How long lock() keeps retrying while the broker is in its grace period (default 10 s; 0 = never). */
  readonly graceRetryMs?: number
  /** Session id kept across reconnects (default: random); the broker's grace period waits for it. */
  readonly session?: string
}

export interface LockOptions {
  readonly noQueue?: boolean
  /** A recovery domain handle from attach(); puts the resource in that domain. */
  readonly rd?: number
  readonly persistent?: boolean
  readonly signal?: AbortSignal
  /** Cancel and fail with DLM_TIMEOUT when not granted in time. */
  readonly timeoutMs?: number
}

export interface ConvertLockOptions {
  readonly noQueue?: boolean
  /** Written to the resource on a down-conversion from PW or EX. */
  readonly valueBlock?: Uint8Array
  readonly signal?: AbortSignal
  readonly timeoutMs?: number
}

export interface WireGrant {
  lockId: number
  mode: LockMode
  status: string
  valueBlock?: string
  valueBlockValid: boolean
  valueBlockSeq: number
}

interface Waiter {
  resolve(grant: WireGrant): void
  reject(error: LvmfsError): void
}

interface Pending {
  resolve(result: unknown): void
  reject(error: LvmfsError): void
  onReply: ((result: unknown) => void) | undefined
}

interface DomainRecord {
  brokerRdId: number
  readonly name: string
  readonly scope: 'process' | 'group'
  readonly group: string | undefined
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** What a DlmLock calls back into: the broker client or the etcd client. */
export interface LockBackend {
  convertLock(lock: DlmLock, mode: LockMode, options: ConvertLockOptions): Promise<DlmLock>
  unlockLock(lock: DlmLock, options: { valueBlock?: Uint8Array }): Promise<void>
}

/** A granted lock. Fields follow the latest grant or conversion. */
export class DlmLock {
  mode: LockMode
  status: string
  /** The resource's value block as of the latest grant (or as written by this lock). */
  valueBlock: Uint8Array
  valueBlockValid: boolean
  valueBlockSeq: number
  brokerLockId: number
  released = false
  private readonly blockingHandlers: Array<(mode: LockMode) => void> = []
  private readonly lostHandlers: Array<(error: LvmfsError) => void> = []

  constructor(
    private readonly client: LockBackend,
    readonly resource: string,
    readonly rd: number | undefined,
    readonly persistent: boolean,
    grant: WireGrant,
  ) {
    this.brokerLockId = grant.lockId
    this.mode = grant.mode
    this.status = grant.status
    this.valueBlock = decodeValueBlock(grant.valueBlock) ?? new Uint8Array(0)
    this.valueBlockValid = grant.valueBlockValid
    this.valueBlockSeq = grant.valueBlockSeq
  }

  /** Called when another process waits for a mode this lock blocks (a blocking AST). */
  onBlocking(handler: (mode: LockMode) => void): void {
    this.blockingHandlers.push(handler)
  }

  /** Called when the lock could not be re-asserted after a broker restart. */
  onLost(handler: (error: LvmfsError) => void): void {
    this.lostHandlers.push(handler)
  }

  convert(mode: LockMode, options: ConvertLockOptions = {}): Promise<DlmLock> {
    return this.client.convertLock(this, mode, options)
  }

  unlock(options: { valueBlock?: Uint8Array } = {}): Promise<void> {
    return this.client.unlockLock(this, options)
  }

  applyGrant(grant: WireGrant, written: Uint8Array | undefined): void {
    this.mode = grant.mode
    this.status = grant.status
    this.valueBlock = written !== undefined ? Uint8Array.from(written)
      : (decodeValueBlock(grant.valueBlock) ?? this.valueBlock)
    this.valueBlockValid = grant.valueBlockValid
    this.valueBlockSeq = grant.valueBlockSeq
  }

  fireBlocking(mode: LockMode): void {
    for (const handler of this.blockingHandlers) handler(mode)
  }

  fireLost(error: LvmfsError): void {
    this.released = true
    for (const handler of this.lostHandlers) handler(error)
  }
}

export class DlmClient implements LockBackend {
  readonly namespace: string
  readonly socketPath: string
  readonly session: string
  private socket: Socket | null = null
  private closing = false
  private nextId = 1
  private nextRd = 1
  private readonly pending = new Map<number, Pending>()
  private readonly waiters = new Map<number, Waiter>()
  private readonly locks = new Map<number, DlmLock>()
  private readonly domains = new Map<number, DomainRecord>()
  private readonly recoveryHandlers: Array<(rd: number, domain: string) => void> = []
  private connecting: Promise<void> | null = null
  private reconnecting = false
  /** True when the broker said it was in its grace period at the last hello. */
  grace = false

  private constructor(private readonly options: DlmClientOptions) {
    this.namespace = options.namespace ?? 'lvmfs'
    this.socketPath = options.socketPath ?? socketPathFromEnv()
    this.session = options.session ?? randomUUID()
  }

  static async connect(options: DlmClientOptions = {}): Promise<DlmClient> {
    const client = new DlmClient(options)
    await client.establish()
    return client
  }

  /** Called when a recovery domain this process attached needs recovery (collect + validate). */
  onRecoveryNeeded(handler: (rd: number, domain: string) => void): void {
    this.recoveryHandlers.push(handler)
  }

  async attach(name: string, options: { scope?: 'process' | 'group', group?: string } = {}): Promise<number> {
    const scope = options.scope ?? 'process'
    const brokerRdId = await this.call('rdAttach', {
      namespace: this.namespace, name, scope, ...(options.group === undefined ? {} : { group: options.group }),
    }) as number
    const rd = this.nextRd++
    this.domains.set(rd, { brokerRdId, name, scope, group: options.group })
    return rd
  }

  async joinGroup(group: string): Promise<void> {
    await this.call('groupJoin', { group })
  }

  async collect(rd: number, flags = 0): Promise<{ handle: number, resources: string[] }> {
    return await this.call('rdCollect', { rdId: this.brokerRd(rd), flags }) as { handle: number, resources: string[] }
  }

  async validate(rd: number, handle: number, flags = 0): Promise<{ status: string, validated: string[] }> {
    return await this.call('rdValidate', { rdId: this.brokerRd(rd), handle, flags }) as
      { status: string, validated: string[] }
  }

  async detach(rd: number, options: { invalidate?: boolean } = {}): Promise<void> {
    await this.call('rdDetach', { rdId: this.brokerRd(rd), invalidate: options.invalidate === true })
    this.domains.delete(rd)
  }

  async purgeOrphans(resource: string): Promise<number> {
    return await this.call('purge', { namespace: this.namespace, resource }) as number
  }

  async describe(): Promise<ManagerSnapshot> {
    return await this.call('describe', {}) as ManagerSnapshot
  }

  /** Requests a lock; resolves when granted (DLM_NOTQUEUED at once with noQueue). */
  async lock(resource: string, mode: LockMode, options: LockOptions = {}): Promise<DlmLock> {
    const deadline = Date.now() + (this.options.graceRetryMs ?? 10_000)
    for (;;) {
      if (options.signal?.aborted === true) throw new LvmfsError('DLM_ABORT', `request on "${resource}" aborted`)
      try {
        return await this.lockOnce(resource, mode, options)
      } catch (error) {
        if (!(error instanceof LvmfsError) || error.code !== 'DLM_RETRY' || Date.now() >= deadline) throw error
        await sleep(50)
      }
    }
  }

  private async lockOnce(resource: string, mode: LockMode, options: LockOptions): Promise<DlmLock> {
    let waiting: Promise<WireGrant> | null = null
    const args = {
      namespace: this.namespace, resource, mode, noQueue: options.noQueue === true,
      persistent: options.persistent === true,
      ...(options.rd === undefined ? {} : { rdId: this.brokerRd(options.rd) }),
    }
    const result = await this.call('lock', args, (reply) => {
      const r = reply as { granted: boolean, lockId: number }
      if (!r.granted) waiting = this.waitFor(r.lockId)
    }) as WireGrant & { granted: boolean }
    const grant = result.granted ? result : await this.awaitGrant(waiting!, result.lockId, options)
    const lock = new DlmLock(this, resource, options.rd, options.persistent === true, grant)
    this.locks.set(lock.brokerLockId, lock)
    return lock
  }

  async convertLock(lock: DlmLock, mode: LockMode, options: ConvertLockOptions): Promise<DlmLock> {
    const deadline = Date.now() + (this.options.graceRetryMs ?? 10_000)
    for (;;) {
      try {
        return await this.convertOnce(lock, mode, options)
      } catch (error) {
        if (!(error instanceof LvmfsError) || error.code !== 'DLM_RETRY' || Date.now() >= deadline) throw error
        await sleep(50)
      }
    }
  }

  private async convertOnce(lock: DlmLock, mode: LockMode, options: ConvertLockOptions): Promise<DlmLock> {
    this.checkLive(lock)
    let waiting: Promise<WireGrant> | null = null
    const result = await this.call('convert', {
      lockId: lock.brokerLockId, mode, noQueue: options.noQueue === true,
      valueBlock: encodeValueBlock(options.valueBlock),
    }, (reply) => {
      if (!(reply as { granted: boolean }).granted) waiting = this.waitFor(lock.brokerLockId)
    }) as WireGrant & { granted: boolean }
    const grant = result.granted ? result : await this.awaitGrant(waiting!, lock.brokerLockId, options)
    lock.applyGrant(grant, options.valueBlock)
    return lock
  }

  async unlockLock(lock: DlmLock, options: { valueBlock?: Uint8Array }): Promise<void> {
    this.checkLive(lock)
    await this.call('unlock', { lockId: lock.brokerLockId, valueBlock: encodeValueBlock(options.valueBlock) })
    lock.released = true
    this.locks.delete(lock.brokerLockId)
  }

  /** Closes the connection: the broker releases every non-persistent lock of this process. */
  async close(): Promise<void> {
    this.closing = true
    await this.connecting?.catch(() => {})
    const socket = this.socket
    if (socket === null) return
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve())
      socket.end()
    })
  }

  // ---- internals -------------------------------------------------------------------------

  private checkLive(lock: DlmLock): void {
    if (lock.released) throw new LvmfsError('DLM_IVLOCKID', `lock on "${lock.resource}" was released`)
  }

  private brokerRd(rd: number): number {
    if (!Number.isSafeInteger(rd) || rd <= 0) {
      throw new LvmfsError('DLM_BADPARAM', `recovery domain handle out of range: ${String(rd)}`)
    }
    const domain = this.domains.get(rd)
    if (domain === undefined) throw new LvmfsError('DLM_IVRDID', `no recovery domain attached with handle ${rd}`)
    return domain.brokerRdId
  }

  private waitFor(lockId: number): Promise<WireGrant> {
    return new Promise<WireGrant>((resolve, reject) => this.waiters.set(lockId, { resolve, reject }))
  }

  private async awaitGrant(waiting: Promise<WireGrant>, lockId: number,
    options: { signal?: AbortSignal, timeoutMs?: number }): Promise<WireGrant> {
    let timedOut = false
    const cancel = (): void => {
      this.call('cancel', { lockId }).catch(() => {
        // DLM_CANCELGRANT: the grant won the race and is delivered normally
      })
    }
    const timer = options.timeoutMs === undefined ? null : setTimeout(() => {
      timedOut = true
      cancel()
    }, options.timeoutMs)
    options.signal?.addEventListener('abort', cancel, { once: true })
    try {
      return await waiting
    } catch (error) {
      if (timedOut) throw new LvmfsError('DLM_TIMEOUT', `not granted within ${options.timeoutMs} ms`, { cause: error })
      throw error
    } finally {
      if (timer !== null) clearTimeout(timer)
      options.signal?.removeEventListener('abort', cancel)
    }
  }

  private async call(op: string, args: Record<string, unknown>,
    onReply?: (result: unknown) => void): Promise<unknown> {
    if (this.socket === null) {
      if (this.closing) throw new LvmfsError('DLM_ENOSYS', 'the lock client is closed')
      await this.connecting
    }
    const socket = this.socket
    if (socket === null) throw new LvmfsError('DLM_ENOSYS', 'not connected to the lock broker')
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onReply })
      if (!socket.writableCorked) {
        socket.cork()
        process.nextTick(() => socket.uncork())
      }
      socket.write(encodeFrame({ id, op, args }))
    })
  }

  private onMessage(message: Record<string, unknown>): void {
    if ('event' in message) {
      this.onEvent(message['event'] as Record<string, unknown>)
      return
    }
    const pending = this.pending.get(message['id'] as number)
    if (pending === undefined) return
    this.pending.delete(message['id'] as number)
    if (message['ok'] === true) {
      pending.onReply?.(message['result'])
      pending.resolve(message['result'])
    } else {
      pending.reject(LvmfsError.fromJSON(message['error'] as WireError))
    }
  }

  private onEvent(event: Record<string, unknown>): void {
    const lockId = event['lockId'] as number
    if (event['type'] === 'granted') {
      const waiter = this.waiters.get(lockId)
      this.waiters.delete(lockId)
      waiter?.resolve(event as unknown as WireGrant)
    } else if (event['type'] === 'refused') {
      const waiter = this.waiters.get(lockId)
      this.waiters.delete(lockId)
      const code = event['code'] as ErrorCode
      waiter?.reject(new LvmfsError(code, code === 'DLM_CANCEL' ? 'conversion cancelled' : 'request cancelled'))
    } else if (event['type'] === 'blocking') {
      this.locks.get(lockId)?.fireBlocking(event['mode'] as LockMode)
    } else if (event['type'] === 'recovery-needed') {
      for (const [rd, domain] of this.domains) {
        if (domain.brokerRdId === event['rdId']) {
          for (const handler of this.recoveryHandlers) handler(rd, domain.name)
        }
      }
    }
  }

  private async establish(): Promise<void> {
    const socket = await this.openOrStart()
    if (this.closing) {
      socket.destroy() // closed while reconnecting
      return
    }
    const decoder = new FrameDecoder()
    socket.on('data', (chunk: Buffer) => {
      let messages: unknown[]
      try {
        messages = decoder.push(chunk)
      } catch {
        socket.destroy()
        return
      }
      for (const message of messages) this.onMessage(message as Record<string, unknown>)
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.lost(socket))
    this.socket = socket
    const reassert = this.reassertList()
    const hello = await this.call('hello', {
      pid: process.pid, label: this.options.label ?? '', session: this.session, ...reassert,
    }) as { grace: boolean, rds: Record<string, { rdId?: number }>, locks: Record<string, RestoredLock> }
    this.grace = hello.grace
    this.applyRestored(hello)
  }

  private reassertList(): Record<string, unknown> {
    const groups = [...new Set([...this.domains.values()].flatMap((d) => (d.group === undefined ? [] : [d.group])))]
    return {
      namespaces: [this.namespace],
      groups,
      rds: [...this.domains].map(([rd, d]) => ({ key: rd, namespace: this.namespace, name: d.name, scope: d.scope,
        ...(d.group === undefined ? {} : { group: d.group }) })),
      locks: [...this.locks.values()].map((lock) => ({
        key: lock.brokerLockId, namespace: this.namespace, resource: lock.resource, mode: lock.mode,
        persistent: lock.persistent, ...(lock.rd === undefined ? {} : { rdKey: lock.rd }),
        valueBlock: encodeValueBlock(lock.valueBlock), valueBlockSeq: lock.valueBlockSeq,
        valueBlockValid: lock.valueBlockValid,
      })),
    }
  }

  private applyRestored(hello: { rds: Record<string, { rdId?: number }>, locks: Record<string, RestoredLock> }): void {
    for (const [key, restored] of Object.entries(hello.rds)) {
      const domain = this.domains.get(Number(key))
      if (domain !== undefined && restored.rdId !== undefined) domain.brokerRdId = restored.rdId
    }
    const old = [...this.locks.values()]
    this.locks.clear()
    for (const lock of old) {
      const restored = hello.locks[String(lock.brokerLockId)]
      if (restored?.grant !== undefined) {
        lock.brokerLockId = restored.grant.lockId
        lock.applyGrant(restored.grant, undefined)
        this.locks.set(lock.brokerLockId, lock)
      } else {
        lock.fireLost(restored?.error !== undefined ? LvmfsError.fromJSON(restored.error)
          : new LvmfsError('DLM_NOTGRANTED', `lock on "${lock.resource}" was not re-asserted`))
      }
    }
  }

  private lost(socket: Socket): void {
    if (this.socket !== socket) return
    this.socket = null
    const intr = (): LvmfsError => new LvmfsError('DLM_INTR', 'connection to the lock broker lost')
    for (const pending of this.pending.values()) pending.reject(intr())
    this.pending.clear()
    for (const waiter of this.waiters.values()) waiter.reject(intr())
    this.waiters.clear()
    if (this.closing || this.options.reconnect === false || this.reconnecting) return
    this.reconnecting = true
    this.connecting = this.reconnect().finally(() => {
      this.reconnecting = false
    })
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        await this.establish()
        return
      } catch {
        await sleep(Math.min(50 * (attempt + 1), 500))
      }
    }
  }

  private async openOrStart(): Promise<Socket> {
    try {
      return await openSocket(this.socketPath)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EACCES' || code === 'EPERM') {
        throw new LvmfsError('DLM_NOACCESS', `permission denied on lock broker socket ${this.socketPath}`,
          { hint: 'The broker socket is root-only; run as root.' })
      }
      if (this.options.startBroker === false) {
        throw new LvmfsError('DLM_ENOSYS', `no lock broker answers on ${this.socketPath}`, { cause: error })
      }
    }
    this.startBroker()
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 5000)
    for (;;) {
      try {
        return await openSocket(this.socketPath)
      } catch (error) {
        if (Date.now() >= deadline) {
          throw new LvmfsError('DLM_ENOSYS', `lock broker did not start on ${this.socketPath}`, { cause: error })
        }
        await sleep(20)
      }
    }
  }

  private startBroker(): void {
    const bin = fileURLToPath(new URL('../../bin/lvmfs.js', import.meta.url))
    const command = this.options.brokerCommand ?? { command: process.execPath, args: [bin, 'lockd', '--daemon'] }
    const child = spawn(command.command, [...command.args], {
      detached: true, stdio: 'ignore', env: { ...process.env, LVMFS_LOCKD_SOCKET: this.socketPath },
    })
    child.on('error', () => {})
    child.unref()
  }
}

interface RestoredLock {
  grant?: WireGrant
  error?: WireError
}

/** Asks a running broker for its state without becoming its client; null when none answers. */
export async function describeBroker(socketPath: string = socketPathFromEnv()): Promise<ManagerSnapshot | null> {
  let socket: Socket
  try {
    socket = await openSocket(socketPath)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') {
      throw new LvmfsError('DLM_NOACCESS', `permission denied on lock broker socket ${socketPath}`)
    }
    return null
  }
  try {
    return await new Promise<ManagerSnapshot>((resolve, reject) => {
      const decoder = new FrameDecoder()
      socket.on('data', (chunk: Buffer) => {
        const [message] = decoder.push(chunk) as Array<{ ok: boolean, result: unknown, error: WireError }>
        if (message === undefined) return
        if (message.ok) resolve(message.result as ManagerSnapshot)
        else reject(LvmfsError.fromJSON(message.error))
      })
      socket.once('close', () => reject(new LvmfsError('DLM_INTR', 'lock broker closed the connection')))
      socket.write(encodeFrame({ id: 1, op: 'describe', args: {} }))
    })
  } finally {
    socket.destroy()
  }
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path)
    socket.once('connect', () => {
      socket.removeListener('error', reject)
      socket.setNoDelay(true)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}
