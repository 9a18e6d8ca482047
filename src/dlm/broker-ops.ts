/**
 * Request dispatch of the broker: checks each request's argument object (a missing field that
 * names an output handle or a lock is DLM_EFAULT, the protocol's "bad pointer") and calls the
 * LockManager. Results are plain JSON (value blocks in base64).
 */
import { LvmfsError } from '../errors/index.js'
import type { Connection } from './broker.js'
import type { LockManager } from './lock-manager.js'
import { decodeValueBlock, wireGrant } from './protocol.js'
import type { ClientId, LockResult } from './types.js'

export type Args = Record<string, unknown>

function need(args: Args, field: string, type: 'string' | 'number'): never | string | number {
  const value = args[field]
  if (typeof value !== type) {
    throw new LvmfsError('DLM_EFAULT', `argument "${field}" must be a ${type}`,
      { detail: `Got ${value === undefined ? 'nothing' : typeof value}.` })
  }
  return value as string | number
}

const str = (args: Args, field: string): string => need(args, field, 'string') as string
const num = (args: Args, field: string): number => need(args, field, 'number') as number
const optNum = (args: Args, field: string): number | undefined =>
  args[field] === undefined ? undefined : num(args, field)

function wireLock(result: LockResult): unknown {
  return result.granted ? { granted: true, ...wireGrant(result) } : result
}

type Op = (manager: LockManager, clientId: ClientId, args: Args) => unknown

const OPS: Record<string, Op> = {
  nsJoin: (m, c, a) => m.nsJoin(c, str(a, 'namespace')),
  nsLeave: (m, c, a) => m.nsLeave(c, str(a, 'namespace')),
  groupJoin: (m, c, a) => m.groupJoin(c, str(a, 'group')),
  lock: (m, c, a) => {
    const rdId = optNum(a, 'rdId')
    return wireLock(m.lock(c, {
      namespace: str(a, 'namespace'), resource: str(a, 'resource'), mode: str(a, 'mode') as 'NL',
      noQueue: a['noQueue'] === true, persistent: a['persistent'] === true,
      ...(rdId === undefined ? {} : { rdId }),
    }))
  },
  convert: (m, c, a) => {
    const valueBlock = decodeValueBlock(a['valueBlock'])
    return wireLock(m.convert(c, num(a, 'lockId'), str(a, 'mode') as 'NL', {
      noQueue: a['noQueue'] === true, ...(valueBlock === undefined ? {} : { valueBlock }),
    }))
  },
  unlock: (m, c, a) => {
    const valueBlock = decodeValueBlock(a['valueBlock'])
    m.unlock(c, num(a, 'lockId'), valueBlock === undefined ? {} : { valueBlock })
  },
  cancel: (m, c, a) => m.cancel(c, num(a, 'lockId')),
  purge: (m, c, a) => m.purgeOrphans(c, str(a, 'namespace'), str(a, 'resource')),
  rdAttach: (m, c, a) => m.rdAttach(c, {
    namespace: str(a, 'namespace'), name: str(a, 'name'),
    scope: a['scope'] === undefined ? 'process' : str(a, 'scope') as 'process',
    ...(typeof a['group'] === 'string' ? { group: a['group'] } : {}),
  }),
  rdCollect: (m, c, a) => m.rdCollect(c, num(a, 'rdId'), optNum(a, 'flags') ?? 0),
  rdValidate: (m, c, a) => m.rdValidate(c, num(a, 'rdId'), num(a, 'handle'), optNum(a, 'flags') ?? 0),
  rdDetach: (m, c, a) => m.rdDetach(c, num(a, 'rdId'), { invalidate: a['invalidate'] === true }),
  ping: () => ({ pid: process.pid }),
}

export function dispatch(manager: LockManager, connection: Connection, op: string, args: Args): unknown {
  if (op === 'describe') return manager.describe()
  const handler = OPS[op]
  if (handler === undefined) throw new LvmfsError('ENGINE_PROTOCOL', `unknown lock broker request "${op}"`)
  if (connection.clientId === null) {
    throw new LvmfsError('DLM_NOTATTACHED', `"${op}" before hello`, { hint: 'Send hello first.' })
  }
  return handler(manager, connection.clientId, args) ?? null
}
