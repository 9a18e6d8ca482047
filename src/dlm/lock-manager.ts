/**
 * The lock manager: a pure, synchronous, in-memory state machine. It knows nothing of sockets or
 * storage; the broker (broker.ts) feeds it requests and `clientGone` events and delivers the
 * events it emits. Semantics are documented in docs/dlm.md.
 *
 * Invariants (checked by `checkInvariants`, which tests call after every step):
 *  - no two holders of a resource have incompatible granted modes;
 *  - every lock of a live client is indexed under that client, every orphan under none;
 *  - a waiting lock has no granted mode, a converting lock has both modes;
 *  - conversions are granted before new requests, each queue strictly FIFO;
 *  - an open collection belongs to a live client.
 *
 * Fault model: the only fault is a client's death (`clientGone`). Its waiting requests vanish,
 * its conversions are dropped, its PW/EX holds make the value block not valid, its persistent
 * locks become orphans that keep blocking until the domain is validated or they are purged, and
 * its open collection is given back.
 */
import { LvmfsError, type ErrorCode } from '../errors/index.js'
import { assert } from '../util/index.js'
import {
  isDownConversion, isLockMode, modeRank, modesCompatible, writesValueBlock, type LockMode,
} from './modes.js'
import { RecoveryDomain, type Attachment } from './recovery-domain.js'
import { Resource, type Lock } from './resource.js'
import {
  DEFAULT_LIMITS, type ClientId, type CollectResult, type ConvertOptions, type DlmEvent, type DlmLimits,
  type Grant, type LockId, type LockRequest, type LockResult, type RdId, type ReassertRequest,
  type ValidateResult,
} from './types.js'
import { describeManager, type ManagerSnapshot } from './snapshot.js'

export type EventSink = (clientId: ClientId, event: DlmEvent) => void

export interface ClientRecord {
  readonly id: ClientId
  readonly pid: number
  readonly label: string
  readonly namespaces: Set<string>
  readonly locks: Map<LockId, Lock>
  readonly attachments: Map<RdId, Attachment>
  readonly groups: Set<string>
}

export interface ManagerOptions {
  readonly emit?: EventSink
  readonly limits?: Partial<DlmLimits>
}

const encoder = new TextEncoder()

function fail(code: ErrorCode, message: string, detail?: string): never {
  throw new LvmfsError(code, message, detail === undefined ? {} : { detail })
}

export class LockManager {
  readonly limits: DlmLimits
  readonly clients = new Map<ClientId, ClientRecord>()
  readonly resources = new Map<string, Resource>()
  readonly domains = new Map<string, RecoveryDomain>()
  readonly attachments = new Map<RdId, Attachment>()
  private readonly emitEvent: EventSink
  private nextClientId = 1
  private nextLockId = 1
  private nextRdId = 1
  private nextHandle = 1
  private enabled = true
  /** While true (broker restart grace period) nothing new is granted; re-assertions are. */
  grace = false

  constructor(options: ManagerOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits }
    this.emitEvent = options.emit ?? (() => {})
  }

  // ---- clients, namespaces, groups -------------------------------------------------------

  addClient(info: { pid?: number, label?: string } = {}): ClientId {
    this.checkEnabled()
    const id = this.nextClientId++
    this.clients.set(id, {
      id, pid: info.pid ?? 0, label: info.label ?? '', namespaces: new Set(), locks: new Map(),
      attachments: new Map(), groups: new Set(),
    })
    return id
  }

  /** Disables the manager: every later call fails with DLM_ENOSYS. */
  shutdown(): void {
    this.enabled = false
  }

  nsJoin(clientId: ClientId, namespace: string): void {
    const client = this.client(clientId)
    this.checkName(namespace, 'namespace')
    if (client.namespaces.has(namespace)) fail('DLM_ATTACHED', `already joined namespace "${namespace}"`)
    if (client.namespaces.size >= this.limits.namespacesPerClientMax) {
      fail('DLM_TOOMANYNS', `cannot join namespace "${namespace}"`,
        `A process may join at most ${this.limits.namespacesPerClientMax} namespaces.`)
    }
    client.namespaces.add(namespace)
  }

  nsLeave(clientId: ClientId, namespace: string): void {
    const client = this.client(clientId)
    if (!client.namespaces.has(namespace)) fail('DLM_ENOENT', `namespace "${namespace}" was not joined`)
    for (const lock of client.locks.values()) {
      if (lock.resource.namespace === namespace) {
        fail('DLM_HASLOCKS', `cannot leave namespace "${namespace}"`,
          `Lock ${lock.id} on "${lock.resource.name}" is still owned; unlock it first.`)
      }
    }
    for (const attachment of client.attachments.values()) {
      if (attachment.domain.namespace === namespace) this.rdDetach(clientId, attachment.rdId)
    }
    client.namespaces.delete(namespace)
  }

  /** Joins a process lock group (dlm_glc_attach); group-scoped recovery domains are shared. */
  groupJoin(clientId: ClientId, group: string): void {
    const client = this.client(clientId)
    this.checkName(group, 'group')
    client.groups.add(group)
  }

  // ---- locks -----------------------------------------------------------------------------

  lock(clientId: ClientId, request: LockRequest): LockResult {
    const client = this.client(clientId)
    if (this.grace) this.refuseGrace(request.resource)
    const resource = this.resourceFor(client, request)
    const immediate = resource.converting.length === 0 && resource.waiting.length === 0 &&
      resource.compatibleWithHolders(request.mode, null)
    if (!immediate && request.noQueue === true) {
      this.dropIfIdle(resource)
      fail('DLM_NOTQUEUED', `"${request.resource}" cannot be granted in ${request.mode} at once`)
    }
    if (!immediate && resource.waiting.length >= this.limits.queueLengthMax) {
      this.dropIfIdle(resource)
      fail('DLM_INSFMEM', `too many requests queued on "${request.resource}"`)
    }
    const lock = this.newLock(client, resource, request)
    lock.requestedMode = request.mode
    if (immediate) return { granted: true, ...this.grant(lock, true, undefined) }
    lock.state = 'waiting'
    resource.waiting.push(lock)
    this.notifyBlockers(resource)
    return { granted: false, lockId: lock.id }
  }

  convert(clientId: ClientId, lockId: LockId, mode: LockMode, options: ConvertOptions = {}): LockResult {
    const client = this.client(clientId)
    const lock = this.ownedLock(client, lockId)
    if (!isLockMode(mode)) fail('DLM_BADPARAM', `unknown lock mode "${String(mode)}"`)
    if (lock.state === 'waiting') fail('DLM_CVTUNGRANT', `lock ${lockId} has not been granted yet`)
    if (lock.state === 'converting') fail('DLM_LKBUSY', `lock ${lockId} already has a conversion pending`)
    const from = lock.grantedMode!
    const down = isDownConversion(from, mode)
    if (options.valueBlock !== undefined) this.checkValueBlockWrite(lock, options.valueBlock, down)
    if (this.grace && !down) this.refuseGrace(lock.resource.name)
    const resource = lock.resource
    lock.requestedMode = mode
    if (resource.compatibleWithHolders(mode, lock) && (down || resource.converting.length === 0)) {
      const grant = this.grant(lock, true, down ? options.valueBlock : undefined)
      // Not only down-conversions release waiters: CW -> PR, say, is neither down nor up, and
      // unblocks a queued PR that CW kept out.
      this.grantPending(resource)
      return { granted: true, ...grant }
    }
    lock.requestedMode = null
    if (options.noQueue === true) fail('DLM_NOTQUEUED', `"${resource.name}" cannot be converted to ${mode} at once`)
    const deadlock = resource.converting.find((ahead) => !modesCompatible(from, ahead.requestedMode!))
    if (deadlock !== undefined) {
      fail('DLM_DEADLOCK', `converting lock ${lockId} on "${resource.name}" to ${mode} would deadlock`,
        `Conversion of lock ${deadlock.id} to ${deadlock.requestedMode} is queued ahead and waits for the ` +
        `${from} this lock holds.`)
    }
    if (resource.converting.length >= this.limits.queueLengthMax) {
      fail('DLM_INSFMEM', `too many conversions queued on "${resource.name}"`)
    }
    lock.requestedMode = mode
    lock.state = 'converting'
    resource.converting.push(lock)
    this.notifyBlockers(resource)
    return { granted: false, lockId }
  }

  unlock(clientId: ClientId, lockId: LockId, options: { valueBlock?: Uint8Array } = {}): void {
    const client = this.client(clientId)
    const lock = this.ownedLock(client, lockId)
    const resource = lock.resource
    if (options.valueBlock !== undefined) {
      if (lock.state === 'waiting' || !writesValueBlock(lock.grantedMode!)) {
        fail('DLM_BADPARAM', `lock ${lockId} cannot write the value block of "${resource.name}"`,
          'Only a lock granted in PW or EX writes the value block on unlock.')
      }
      this.checkValueBlockSize(options.valueBlock)
      resource.writeValueBlock(options.valueBlock)
    }
    if (lock.state !== 'granted') {
      resource.removeFromQueue(lock)
      this.emitEvent(clientId, { type: 'refused', lockId, code: 'DLM_ABORT' })
    }
    resource.holders.delete(lock)
    client.locks.delete(lockId)
    this.grantPending(resource)
    this.dropIfIdle(resource)
  }

  cancel(clientId: ClientId, lockId: LockId): void {
    const client = this.client(clientId)
    const lock = this.ownedLock(client, lockId)
    const resource = lock.resource
    if (lock.state === 'granted') fail('DLM_CANCELGRANT', `lock ${lockId} has nothing pending to cancel`)
    resource.removeFromQueue(lock)
    if (lock.state === 'waiting') {
      client.locks.delete(lockId)
      this.emitEvent(clientId, { type: 'refused', lockId, code: 'DLM_ABORT' })
    } else {
      lock.state = 'granted'
      lock.requestedMode = null
      this.emitEvent(clientId, { type: 'refused', lockId, code: 'DLM_CANCEL' })
    }
    this.grantPending(resource)
    this.dropIfIdle(resource)
  }

  /** Releases the orphaned persistent locks of a resource (Linux dlm_ls_purge). */
  purgeOrphans(clientId: ClientId, namespace: string, resourceName: string): number {
    const client = this.client(clientId)
    this.checkJoined(client, namespace)
    const resource = this.resources.get(resourceKey(namespace, resourceName))
    if (resource === undefined) return 0
    let purged = 0
    for (const holder of [...resource.holders]) {
      if (holder.owner === null) {
        resource.holders.delete(holder)
        purged++
      }
    }
    this.grantPending(resource)
    this.dropIfIdle(resource)
    return purged
  }

  /** Grants a lock a client held before a broker restart (during or after the grace period). */
  reassert(clientId: ClientId, request: ReassertRequest): Grant {
    const client = this.client(clientId)
    const resource = this.resourceFor(client, request)
    if (!resource.compatibleWithHolders(request.mode, null)) {
      this.dropIfIdle(resource)
      fail('DLM_NOTGRANTED', `re-asserted ${request.mode} lock on "${request.resource}" conflicts`,
        'Another client re-asserted an incompatible lock on this resource first.')
    }
    if (request.valueBlock !== undefined && (request.valueBlockSeq ?? 0) >= resource.valueBlockSeq) {
      this.checkValueBlockSize(request.valueBlock)
      resource.valueBlock = Uint8Array.from(request.valueBlock)
      resource.valueBlockSeq = request.valueBlockSeq ?? 0
      resource.valueBlockValid = request.valueBlockValid ?? true
    } else if (request.valueBlockValid === false) {
      resource.valueBlockValid = false
    }
    const lock = this.newLock(client, resource, request)
    lock.requestedMode = request.mode
    return this.grant(lock, true, undefined)
  }

  // ---- recovery domains ------------------------------------------------------------------

  rdAttach(clientId: ClientId, options: { namespace: string, name: string, scope?: 'process' | 'group',
    group?: string }): RdId {
    const client = this.client(clientId)
    this.checkJoined(client, options.namespace)
    this.checkName(options.name, 'recovery domain')
    const scope = options.scope ?? 'process'
    if (scope !== 'process' && scope !== 'group') fail('DLM_BADPARAM', `unknown attach scope "${String(scope)}"`)
    const group = scope === 'group' ? (options.group ?? '') : null
    if (group !== null && !client.groups.has(group)) {
      fail('DLM_NO_GROUP', `process is not a member of lock group "${group}"`)
    }
    const key = resourceKey(options.namespace, options.name)
    for (const attachment of client.attachments.values()) {
      if (attachment.domain.key === key && attachment.scope === scope) {
        fail('DLM_ATTACHED', `recovery domain "${options.name}" is already attached`,
          `Its id is ${attachment.rdId}.`)
      }
    }
    if (client.attachments.size >= this.limits.domainsPerClientMax) {
      fail('DLM_TOOMANYRD', `cannot attach recovery domain "${options.name}"`)
    }
    let domain = this.domains.get(key)
    if (domain === undefined) {
      domain = new RecoveryDomain(key, options.namespace, options.name)
      this.domains.set(key, domain)
    }
    const attachment: Attachment = { rdId: this.nextRdId++, domain, scope, clientId, group }
    domain.attachments.set(attachment.rdId, attachment)
    this.attachments.set(attachment.rdId, attachment)
    client.attachments.set(attachment.rdId, attachment)
    return attachment.rdId
  }

  rdCollect(clientId: ClientId, rdId: RdId, flags = 0): CollectResult {
    const client = this.client(clientId)
    const domain = this.domainFor(client, rdId, flags)
    if (domain.collection !== null) {
      fail('DLM_EALREADY', `recovery domain "${domain.name}" is already collected`,
        `Collection ${domain.collection.handle} has not been validated yet.`)
    }
    const resources = domain.invalidResources()
    domain.collection = {
      handle: this.nextHandle++, ownerClientId: clientId, resources, orphans: domain.orphans(),
      invalidationsAtCollect: domain.invalidations, memberDeathsAtCollect: domain.memberDeaths,
    }
    domain.state = 'in-recovery'
    return { handle: domain.collection.handle, resources: resources.map((resource) => resource.name) }
  }

  rdValidate(clientId: ClientId, rdId: RdId, handle: number, flags = 0): ValidateResult {
    const client = this.client(clientId)
    const domain = this.domainFor(client, rdId, flags)
    const collection = domain.collection
    if (collection === null || collection.handle !== handle || collection.ownerClientId !== clientId) {
      fail('DLM_IVHNDL', `collection handle ${String(handle)} is not open for recovery domain "${domain.name}"`)
    }
    for (const resource of collection.resources) {
      resource.valueBlock = new Uint8Array(resource.valueBlock.length)
      resource.valueBlockSeq++
      resource.valueBlockValid = true
    }
    for (const orphan of collection.orphans) orphan.resource.holders.delete(orphan)
    domain.collection = null
    const more = domain.invalidations !== collection.invalidationsAtCollect ||
      domain.memberDeaths !== collection.memberDeathsAtCollect || domain.invalidResources().length > 0
    domain.state = more ? 'needs-recovery' : 'recovered'
    const touched = new Set([...collection.resources, ...collection.orphans.map((orphan) => orphan.resource)])
    for (const resource of touched) {
      this.grantPending(resource)
      this.dropIfIdle(resource)
    }
    return {
      status: more ? 'DLM_MORE_TO_RECOVER' : 'DLM_SUCCESS',
      validated: collection.resources.map((resource) => resource.name),
    }
  }

  rdDetach(clientId: ClientId, rdId: RdId, options: { invalidate?: boolean } = {}): void {
    const client = this.client(clientId)
    const domain = this.domainFor(client, rdId, 0)
    for (const lock of client.locks.values()) {
      if (lock.resource.domain === domain) {
        fail('DLM_HASLOCKS', `cannot detach recovery domain "${domain.name}"`,
          `Lock ${lock.id} on "${lock.resource.name}" is still owned.`)
      }
    }
    if (domain.collection?.ownerClientId === clientId) {
      fail('DLM_EINPROGRESS', `cannot detach recovery domain "${domain.name}"`,
        `Collection ${domain.collection.handle} of this process has not been validated.`)
    }
    if (options.invalidate === true) {
      for (const resource of domain.resources) domain.invalidate(resource)
    }
    this.removeAttachment(this.attachments.get(rdId)!)
  }

  // ---- death -----------------------------------------------------------------------------

  /** The client's process died (socket closed, lease expired). */
  clientGone(clientId: ClientId): void {
    const client = this.clients.get(clientId)
    if (client === undefined) return
    this.clients.delete(clientId)
    const touched = new Set<Resource>()
    const invalidated = new Set<RecoveryDomain>()
    for (const domain of this.domains.values()) {
      if (domain.collection?.ownerClientId === clientId) {
        domain.collection = null
        domain.state = 'needs-recovery'
        invalidated.add(domain)
      }
    }
    for (const lock of client.locks.values()) {
      const resource = lock.resource
      touched.add(resource)
      if (lock.state !== 'granted') resource.removeFromQueue(lock)
      if (lock.state === 'waiting') continue
      lock.state = 'granted'
      lock.requestedMode = null
      if (writesValueBlock(lock.grantedMode!)) {
        if (resource.domain === null) resource.valueBlockValid = false
        else {
          resource.domain.invalidate(resource)
          invalidated.add(resource.domain)
        }
      }
      if (lock.persistent) lock.owner = null
      else resource.holders.delete(lock)
    }
    for (const attachment of [...client.attachments.values()]) {
      attachment.domain.memberDeaths++
      this.removeAttachment(attachment)
    }
    for (const resource of touched) {
      this.grantPending(resource)
      this.dropIfIdle(resource)
    }
    for (const domain of invalidated) this.notifyRecoveryNeeded(domain)
  }

  describe(): ManagerSnapshot {
    return describeManager(this)
  }

  // ---- internals -------------------------------------------------------------------------

  private grant(lock: Lock, immediate: boolean, written: Uint8Array | undefined): Grant {
    const resource = lock.resource
    const mode = lock.requestedMode!
    assert(resource.compatibleWithHolders(mode, lock), 'granting an incompatible mode')
    if (lock.state !== 'granted') resource.removeFromQueue(lock)
    if (written !== undefined) resource.writeValueBlock(written)
    lock.grantedMode = mode
    lock.requestedMode = null
    lock.state = 'granted'
    lock.notifiedBlockingMode = null
    resource.holders.add(lock)
    const valid = resource.valueBlockValid
    const status = immediate ? (valid ? 'DLM_SYNCH' : 'DLM_SYNCVALNOTVALID')
      : (valid ? 'DLM_SUCCESS' : 'DLM_SUCCVALNOTVALID')
    return {
      lockId: lock.id, mode, status, valueBlockValid: valid, valueBlockSeq: resource.valueBlockSeq,
      valueBlock: written === undefined ? Uint8Array.from(resource.valueBlock) : undefined,
    }
  }

  /** Grants what the queues allow, conversions first, each queue in order; then notifies blockers. */
  private grantPending(resource: Resource): void {
    while (resource.converting.length > 0) {
      const head = resource.converting[0]!
      if (!resource.compatibleWithHolders(head.requestedMode!, head)) break
      this.emitGrant(head)
    }
    while (resource.converting.length === 0 && resource.waiting.length > 0) {
      const head = resource.waiting[0]!
      if (!resource.compatibleWithHolders(head.requestedMode!, null)) break
      this.emitGrant(head)
    }
    this.notifyBlockers(resource)
  }

  private emitGrant(lock: Lock): void {
    const grant = this.grant(lock, false, undefined)
    assert(lock.owner !== null, 'a queued lock has no owner')
    this.emitEvent(lock.owner, { type: 'granted', ...grant })
  }

  /** Blocking notifications (blocking ASTs) to holders that block the head of each queue. */
  private notifyBlockers(resource: Resource): void {
    for (const head of [resource.converting[0], resource.waiting[0]]) {
      if (head === undefined) continue
      const mode = head.requestedMode!
      for (const blocker of resource.blockersOf(head)) {
        if (blocker.owner === null) continue
        const notified = blocker.notifiedBlockingMode
        if (notified !== null && modeRank(notified) >= modeRank(mode)) continue
        blocker.notifiedBlockingMode = mode
        this.emitEvent(blocker.owner, { type: 'blocking', lockId: blocker.id, mode })
      }
    }
  }

  private notifyRecoveryNeeded(domain: RecoveryDomain): void {
    for (const attachment of domain.attachments.values()) {
      const event: DlmEvent = { type: 'recovery-needed', rdId: attachment.rdId, domain: domain.name }
      if (attachment.scope === 'process') this.emitEvent(attachment.clientId, event)
      else {
        for (const client of this.clients.values()) {
          if (client.groups.has(attachment.group!)) this.emitEvent(client.id, event)
        }
      }
    }
  }

  private newLock(client: ClientRecord, resource: Resource, request: LockRequest): Lock {
    if (client.locks.size >= this.limits.locksPerClientMax) {
      this.dropIfIdle(resource)
      fail('DLM_INSFMEM', `too many locks owned by process ${client.pid}`)
    }
    const lock: Lock = {
      id: this.nextLockId++, owner: client.id, resource, persistent: request.persistent === true,
      state: 'granted', grantedMode: null, requestedMode: null, notifiedBlockingMode: null,
    }
    client.locks.set(lock.id, lock)
    return lock
  }

  private resourceFor(client: ClientRecord, request: LockRequest): Resource {
    this.checkJoined(client, request.namespace)
    if (!isLockMode(request.mode)) fail('DLM_BADPARAM', `unknown lock mode "${String(request.mode)}"`)
    const nameBytes = typeof request.resource === 'string' ? encoder.encode(request.resource).length : 0
    if (nameBytes === 0 || nameBytes > this.limits.resourceNameBytesMax) {
      fail('DLM_IVBUFLEN', `resource name must be 1 to ${this.limits.resourceNameBytesMax} bytes`,
        `Got ${nameBytes} bytes.`)
    }
    const domain = request.rdId === undefined ? null : this.domainFor(client, request.rdId, 0)
    if (request.persistent === true && domain === null) {
      fail('DLM_BADPARAM', `persistent lock on "${request.resource}" needs a recovery domain`)
    }
    if (domain !== null && domain.namespace !== request.namespace) {
      fail('DLM_BADPARAM', `recovery domain "${domain.name}" is in namespace "${domain.namespace}"`)
    }
    const key = resourceKey(request.namespace, request.resource)
    let resource = this.resources.get(key)
    if (resource === undefined) {
      resource = new Resource(key, request.namespace, request.resource, domain)
      this.resources.set(key, resource)
      domain?.resources.add(resource)
      return resource
    }
    if (resource.domain !== null && domain === null) {
      fail('DLM_IS_PR', `"${request.resource}" belongs to recovery domain "${resource.domain.name}"`)
    }
    if (resource.domain === null && domain !== null) {
      fail('DLM_NOT_PR', `"${request.resource}" exists outside any recovery domain`)
    }
    if (resource.domain !== domain) {
      fail('DLM_PR_RD_MISMATCH', `"${request.resource}" belongs to recovery domain "${resource.domain!.name}"`)
    }
    return resource
  }

  private domainFor(client: ClientRecord, rdId: RdId, flags: number): RecoveryDomain {
    if (client.namespaces.size === 0) fail('DLM_NOTATTACHED', 'the process has not joined a namespace')
    if (!Number.isSafeInteger(rdId) || rdId <= 0) fail('DLM_BADPARAM', `recovery domain id out of range: ${String(rdId)}`)
    if (flags !== 0) fail('DLM_BADPARAM', `reserved flags must be 0, got ${String(flags)}`)
    const attachment = this.attachments.get(rdId)
    if (attachment === undefined || (attachment.scope === 'process' && attachment.clientId !== client.id)) {
      fail('DLM_IVRDID', `no recovery domain with id ${rdId} is attached by this process`)
    }
    if (attachment.scope === 'group' && !client.groups.has(attachment.group!)) {
      fail('DLM_NO_GROUP', `recovery domain ${rdId} belongs to lock group "${attachment.group!}"`,
        'The process is not a member of that group.')
    }
    this.checkJoined(client, attachment.domain.namespace)
    return attachment.domain
  }

  private removeAttachment(attachment: Attachment): void {
    const domain = attachment.domain
    domain.attachments.delete(attachment.rdId)
    this.attachments.delete(attachment.rdId)
    this.clients.get(attachment.clientId)?.attachments.delete(attachment.rdId)
    // A domain whose last member left is forgotten only if none of its resources must be kept
    // (dropIfIdle): a value block a dead member left not valid is what the next member collects.
    if (domain.attachments.size === 0 && domain.collection === null &&
        [...domain.resources].every((resource) => resource.isIdle() && resource.valueBlockValid &&
          resource.valueBlockSeq === 0)) {
      for (const resource of domain.resources) this.resources.delete(resource.key)
      this.domains.delete(domain.key)
    }
  }

  private dropIfIdle(resource: Resource): void {
    // An idle resource is forgotten unless that would lose something: a value block that is not
    // valid (VMS keeps reporting it; a domain must be able to collect it), or, inside a recovery
    // domain, a value block that was ever written (like lvmlockd's VG version). Resources of a
    // domain that never carried a value block (per-extent locks) go, so memory stays bounded.
    if (!resource.isIdle() || !resource.valueBlockValid) return
    const domain = resource.domain
    if (domain !== null) {
      if (resource.valueBlockSeq > 0 || domain.collection?.resources.includes(resource) === true) return
      domain.resources.delete(resource)
    }
    this.resources.delete(resource.key)
  }

  private checkValueBlockWrite(lock: Lock, valueBlock: Uint8Array, down: boolean): void {
    if (!writesValueBlock(lock.grantedMode!) || !down) {
      fail('DLM_BADPARAM', `lock ${lock.id} cannot write the value block of "${lock.resource.name}"`,
        'Only a down-conversion from PW or EX writes the value block.')
    }
    this.checkValueBlockSize(valueBlock)
  }

  private checkValueBlockSize(valueBlock: Uint8Array): void {
    if (!(valueBlock instanceof Uint8Array) || valueBlock.length > this.limits.valueBlockBytesMax) {
      fail('DLM_IVBUFLEN', `value block must be at most ${this.limits.valueBlockBytesMax} bytes`)
    }
  }

  private checkName(name: string, what: string): void {
    const bytes = typeof name === 'string' ? encoder.encode(name).length : 0
    if (bytes === 0 || bytes > this.limits.nameBytesMax) {
      fail('DLM_ENAMETOOLONG', `${what} name must be 1 to ${this.limits.nameBytesMax} bytes`, `Got ${bytes}.`)
    }
  }

  private checkJoined(client: ClientRecord, namespace: string): void {
    if (!client.namespaces.has(namespace)) fail('DLM_NOTATTACHED', `namespace "${namespace}" was not joined`)
  }

  private checkEnabled(): void {
    if (!this.enabled) fail('DLM_ENOSYS', 'the lock manager is not enabled')
  }

  private refuseGrace(resource: string): never {
    fail('DLM_RETRY', `lock broker is in its restart grace period; "${resource}" not granted`,
      'Clients are re-asserting the locks they held before the restart.')
  }

  private client(clientId: ClientId): ClientRecord {
    this.checkEnabled()
    const client = this.clients.get(clientId)
    if (client === undefined) fail('DLM_NOTATTACHED', `unknown client ${clientId}`)
    return client
  }

  private ownedLock(client: ClientRecord, lockId: LockId): Lock {
    const lock = client.locks.get(lockId)
    if (lock === undefined) fail('DLM_IVLOCKID', `no lock ${String(lockId)} is owned by this process`)
    return lock
  }

  /** Checks every invariant of the file header; tests call it after each step. */
  checkInvariants(): void {
    for (const resource of this.resources.values()) {
      const holders = [...resource.holders]
      for (const [index, a] of holders.entries()) {
        assert(a.grantedMode !== null, 'holder without granted mode')
        for (const b of holders.slice(index + 1)) {
          assert(modesCompatible(a.grantedMode, b.grantedMode!), `incompatible holders on ${resource.key}`)
        }
        if (a.owner !== null) assert(this.clients.get(a.owner)?.locks.get(a.id) === a, 'holder not indexed')
      }
      for (const lock of resource.converting) {
        assert(lock.state === 'converting' && resource.holders.has(lock), 'converting lock not held')
      }
      for (const lock of resource.waiting) {
        assert(lock.state === 'waiting' && lock.grantedMode === null, 'waiting lock has a mode')
      }
    }
    for (const domain of this.domains.values()) {
      if (domain.collection !== null) assert(this.clients.has(domain.collection.ownerClientId), 'dead collector')
    }
  }
}

export function resourceKey(namespace: string, name: string): string {
  return `${namespace}\u0000${name}`
}
