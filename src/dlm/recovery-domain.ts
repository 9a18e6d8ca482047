/**
 * A recovery domain (Tru64 dlm_rd_*): a set of resources whose value blocks are recovered
 * together. States and transitions:
 *
 *   recovered --(a PW/EX holder of one of its resources dies)--> needs-recovery
 *   any       --(collect)--> in-recovery  (even with an empty collection)
 *   in-recovery --(validate, nothing new)--> recovered
 *   in-recovery --(validate, new invalidations or an attached member died)--> needs-recovery
 *                  (returns DLM_MORE_TO_RECOVER)
 *   in-recovery --(collector dies)--> needs-recovery (the collection is given back)
 *
 * Invariants: at most one open collection per domain; a collection is owned by one client.
 */
import type { Lock, Resource } from './resource.js'
import type { ClientId, RdId } from './types.js'

export type DomainState = 'recovered' | 'needs-recovery' | 'in-recovery'

export interface Attachment {
  readonly rdId: RdId
  readonly domain: RecoveryDomain
  readonly scope: 'process' | 'group'
  readonly clientId: ClientId
  readonly group: string | null
}

export interface Collection {
  readonly handle: number
  readonly ownerClientId: ClientId
  readonly resources: readonly Resource[]
  readonly orphans: readonly Lock[]
  readonly invalidationsAtCollect: number
  readonly memberDeathsAtCollect: number
}

export class RecoveryDomain {
  readonly resources = new Set<Resource>()
  readonly attachments = new Map<RdId, Attachment>()
  /** Counts value-block invalidations; validate compares it with the count at collect. */
  invalidations = 0
  /** Counts deaths of attached members. */
  memberDeaths = 0
  collection: Collection | null = null
  state: DomainState = 'recovered'

  constructor(readonly key: string, readonly namespace: string, readonly name: string) {}

  invalidate(resource: Resource): void {
    resource.valueBlockValid = false
    this.invalidations++
    if (this.state === 'recovered') this.state = 'needs-recovery'
  }

  invalidResources(): Resource[] {
    return [...this.resources].filter((resource) => !resource.valueBlockValid)
  }

  orphans(): Lock[] {
    const orphans: Lock[] = []
    for (const resource of this.resources) {
      for (const holder of resource.holders) if (holder.owner === null) orphans.push(holder)
    }
    return orphans
  }
}
