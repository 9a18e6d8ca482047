/** A plain-data view of the lock manager for `lvmfs locks` and tests. */
import type { LockManager } from './lock-manager.js'
import type { LockMode } from './modes.js'
import type { Lock } from './resource.js'

export interface LockView {
  readonly lockId: number
  readonly owner: number | null
  readonly pid: number | null
  readonly grantedMode: LockMode | null
  readonly requestedMode: LockMode | null
  readonly persistent: boolean
}

export interface ResourceView {
  readonly namespace: string
  readonly name: string
  readonly domain: string | null
  readonly valueBlockValid: boolean
  readonly valueBlockHex: string
  readonly holders: readonly LockView[]
  readonly converting: readonly LockView[]
  readonly waiting: readonly LockView[]
}

export interface CollectionView {
  readonly handle: number
  readonly owner: number
  readonly resources: readonly string[]
}

export interface DomainView {
  readonly namespace: string
  readonly name: string
  readonly state: string
  readonly attachedRdIds: readonly number[]
  readonly collection: CollectionView | null
}

export interface ManagerSnapshot {
  readonly grace: boolean
  readonly clients: ReadonlyArray<{ readonly id: number, readonly pid: number, readonly label: string,
    readonly namespaces: readonly string[] }>
  readonly resources: readonly ResourceView[]
  readonly domains: readonly DomainView[]
}

export function describeManager(manager: LockManager): ManagerSnapshot {
  const pidOf = (owner: number | null): number | null =>
    owner === null ? null : (manager.clients.get(owner)?.pid ?? null)
  const view = (lock: Lock): LockView => ({
    lockId: lock.id, owner: lock.owner, pid: pidOf(lock.owner), grantedMode: lock.grantedMode,
    requestedMode: lock.requestedMode, persistent: lock.persistent,
  })
  return {
    grace: manager.grace,
    clients: [...manager.clients.values()].map((client) => ({
      id: client.id, pid: client.pid, label: client.label, namespaces: [...client.namespaces],
    })),
    resources: [...manager.resources.values()].map((resource) => ({
      namespace: resource.namespace, name: resource.name, domain: resource.domain?.name ?? null,
      valueBlockValid: resource.valueBlockValid,
      valueBlockHex: Buffer.from(resource.valueBlock).toString('hex'),
      holders: [...resource.holders].map(view),
      converting: resource.converting.map(view),
      waiting: resource.waiting.map(view),
    })),
    domains: [...manager.domains.values()].map((domain) => ({
      namespace: domain.namespace, name: domain.name, state: domain.state,
      attachedRdIds: [...domain.attachments.keys()],
      collection: domain.collection === null ? null : {
        handle: domain.collection.handle, owner: domain.collection.ownerClientId,
        resources: domain.collection.resources.map((resource) => resource.name),
      },
    })),
  }
}
