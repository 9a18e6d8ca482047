/**
 * EtcdDlmClient: the DlmClient API on etcd, for processes on several hosts (issue 6, "Several
 * hosts"). Layout under `<prefix><namespace>/` (resource and domain names URI-encoded):
 *
 *   q/<res>/<lease>-<n>      {mode}            a request or a held lock, bound to the client's lease
 *   lvb/<res>                {data,seq,valid}  the value block
 *   pwex/<res>/<lease>-<n>   <q key>           "a PW/EX holder exists": NOT bound to the lease
 *   resrd/<res>              <domain>          the resource's recovery domain
 *   rdres/<domain>/<res>                       the domain's resources
 *   rdmem/<domain>/<lease>                     an attached member, bound to its lease
 *   rdstate/<domain>         {state,invalidations,handleSeq,collection}
 *
 * Rules:
 *  - a request is granted when its mode is compatible with every q key created before it (create
 *    revision order = FIFO); an up-conversion is a new q key at the tail that ignores the lock's
 *    own old key, which it replaces when granted; a down-conversion rewrites the key in place;
 *  - a PW/EX grant writes a pwex marker; a clean down-conversion or unlock deletes it in the same
 *    transaction. A lease that expires (the holder died) deletes its q keys but leaves the marker:
 *    whoever next looks (a grant, a collect, or any client's watch on q/ deletes) finds a marker
 *    whose q key is gone and, in one transaction checked on every key it read, deletes the marker,
 *    marks the value block not valid and counts an invalidation in the domain;
 *  - every write of a value block or of domain state is a compare-and-swap on the revisions read,
 *    and value-block writes also check that the writer's q key still exists (ownership).
 *
 * Not on etcd: persistent locks (ENGINE_NOT_SUPPORTED), conversion-deadlock detection, process
 * lock groups, and DLM_MORE_TO_RECOVER for member deaths without an invalidation.
 */
import { Etcd3, type DeleteBuilder, type IKeyValue, type Lease, type PutBuilder, type Watcher } from 'etcd3'
import { LvmfsError } from '../errors/index.js'
import { DlmLock, type ConvertLockOptions, type LockBackend, type LockOptions, type WireGrant } from './client.js'
import { isDownConversion, isLockMode, modesCompatible, writesValueBlock, type LockMode } from './modes.js'

export interface EtcdDlmClientOptions {
  readonly hosts: string | string[]
  readonly namespace?: string
  /** Lease TTL: a holder silent this long is dead (default 5 s). */
  readonly ttlSeconds?: number
  readonly prefix?: string
}

interface Lvb { data: string, seq: number, valid: boolean }
interface Collection { handle: number, owner: string, resources: string[], invalidationsAtCollect: number }
interface DomainState { state: string, invalidations: number, handleSeq: number, collection: Collection | null }
interface Entry { key: string, mode: LockMode, granted: boolean, convertOf: string | null }
interface QueueValue { mode: LockMode, granted?: boolean, convertOf?: string | null }
interface Held { key: string, rd: string | undefined, onRequest?: (key: string, value: QueueValue) => void }

const enc = encodeURIComponent
const parse = <T>(kv: IKeyValue | undefined, fallback: T): T =>
  kv === undefined ? fallback : JSON.parse(kv.value.toString('utf8')) as T
const EMPTY_STATE: DomainState = { state: 'recovered', invalidations: 0, handleSeq: 0, collection: null }
const EMPTY_LVB: Lvb = { data: '', seq: 0, valid: true }

export class EtcdDlmClient implements LockBackend {
  private readonly held = new WeakMap<DlmLock, Held>()
  private readonly live = new Set<DlmLock>()
  private readonly domains = new Map<number, string>()
  private readonly watchers = new Set<Watcher>()
  private readonly recoveryHandlers: Array<(rd: number, domain: string) => void> = []
  private nextRd = 1
  private nextKey = 1
  private closed = false
  /** Set once the locks were given up (lease lost or not renewed in time): none is taken again. */
  private fenced = false
  private fenceTimer: NodeJS.Timeout | undefined

  private constructor(
    readonly etcd: Etcd3,
    private readonly lease: Lease,
    readonly leaseId: string,
    readonly namespace: string,
    private readonly root: string,
  ) {}

  static async connect(options: EtcdDlmClientOptions): Promise<EtcdDlmClient> {
    const etcd = new Etcd3({ hosts: options.hosts })
    const lease = etcd.lease(options.ttlSeconds ?? 5)
    const grantStartedMs = Date.now()
    let leaseId: string
    try {
      leaseId = await lease.grant()
    } catch (cause) {
      etcd.close()
      throw new LvmfsError('DLM_ENOSYS', `etcd at ${String(options.hosts)} does not answer`, { cause })
    }
    const namespace = options.namespace ?? 'lvmfs'
    const client = new EtcdDlmClient(etcd, lease, leaseId, namespace, `${options.prefix ?? '/lvmfs-dlm/'}${enc(namespace)}/`)
    await client.watchQueues()
    lease.on('lost', (cause) => client.loseAll('lost with the etcd lease', cause))
    client.watchLease(grantStartedMs, (options.ttlSeconds ?? 5) * 1000)
    return client
  }

  /**
   * Self-fencing. etcd3 reports a lease 'lost' only after two TTLs without a keepalive, long
   * after etcd may have granted our locks to another host. The server's lease outlives every
   * keepalive it answered by at least the TTL counted from when that keepalive was sent, so a
   * client whose last answered keepalive was sent at T holds its locks until T + TTL, and no
   * later: a margin before that, every lock is reported lost (DlmLock.onLost), and its holder
   * must stop writing before anyone else can be granted the lock.
   */
  private watchLease(grantStartedMs: number, ttlMs: number): void {
    const marginMs = Math.min(1000, ttlMs / 4)
    let validUntilMs = grantStartedMs + ttlMs
    const sent: number[] = []
    this.lease.on('keepaliveFired', () => { sent.push(Date.now()) })
    this.lease.on('keepaliveSucceeded', () => {
      const at = sent.shift()
      if (at !== undefined) validUntilMs = Math.max(validUntilMs, at + ttlMs)
    })
    // A failed stream never answers what it carried; the next stream's answers pair with its
    // own requests, in order.
    this.lease.on('keepaliveFailed', () => { sent.length = 0 })
    this.fenceTimer = setInterval(() => {
      if (this.closed || Date.now() < validUntilMs - marginMs) return
      this.loseAll(`not renewed with the etcd lease within its TTL (${ttlMs} ms): self-fenced`)
      if (this.fenceTimer !== undefined) clearInterval(this.fenceTimer)
    }, Math.max(50, Math.min(250, marginMs / 2)))
    this.fenceTimer.unref()
  }

  /** Every lock of this client may already be granted to others: each is reported lost. */
  private loseAll(why: string, cause?: unknown): void {
    this.fenced = true
    for (const lock of [...this.live]) {
      this.live.delete(lock)
      lock.fireLost(new LvmfsError('DLM_NOTGRANTED', `lock on "${lock.resource}" ${why}`,
        cause === undefined ? {} : { cause }))
    }
  }

  onRecoveryNeeded(handler: (rd: number, domain: string) => void): void {
    this.recoveryHandlers.push(handler)
  }

  async attach(name: string): Promise<number> {
    const bytes = Buffer.byteLength(name)
    if (bytes === 0 || bytes > 64) throw new LvmfsError('DLM_ENAMETOOLONG', 'recovery domain name must be 1 to 64 bytes')
    if ([...this.domains.values()].includes(name)) throw new LvmfsError('DLM_ATTACHED', `"${name}" is already attached`)
    await this.lease.put(this.k('rdmem', name, this.leaseId)).value('')
    await this.etcd.if(this.k('rdstate', name), 'Version', '==', 0)
      .then(this.etcd.put(this.k('rdstate', name)).value(JSON.stringify(EMPTY_STATE))).commit()
    const rd = this.nextRd++
    this.domains.set(rd, name)
    let seen = -1
    const watcher = await this.etcd.watch().key(this.k('rdstate', name)).create()
    watcher.on('put', (kv) => {
      const state = parse(kv, EMPTY_STATE)
      if (state.state === 'needs-recovery' && state.invalidations !== seen) {
        seen = state.invalidations
        for (const handler of this.recoveryHandlers) handler(rd, name)
      }
    })
    this.watchers.add(watcher)
    return rd
  }

  async lock(resource: string, mode: LockMode, options: LockOptions = {}): Promise<DlmLock> {
    if (this.fenced) {
      throw new LvmfsError('DLM_NOTGRANTED', `no lock on "${resource}": this client's etcd lease lapsed (self-fenced)`)
    }
    if (!isLockMode(mode)) throw new LvmfsError('DLM_BADPARAM', `unknown lock mode "${String(mode)}"`)
    const bytes = Buffer.byteLength(resource ?? '')
    if (bytes === 0 || bytes > 255) throw new LvmfsError('DLM_IVBUFLEN', 'resource name must be 1 to 255 bytes')
    if (options.persistent === true) {
      throw new LvmfsError('ENGINE_NOT_SUPPORTED', 'persistent locks are not supported on the etcd backend')
    }
    const rd = options.rd === undefined ? undefined : this.domainName(options.rd)
    if (rd !== undefined) {
      await this.etcd.put(this.k('resrd', resource)).value(rd)
      await this.etcd.put(this.k('rdres', rd, resource)).value('')
    }
    const key = this.queueKey(resource)
    await this.lease.put(key).value(JSON.stringify({ mode, granted: false, convertOf: null }))
    const immediate = await this.waitGrant(resource, key, mode, null, options)
    const lock = new DlmLock(this, resource, options.rd, false, await this.afterGrant(resource, mode, immediate, key))
    this.held.set(lock, { key, rd })
    this.live.add(lock)
    await this.watchBlocking(lock)
    return lock
  }

  async convertLock(lock: DlmLock, mode: LockMode, options: ConvertLockOptions): Promise<DlmLock> {
    const held = this.mustHold(lock)
    if (!isLockMode(mode)) throw new LvmfsError('DLM_BADPARAM', `unknown lock mode "${String(mode)}"`)
    const down = isDownConversion(lock.mode, mode)
    if (options.valueBlock !== undefined) {
      if (!down || !writesValueBlock(lock.mode)) {
        throw new LvmfsError('DLM_BADPARAM', 'only a down-conversion from PW or EX writes the value block')
      }
      await this.writeLvb(lock.resource, held, options.valueBlock)
    }
    if (down) {
      const txn = this.etcd.if(held.key, 'Version', '>', 0)
        .then(this.etcd.put(held.key).value(JSON.stringify({ mode, granted: true, convertOf: null })).ignoreLease(),
          ...(writesValueBlock(mode) ? [] : [this.etcd.delete().key(this.markerKey(lock.resource, held.key))]))
      if (!(await txn.commit()).succeeded) throw this.lost(lock)
      const lvb = await this.readLvb(lock.resource)
      lock.applyGrant({ ...this.grantOf(held.key, mode, lvb.value, true),
        ...(options.valueBlock === undefined ? {} : { valueBlock: undefined }) }, options.valueBlock)
      await this.watchBlocking(lock) // a new granted mode resets the blocking notification (as the broker)
      return lock
    }
    const key = this.queueKey(lock.resource)
    await this.lease.put(key).value(JSON.stringify({ mode, granted: false, convertOf: held.key }))
    const immediate = await this.waitGrant(lock.resource, key, mode, held.key, options)
    const grant = await this.afterGrant(lock.resource, mode, immediate, key)
    held.key = key
    lock.applyGrant(grant, undefined)
    await this.watchBlocking(lock)
    return lock
  }

  async unlockLock(lock: DlmLock, options: { valueBlock?: Uint8Array }): Promise<void> {
    const held = this.mustHold(lock)
    if (options.valueBlock !== undefined) {
      if (!writesValueBlock(lock.mode)) throw new LvmfsError('DLM_BADPARAM', 'only PW or EX writes the value block')
      await this.writeLvb(lock.resource, held, options.valueBlock)
    }
    await this.etcd.if(held.key, 'Version', '>', 0)
      .then(this.etcd.delete().key(held.key), this.etcd.delete().key(this.markerKey(lock.resource, held.key)))
      .commit()
    lock.released = true
    this.live.delete(lock)
  }

  async collect(rd: number, flags = 0): Promise<{ handle: number, resources: string[] }> {
    const name = this.domainName(rd)
    if (flags !== 0) throw new LvmfsError('DLM_BADPARAM', `reserved flags must be 0, got ${flags}`)
    const resources = await this.domainResources(name)
    for (const resource of resources) await this.sweep(resource)
    for (let attempt = 0; attempt < 20; attempt++) {
      const stateKv = await this.getKv(this.k('rdstate', name))
      const state = parse(stateKv, EMPTY_STATE)
      if (state.collection !== null && (await this.getKv(this.k('rdmem', name, state.collection.owner))) !== undefined) {
        throw new LvmfsError('DLM_EALREADY', `recovery domain "${name}" is already collected`)
      }
      const invalid: string[] = []
      for (const resource of resources) if (!(await this.readLvb(resource)).value.valid) invalid.push(resource)
      const handle = state.handleSeq + 1
      const next: DomainState = { state: 'in-recovery', invalidations: state.invalidations, handleSeq: handle,
        collection: { handle, owner: this.leaseId, resources: invalid, invalidationsAtCollect: state.invalidations } }
      if (await this.casState(name, stateKv, next)) return { handle, resources: invalid }
    }
    throw new LvmfsError('ENGINE_TIMEOUT', `recovery domain "${name}" kept changing during collect`)
  }

  async validate(rd: number, handle: number, flags = 0): Promise<{ status: string, validated: string[] }> {
    const name = this.domainName(rd)
    if (flags !== 0) throw new LvmfsError('DLM_BADPARAM', `reserved flags must be 0, got ${flags}`)
    for (let attempt = 0; attempt < 20; attempt++) {
      const stateKv = await this.getKv(this.k('rdstate', name))
      const state = parse(stateKv, EMPTY_STATE)
      const collection = state.collection
      if (collection === null || collection.handle !== handle || collection.owner !== this.leaseId) {
        throw new LvmfsError('DLM_IVHNDL', `collection handle ${handle} is not open for "${name}"`)
      }
      let txn = this.etcd.if(this.k('rdstate', name), 'Mod', '==', stateKv!.mod_revision)
      const puts = []
      for (const resource of collection.resources) {
        const lvb = await this.readLvb(resource)
        txn = lvb.kv === undefined ? txn.and(this.k('lvb', resource), 'Version', '==', 0)
          : txn.and(this.k('lvb', resource), 'Mod', '==', lvb.kv.mod_revision)
        const zeros = Buffer.alloc(Buffer.from(lvb.value.data, 'base64').length).toString('base64')
        puts.push(this.etcd.put(this.k('lvb', resource)).value(JSON.stringify({ data: zeros, seq: lvb.value.seq + 1, valid: true })))
      }
      let others = false
      for (const resource of await this.domainResources(name)) {
        if (!collection.resources.includes(resource) && !(await this.readLvb(resource)).value.valid) others = true
      }
      const more = others || state.invalidations !== collection.invalidationsAtCollect
      const next: DomainState = { ...state, state: more ? 'needs-recovery' : 'recovered', collection: null }
      const result = await txn.then(...puts, this.etcd.put(this.k('rdstate', name)).value(JSON.stringify(next))).commit()
      if (result.succeeded) {
        return { status: more ? 'DLM_MORE_TO_RECOVER' : 'DLM_SUCCESS', validated: collection.resources }
      }
    }
    throw new LvmfsError('ENGINE_TIMEOUT', `recovery domain "${name}" kept changing during validate`)
  }

  async detach(rd: number): Promise<void> {
    const name = this.domainName(rd)
    for (const lock of this.live) {
      if (this.held.get(lock)?.rd === name) throw new LvmfsError('DLM_HASLOCKS', `cannot detach "${name}"`)
    }
    if (parse(await this.getKv(this.k('rdstate', name)), EMPTY_STATE).collection?.owner === this.leaseId) {
      throw new LvmfsError('DLM_EINPROGRESS', `cannot detach "${name}" with an unvalidated collection`)
    }
    await this.etcd.delete().key(this.k('rdmem', name, this.leaseId))
    this.domains.delete(rd)
  }

  /** Revokes the lease: like a broker client's socket closing, PW/EX value blocks become not valid. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.fenceTimer !== undefined) clearInterval(this.fenceTimer)
    const bounded = (promise: Promise<unknown>): Promise<unknown> =>
      Promise.race([promise.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
    await bounded(Promise.all([...this.watchers].map((watcher) => watcher.cancel())))
    await bounded(this.lease.revoke())
    this.etcd.close()
  }

  /** Test hook: stop keeping the lease alive and go silent, as a crashed process would. */
  async abandon(): Promise<void> {
    this.closed = true
    if (this.fenceTimer !== undefined) clearInterval(this.fenceTimer)
    await Promise.all([...this.watchers].map((watcher) => watcher.cancel()))
    this.lease.release()
    this.etcd.close()
  }

  // ---- internals -------------------------------------------------------------------------

  private k(kind: string, ...parts: string[]): string {
    return `${this.root}${kind}/${parts.map(enc).join('/')}`
  }

  private queueKey(resource: string): string {
    return `${this.k('q', resource)}/${this.leaseId}-${this.nextKey++}`
  }

  private markerKey(resource: string, queueKey: string): string {
    return `${this.k('pwex', resource)}/${queueKey.slice(queueKey.lastIndexOf('/') + 1)}`
  }

  private domainName(rd: number): string {
    if (!Number.isSafeInteger(rd) || rd <= 0) throw new LvmfsError('DLM_BADPARAM', `recovery domain handle out of range: ${rd}`)
    const name = this.domains.get(rd)
    if (name === undefined) throw new LvmfsError('DLM_IVRDID', `no recovery domain attached with handle ${rd}`)
    return name
  }

  private mustHold(lock: DlmLock): Held {
    const held = this.held.get(lock)
    if (held === undefined || lock.released) throw new LvmfsError('DLM_IVLOCKID', `lock on "${lock.resource}" was released`)
    return held
  }

  private lost(lock: DlmLock): LvmfsError {
    const error = new LvmfsError('DLM_NOTGRANTED', `lock on "${lock.resource}" is gone (lease expired)`)
    this.live.delete(lock)
    lock.fireLost(error)
    return error
  }

  private async getKv(key: string): Promise<IKeyValue | undefined> {
    return (await this.etcd.get(key).exec()).kvs[0]
  }

  private async readLvb(resource: string): Promise<{ kv: IKeyValue | undefined, value: Lvb }> {
    const kv = await this.getKv(this.k('lvb', resource))
    return { kv, value: parse(kv, EMPTY_LVB) }
  }

  private async domainResources(name: string): Promise<string[]> {
    const prefix = `${this.k('rdres', name)}/`
    const keys = await this.etcd.getAll().prefix(prefix).keys()
    return keys.map((key) => decodeURIComponent(key.slice(prefix.length)))
  }

  private async queue(resource: string): Promise<Entry[]> {
    const response = await this.etcd.getAll().prefix(`${this.k('q', resource)}/`).sort('Create', 'Ascend').exec()
    return response.kvs.map((kv) => {
      const value = parse<{ mode: LockMode, granted?: boolean, convertOf?: string | null }>(kv, { mode: 'NL' })
      return { key: kv.key.toString('utf8'), mode: value.mode, granted: value.granted === true,
        convertOf: value.convertOf ?? null }
    })
  }

  /**
   * Waits until `key` may be granted and grants it. Resolves true when granted at the first look.
   * Grants follow the broker's rules: pending conversions (keys with `convertOf`) in revision
   * order first, then new requests in revision order, each only at the head of its queue and only
   * if compatible with every granted key (a conversion ignores its own old key). A grant is a
   * transaction that bumps `gen/<res>` and compares it with the value read before the queue, so
   * two grants decided on the same snapshot cannot both commit.
   */
  private async waitGrant(resource: string, key: string, wanted: LockMode, convertOf: string | null,
    options: { noQueue?: boolean, signal?: AbortSignal, timeoutMs?: number }): Promise<boolean> {
    const first = await this.tryGrant(resource, key, wanted, convertOf, true)
    if (first === 'granted') return true
    if (first === 'deadlock' || options.noQueue === true) {
      await this.etcd.delete().key(key)
      if (first === 'deadlock') {
        throw new LvmfsError('DLM_DEADLOCK', `converting on "${resource}" to ${wanted} would deadlock`,
          { detail: 'A conversion queued ahead waits for the mode this lock holds.' })
      }
      throw new LvmfsError('DLM_NOTQUEUED', `"${resource}" cannot be granted in ${wanted} at once`)
    }
    // Watch from here on and look again at once, so a change between the first look and the
    // watch is not missed.
    const watcher = await this.etcd.watch().prefix(`${this.k('q', resource)}/`).create()
    try {
      await new Promise<void>((resolve, reject) => {
        let checking = Promise.resolve()
        let done = false
        const recheck = (): void => {
          checking = checking.then(async () => {
            if (done) return
            if ((await this.tryGrant(resource, key, wanted, convertOf, false)) === 'granted') {
              done = true
              resolve()
            }
          }).catch((error: unknown) => {
            done = true
            reject(error as Error)
          })
        }
        watcher.on('delete', recheck)
        watcher.on('put', recheck)
        const giveUp = (code: 'DLM_TIMEOUT' | 'DLM_ABORT'): void => {
          checking = checking.then(async () => {
            if (done) return
            done = true
            await this.etcd.delete().key(key)
            reject(new LvmfsError(code, `request on "${resource}" cancelled`))
          })
        }
        if (options.timeoutMs !== undefined) setTimeout(() => giveUp('DLM_TIMEOUT'), options.timeoutMs).unref()
        options.signal?.addEventListener('abort', () => giveUp('DLM_ABORT'), { once: true })
        recheck()
      })
      return false
    } finally {
      await watcher.cancel()
    }
  }

  private async tryGrant(resource: string, key: string, wanted: LockMode, convertOf: string | null,
    first: boolean): Promise<'granted' | 'waiting' | 'deadlock'> {
    const genKey = this.k('gen', resource)
    const genKv = await this.getKv(genKey)
    const entries = await this.queue(resource)
    const me = entries.find((entry) => entry.key === key)
    if (me === undefined) throw new LvmfsError('DLM_NOTGRANTED', `request on "${resource}" vanished (lease expired)`)
    const holders = entries.filter((entry) => entry.granted && entry.key !== convertOf)
    const conversions = entries.filter((entry) => !entry.granted && entry.convertOf !== null)
    const waiters = entries.filter((entry) => !entry.granted && entry.convertOf === null)
    if (first && convertOf !== null) {
      const old = entries.find((entry) => entry.key === convertOf)
      const ahead = conversions.slice(0, conversions.findIndex((entry) => entry.key === key))
      if (old !== undefined && ahead.some((entry) => !modesCompatible(old.mode, entry.mode))) return 'deadlock'
    }
    const head = convertOf !== null ? conversions[0] : (conversions.length === 0 ? waiters[0] : undefined)
    if (head?.key !== key || !holders.every((holder) => modesCompatible(holder.mode, wanted))) return 'waiting'
    const gen = genKv === undefined ? 0 : Number(genKv.value.toString('utf8'))
    let txn = genKv === undefined ? this.etcd.if(genKey, 'Version', '==', 0) : this.etcd.if(genKey, 'Mod', '==', genKv.mod_revision)
    txn = txn.and(key, 'Version', '>', 0)
    const ops: Array<PutBuilder | DeleteBuilder> = [
      this.etcd.put(key).value(JSON.stringify({ mode: wanted, granted: true, convertOf: null })).lease(this.leaseId),
      this.etcd.put(genKey).value(String(gen + 1)),
    ]
    if (writesValueBlock(wanted)) ops.push(this.etcd.put(this.markerKey(resource, key)).value(key))
    if (convertOf !== null) {
      ops.push(this.etcd.delete().key(convertOf), this.etcd.delete().key(this.markerKey(resource, convertOf)))
    }
    return (await txn.then(...ops).commit()).succeeded ? 'granted' : 'waiting'
  }

  private async afterGrant(resource: string, mode: LockMode, immediate: boolean, key: string): Promise<WireGrant> {
    await this.sweep(resource)
    const lvb = await this.readLvb(resource)
    return this.grantOf(key, mode, lvb.value, immediate)
  }

  private grantOf(key: string, mode: LockMode, lvb: Lvb, immediate: boolean): WireGrant {
    const status = immediate ? (lvb.valid ? 'DLM_SYNCH' : 'DLM_SYNCVALNOTVALID')
      : (lvb.valid ? 'DLM_SUCCESS' : 'DLM_SUCCVALNOTVALID')
    return { lockId: Number(key.slice(key.lastIndexOf('-') + 1)), mode, status, valueBlock: lvb.data,
      valueBlockValid: lvb.valid, valueBlockSeq: lvb.seq }
  }

  private async writeLvb(resource: string, held: Held, data: Uint8Array): Promise<void> {
    if (data.length > 64) throw new LvmfsError('DLM_IVBUFLEN', 'value block must be at most 64 bytes')
    for (let attempt = 0; attempt < 20; attempt++) {
      const { kv, value } = await this.readLvb(resource)
      const next: Lvb = { data: Buffer.from(data).toString('base64'), seq: value.seq + 1,
        valid: held.rd === undefined ? true : value.valid }
      const lvbKey = this.k('lvb', resource)
      const txn = this.etcd.if(held.key, 'Version', '>', 0)
      const guarded = kv === undefined ? txn.and(lvbKey, 'Version', '==', 0) : txn.and(lvbKey, 'Mod', '==', kv.mod_revision)
      if ((await guarded.then(this.etcd.put(lvbKey).value(JSON.stringify(next))).commit()).succeeded) return
      if ((await this.getKv(held.key)) === undefined) {
        throw new LvmfsError('DLM_NOTGRANTED', `lock on "${resource}" is gone (lease expired)`)
      }
    }
    throw new LvmfsError('ENGINE_TIMEOUT', `value block of "${resource}" kept changing`)
  }

  /** Turns markers of dead PW/EX holders into a not-valid value block (see the file header). */
  private async sweep(resource: string): Promise<void> {
    const markers = (await this.etcd.getAll().prefix(`${this.k('pwex', resource)}/`).exec()).kvs
    for (const marker of markers) {
      const queueKey = marker.value.toString('utf8')
      for (let attempt = 0; attempt < 20; attempt++) {
        if ((await this.getKv(queueKey)) !== undefined) break
        const lvb = await this.readLvb(resource)
        const rd = (await this.getKv(this.k('resrd', resource)))?.value.toString('utf8')
        const stateKv = rd === undefined ? undefined : await this.getKv(this.k('rdstate', rd))
        let txn = this.etcd.if(marker.key, 'Version', '>', 0).and(queueKey, 'Version', '==', 0)
        txn = lvb.kv === undefined ? txn.and(this.k('lvb', resource), 'Version', '==', 0)
          : txn.and(this.k('lvb', resource), 'Mod', '==', lvb.kv.mod_revision)
        const ops = [this.etcd.delete().key(marker.key.toString('utf8')),
          this.etcd.put(this.k('lvb', resource)).value(JSON.stringify({ ...lvb.value, valid: false }))]
        if (rd !== undefined && stateKv !== undefined) {
          txn = txn.and(this.k('rdstate', rd), 'Mod', '==', stateKv.mod_revision)
          const state = parse(stateKv, EMPTY_STATE)
          ops.push(this.etcd.put(this.k('rdstate', rd)).value(JSON.stringify({ ...state,
            state: state.state === 'in-recovery' ? 'in-recovery' : 'needs-recovery',
            invalidations: state.invalidations + 1 })))
        }
        if ((await txn.then(...ops).commit()).succeeded) break
        if ((await this.getKv(marker.key.toString('utf8'))) === undefined) break
      }
    }
  }

  private async casState(name: string, stateKv: IKeyValue | undefined, next: DomainState): Promise<boolean> {
    const key = this.k('rdstate', name)
    const txn = stateKv === undefined ? this.etcd.if(key, 'Version', '==', 0) : this.etcd.if(key, 'Mod', '==', stateKv.mod_revision)
    return (await txn.then(this.etcd.put(key).value(JSON.stringify(next))).commit()).succeeded
  }

  /**
   * One watch on every q key of the namespace: a deleted key may be a dead PW/EX holder (sweep its
   * resource); a new request may be blocked by one of our locks (blocking notification).
   */
  private async watchQueues(): Promise<void> {
    const prefix = `${this.root}q/`
    const resourceOf = (kv: IKeyValue): string => {
      const rest = kv.key.toString('utf8').slice(prefix.length)
      return decodeURIComponent(rest.slice(0, rest.indexOf('/')))
    }
    const watcher = await this.etcd.watch().prefix(prefix).create()
    watcher.on('delete', (kv) => {
      this.sweep(resourceOf(kv)).catch(() => {})
    })
    watcher.on('put', (kv) => {
      const resource = resourceOf(kv)
      const value = parse<QueueValue>(kv, { mode: 'NL' })
      for (const lock of this.live) {
        if (lock.resource === resource) this.held.get(lock)?.onRequest?.(kv.key.toString('utf8'), value)
      }
    })
    this.watchers.add(watcher)
  }

  /** Blocking notifications come from the one q/ watch of watchQueues, per resource. */
  private async watchBlocking(lock: DlmLock): Promise<void> {
    const held = this.held.get(lock)!
    let notified: LockMode | null = null
    held.onRequest = (key, value) => {
      if (lock.released || key === held.key || value.granted === true || value.convertOf === held.key) return
      if (modesCompatible(lock.mode, value.mode)) return
      if (notified !== null && isDownConversion(notified, value.mode)) return
      notified = value.mode
      lock.fireBlocking(value.mode)
    }
    // A request that arrived while this grant was on its way was judged against the old mode
    // (an NL holder converting up to PR let an EX request pass unnoticed, and the EX waited
    // until the holder's next commit): judge the queue again against the new one.
    const queued = await this.etcd.getAll().prefix(`${this.k('q', lock.resource)}/`).exec()
    for (const kv of queued.kvs) held.onRequest(kv.key.toString('utf8'), parse<QueueValue>(kv, { mode: 'NL' }))
  }
}
