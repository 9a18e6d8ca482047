/** A lock manager with recorded events and short helpers, shared by the dlm unit tests. */
import { LockManager, type DlmEvent, type LockMode, type LockResult } from '../../src/dlm/index.js'

export interface Harness {
  readonly manager: LockManager
  readonly events: Array<[number, DlmEvent]>
  client(pid?: number): number
  lock(client: number, resource: string, mode: LockMode, extra?: { noQueue?: boolean, rdId?: number,
    persistent?: boolean }): LockResult
  take(client?: number): DlmEvent[]
}

export function harness(): Harness {
  const events: Array<[number, DlmEvent]> = []
  const manager = new LockManager({ emit: (clientId, event) => events.push([clientId, event]) })
  return {
    manager,
    events,
    client(pid = 1000) {
      const id = manager.addClient({ pid })
      manager.nsJoin(id, 'ns')
      return id
    },
    lock(client, resource, mode, extra = {}) {
      const result = manager.lock(client, { namespace: 'ns', resource, mode, ...extra })
      manager.checkInvariants()
      return result
    },
    take(client) {
      const taken = events.filter(([id]) => client === undefined || id === client).map(([, event]) => event)
      const kept = events.filter(([id]) => !(client === undefined || id === client))
      events.length = 0
      events.push(...kept)
      return taken
    },
  }
}

export function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values)
}
