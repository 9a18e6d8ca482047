/**
 * Property tests: random lock / convert / unlock / cancel / kill / purge sequences run against the
 * LockManager and against a small independent model written from the rules in docs/dlm.md (its
 * own compatibility table, plain arrays, no shared code). After every step:
 *  - the holders seen by clients (results and grant events) are pairwise compatible;
 *  - the manager's holders and queues equal the model's.
 * At the end every holder leaves; every request still pending must then have been granted or
 * refused, and nothing may remain.
 */
import fc from 'fast-check'
import t from 'tap'
import { LockManager, type DlmEvent, type LockMode } from '../../../src/dlm/index.js'

const MODES: LockMode[] = ['NL', 'CR', 'CW', 'PR', 'PW', 'EX']
const OK = ['111111', '111110', '111000', '110100', '110000', '100000']
const compat = (a: LockMode, b: LockMode): boolean => OK[MODES.indexOf(a)]![MODES.indexOf(b)] === '1'
const isDown = (from: LockMode, to: LockMode): boolean => MODES.every((m) => !compat(from, m) || compat(to, m))

interface ModelLock { id: number, owner: number | null, res: string, granted: LockMode | null,
  wanted: LockMode | null, persistent: boolean }

/** The independent model: per resource, holders plus two FIFO queues kept as id arrays. */
class Model {
  locks = new Map<number, ModelLock>()
  convQ = new Map<string, number[]>()
  waitQ = new Map<string, number[]>()
  private q(map: Map<string, number[]>, res: string): number[] {
    if (!map.has(res)) map.set(res, [])
    return map.get(res)!
  }
  holders(res: string, except?: number): ModelLock[] {
    return [...this.locks.values()].filter((l) => l.res === res && l.granted !== null && l.id !== except)
  }
  fits(res: string, mode: LockMode, except?: number): boolean {
    return this.holders(res, except).every((h) => compat(h.granted!, mode))
  }
  request(id: number, owner: number, res: string, mode: LockMode, noQueue: boolean, persistent: boolean): string {
    const now = this.q(this.convQ, res).length === 0 && this.q(this.waitQ, res).length === 0 && this.fits(res, mode)
    if (!now && noQueue) return 'DLM_NOTQUEUED'
    this.locks.set(id, { id, owner, res, granted: now ? mode : null, wanted: now ? null : mode, persistent })
    if (!now) this.q(this.waitQ, res).push(id)
    return 'ok'
  }
  convert(id: number, mode: LockMode, noQueue: boolean): string {
    const l = this.locks.get(id)!
    if (l.granted === null) return 'DLM_CVTUNGRANT'
    if (l.wanted !== null) return 'DLM_LKBUSY'
    const down = isDown(l.granted, mode)
    const conv = this.q(this.convQ, l.res)
    if (this.fits(l.res, mode, id) && (down || conv.length === 0)) {
      l.granted = mode
      this.settle(l.res)
      return 'ok'
    }
    if (noQueue) return 'DLM_NOTQUEUED'
    if (conv.some((other) => !compat(l.granted!, this.locks.get(other)!.wanted!))) return 'DLM_DEADLOCK'
    l.wanted = mode
    conv.push(id)
    return 'ok'
  }
  remove(id: number): void {
    const l = this.locks.get(id)!
    for (const map of [this.convQ, this.waitQ]) map.set(l.res, this.q(map, l.res).filter((x) => x !== id))
    this.locks.delete(id)
    this.settle(l.res)
  }
  cancel(id: number): string {
    const l = this.locks.get(id)!
    if (l.wanted === null) return 'DLM_CANCELGRANT'
    if (l.granted === null) this.remove(id)
    else {
      l.wanted = null
      this.convQ.set(l.res, this.q(this.convQ, l.res).filter((x) => x !== id))
      this.settle(l.res)
    }
    return 'ok'
  }
  /** A dead owner's requests vanish and its holds go (persistent ones stay as orphans), then settle. */
  kill(owner: number): void {
    const touched = new Set<string>()
    for (const l of [...this.locks.values()].filter((x) => x.owner === owner)) {
      touched.add(l.res)
      for (const map of [this.convQ, this.waitQ]) map.set(l.res, this.q(map, l.res).filter((x) => x !== l.id))
      l.wanted = null
      if (l.granted !== null && l.persistent) l.owner = null
      else this.locks.delete(l.id)
    }
    for (const res of touched) this.settle(res)
  }
  purge(res: string): void {
    for (const l of [...this.locks.values()]) if (l.res === res && l.owner === null) this.remove(l.id)
  }
  settle(res: string): void {
    const conv = this.q(this.convQ, res)
    while (conv.length > 0 && this.fits(res, this.locks.get(conv[0]!)!.wanted!, conv[0])) {
      const l = this.locks.get(conv.shift()!)!
      l.granted = l.wanted
      l.wanted = null
    }
    const wait = this.q(this.waitQ, res)
    while (conv.length === 0 && wait.length > 0 && this.fits(res, this.locks.get(wait[0]!)!.wanted!)) {
      const l = this.locks.get(wait.shift()!)!
      l.granted = l.wanted
      l.wanted = null
    }
  }
}

const opArb = fc.oneof(
  fc.record({ op: fc.constant('lock' as const), who: fc.nat(3), res: fc.nat(2), mode: fc.constantFrom(...MODES),
    noQueue: fc.boolean(), persistent: fc.boolean() }),
  fc.record({ op: fc.constant('convert' as const), who: fc.nat(3), pick: fc.nat(), mode: fc.constantFrom(...MODES),
    noQueue: fc.boolean() }),
  fc.record({ op: fc.constant('unlock' as const), who: fc.nat(3), pick: fc.nat() }),
  fc.record({ op: fc.constant('cancel' as const), who: fc.nat(3), pick: fc.nat() }),
  fc.record({ op: fc.constant('kill' as const), who: fc.nat(3) }),
  fc.record({ op: fc.constant('purge' as const), who: fc.nat(3), res: fc.nat(2) }),
)

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (error) {
    return (error as { code: string }).code
  }
}

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never

function run(ops: Op[]): void {
  const seen = new Map<number, LockMode>() // what clients believe they hold, from results and events
  const pending = new Set<number>()
  const onEvent = (_client: number, event: DlmEvent): void => {
    if (event.type === 'granted') {
      if (!pending.delete(event.lockId) && !seen.has(event.lockId)) throw new Error(`unexpected grant ${event.lockId}`)
      seen.set(event.lockId, event.mode)
    }
    if (event.type === 'refused') pending.delete(event.lockId)
  }
  const m = new LockManager({ emit: onEvent })
  const model = new Model()
  const slots: number[] = []
  const rd = new Map<number, number>()
  const spawn = (slot: number): void => {
    const id = m.addClient({ pid: slot })
    m.nsJoin(id, 'ns')
    rd.set(id, m.rdAttach(id, { namespace: 'ns', name: 'rd' }))
    slots[slot] = id
  }
  for (let slot = 0; slot < 4; slot++) spawn(slot)
  const owned = (client: number): number[] =>
    [...model.locks.values()].filter((l) => l.owner === client).map((l) => l.id).sort((a, b) => a - b)
  const check = (): void => {
    m.checkInvariants()
    const view = m.describe()
    const actual = view.resources.flatMap((r) => [
      ...r.holders.map((l) => `${r.name}:${l.lockId}:${l.grantedMode}:${l.requestedMode ?? '-'}:${l.owner ?? 'orphan'}`),
      ...r.waiting.map((l) => `${r.name}:${l.lockId}:-:${l.requestedMode}:${l.owner}`)]).sort()
    const expected = [...model.locks.values()].map((l) =>
      `${l.res}:${l.id}:${l.granted ?? '-'}:${l.wanted ?? '-'}:${l.owner ?? 'orphan'}`).sort()
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new Error(`manager ${JSON.stringify(actual)} != model ${JSON.stringify(expected)}`)
    }
    for (const r of view.resources) {
      for (const a of r.holders) {
        for (const b of r.holders) {
          if (a !== b && !compat(a.grantedMode!, b.grantedMode!)) throw new Error(`incompatible ${r.name}`)
        }
      }
    }
  }
  for (const step of ops) {
    const client = slots[step.who]!
    if (step.op === 'lock') {
      const res = `R${step.res}`
      let result: ReturnType<LockManager['lock']> | undefined
      const code = codeOf(() => {
        result = m.lock(client, { namespace: 'ns', resource: res, mode: step.mode, noQueue: step.noQueue,
          rdId: rd.get(client)!, persistent: step.persistent })
      })
      const id = result?.lockId ?? -1
      const expected = model.request(id, client, res, step.mode, step.noQueue, step.persistent)
      if (code !== expected) throw new Error(`lock: ${code} != model ${expected}`)
      if (result?.granted === true) seen.set(id, result.mode)
      else if (result !== undefined) pending.add(id)
    } else if (step.op === 'kill') {
      for (const id of owned(client)) {
        pending.delete(id)
        seen.delete(id)
      }
      m.clientGone(client)
      model.kill(client)
      spawn(step.who)
    } else if (step.op === 'purge') {
      m.purgeOrphans(client, 'ns', `R${step.res}`)
      model.purge(`R${step.res}`)
    } else {
      const mine = owned(client)
      if (mine.length === 0) continue
      const id = mine[step.pick % mine.length]!
      if (step.op === 'unlock') {
        m.unlock(client, id)
        model.remove(id)
        seen.delete(id)
      } else if (step.op === 'cancel') {
        const code = codeOf(() => m.cancel(client, id))
        const expected = model.cancel(id)
        if (code !== expected) throw new Error(`cancel: ${code} != model ${expected}`)
      } else {
        const code = codeOf(() => {
          const result = m.convert(client, id, step.mode, { noQueue: step.noQueue })
          if (result.granted) seen.set(id, result.mode)
          else pending.add(id)
        })
        const expected = model.convert(id, step.mode, step.noQueue)
        if (code !== expected) throw new Error(`convert: ${code} != model ${expected}`)
      }
    }
    check()
  }
  // Every holder leaves; then nothing may stay pending or held.
  for (let round = 0; round < 64 && model.locks.size > 0; round++) {
    for (const l of [...model.locks.values()]) {
      if (l.owner === null) {
        m.purgeOrphans(slots[0]!, 'ns', l.res)
        model.purge(l.res)
      } else if (model.locks.has(l.id) && l.granted !== null && l.wanted === null) {
        m.unlock(l.owner, l.id)
        model.remove(l.id)
      }
      check()
    }
  }
  if (model.locks.size !== 0 || pending.size !== 0) throw new Error(`left over: ${[...pending].join(',')}`)
  if (m.describe().resources.some((r) => r.holders.length + r.waiting.length + r.converting.length > 0)) {
    throw new Error('manager still holds locks')
  }
}

void t.test('random lock/convert/unlock/cancel/kill sequences agree with the model and stay live', async (t) => {
  // Histories that once failed (kept as regressions, fast-check `examples`).
  const examples: Op[][][] = [[[
    { op: 'lock', who: 2, res: 0, mode: 'EX', noQueue: false, persistent: false },
    { op: 'lock', who: 2, res: 0, mode: 'PR', noQueue: false, persistent: true },
    { op: 'kill', who: 2 },
    { op: 'purge', who: 0, res: 0 },
  ]], [[
    // A granted CW -> PR conversion (neither down nor up) must grant the PR queued behind CW.
    { op: 'lock', who: 3, res: 0, mode: 'CW', noQueue: false, persistent: false },
    { op: 'lock', who: 0, res: 0, mode: 'PR', noQueue: false, persistent: false },
    { op: 'convert', who: 3, pick: 0, mode: 'PR', noQueue: false },
    { op: 'convert', who: 0, pick: 0, mode: 'NL', noQueue: false },
  ]]]
  fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => run(ops)),
    { numRuns: 400, examples })
  t.pass('400 random histories')
})
