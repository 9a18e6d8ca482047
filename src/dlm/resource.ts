/**
 * One resource: its three queues and its lock value block.
 *
 * Invariants:
 *  - a lock is in exactly one state: waiting (in `waiting`, no granted mode), converting (in
 *    `holders` with its granted mode AND in `converting` with the requested mode) or granted
 *    (in `holders` only);
 *  - the granted modes of all holders are pairwise compatible;
 *  - `converting` and `waiting` are FIFO; conversions are granted before new requests, each queue
 *    strictly in order (a blocked head blocks those behind it);
 *  - an orphan (owner null) is a persistent lock whose owner died: it stays in `holders`, keeps
 *    blocking, and is never in a queue.
 */
import type { RecoveryDomain } from './recovery-domain.js'
import { modesCompatible, type LockMode } from './modes.js'
import type { ClientId, LockId } from './types.js'

export type LockState = 'waiting' | 'converting' | 'granted'

export interface Lock {
  readonly id: LockId
  /** null once the owner died and the lock is an orphan. */
  owner: ClientId | null
  readonly resource: Resource
  readonly persistent: boolean
  state: LockState
  grantedMode: LockMode | null
  requestedMode: LockMode | null
  /** The highest blocked mode this holder has been notified about since its last grant. */
  notifiedBlockingMode: LockMode | null
}

export class Resource {
  readonly holders = new Set<Lock>()
  readonly converting: Lock[] = []
  readonly waiting: Lock[] = []
  valueBlock: Uint8Array = new Uint8Array(0)
  valueBlockValid = true
  /** Counts writes; re-assertion after a broker restart keeps the newest copy. */
  valueBlockSeq = 0

  constructor(
    readonly key: string,
    readonly namespace: string,
    readonly name: string,
    public domain: RecoveryDomain | null,
  ) {}

  isIdle(): boolean {
    return this.holders.size === 0 && this.converting.length === 0 && this.waiting.length === 0
  }

  /** True when `mode` is compatible with the granted mode of every holder except `except`. */
  compatibleWithHolders(mode: LockMode, except: Lock | null): boolean {
    for (const holder of this.holders) {
      if (holder === except) continue
      if (!modesCompatible(holder.grantedMode!, mode)) return false
    }
    return true
  }

  /** Holders (not `head`) whose granted mode blocks `head`'s requested mode. */
  blockersOf(head: Lock): Lock[] {
    const blockers: Lock[] = []
    for (const holder of this.holders) {
      if (holder !== head && !modesCompatible(holder.grantedMode!, head.requestedMode!)) {
        blockers.push(holder)
      }
    }
    return blockers
  }

  writeValueBlock(valueBlock: Uint8Array): void {
    this.valueBlock = Uint8Array.from(valueBlock)
    this.valueBlockSeq++
    // A resource of a recovery domain stays not valid until the domain is validated: recovery,
    // not an ordinary write, is what makes it trustworthy again (domain.md §3, Tru64 rd).
    if (this.domain === null) this.valueBlockValid = true
  }

  removeFromQueue(lock: Lock): void {
    const queue = lock.state === 'waiting' ? this.waiting : this.converting
    const index = queue.indexOf(lock)
    if (index >= 0) queue.splice(index, 1)
  }
}
