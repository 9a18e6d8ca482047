/**
 * LockManager queues, conversions, blocking notifications, value blocks and persistent locks.
 * Each test drives the state machine directly and asserts grants, events and codes; invariants
 * are checked after every lock call by the harness.
 */
import t from 'tap'
import { bytes, harness } from '../../helpers/dlm-harness.js'

void t.test('lock() grants compatible requests at once and queues incompatible ones in FIFO order', async (t) => {
  const h = harness()
  const [a, b, c, d] = [h.client(1), h.client(2), h.client(3), h.client(4)]
  const held = h.lock(a, 'R', 'PR')
  t.match(held, { granted: true, status: 'DLM_SYNCH', valueBlockValid: true })
  const ex = h.lock(b, 'R', 'EX')
  t.equal(ex.granted, false)
  const pr = h.lock(c, 'R', 'PR')
  t.equal(pr.granted, false, 'compatible with the holder, but behind a queued EX (strict FIFO)')
  const nl = h.lock(d, 'R', 'NL')
  t.equal(nl.granted, false, 'NL too waits its turn')
  t.same(h.take(a), [{ type: 'blocking', lockId: held.lockId, mode: 'EX' }], 'one blocking notification')
  h.manager.unlock(a, held.lockId)
  const granted = h.take().filter((e) => e.type === 'granted').map((e) => e.lockId)
  t.same(granted, [ex.lockId], 'EX granted first; PR and NL keep waiting')
  h.manager.unlock(b, ex.lockId)
  t.same(h.take().filter((e) => e.type === 'granted').map((e) => e.lockId), [pr.lockId, nl.lockId])
  h.manager.checkInvariants()
})

void t.test('convert() grants conversions before new requests', async (t) => {
  const h = harness()
  const [a, b, c] = [h.client(1), h.client(2), h.client(3)]
  const la = h.lock(a, 'R', 'PR')
  const lb = h.lock(b, 'R', 'PR')
  const waiter = h.lock(c, 'R', 'PR')
  t.equal(waiter.granted, true, 'PR with PR')
  const cw = h.manager.convert(a, la.lockId, 'EX')
  t.equal(cw.granted, false)
  const newEx = h.lock(c, 'R2', 'EX')
  t.equal(newEx.granted, true, 'other resource unaffected')
  const queued = h.lock(b, 'R', 'CR')
  t.equal(queued.granted, false, 'a new request queues behind a pending conversion')
  h.manager.unlock(b, lb.lockId)
  h.manager.unlock(c, waiter.lockId)
  const grants = h.take().filter((e) => e.type === 'granted')
  t.same(grants.map((e) => e.lockId), [la.lockId], 'the conversion is granted; CR still waits for EX')
  h.manager.convert(a, la.lockId, 'NL')
  t.same(h.take(b).filter((e) => e.type === 'granted').map((e) => e.lockId), [queued.lockId])
})

void t.test('convert() refuses a conversion deadlock with DLM_DEADLOCK and keeps the granted mode', async (t) => {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const la = h.lock(a, 'R', 'PR')
  const lb = h.lock(b, 'R', 'PR')
  t.equal(h.manager.convert(a, la.lockId, 'EX').granted, false)
  t.throws(() => h.manager.convert(b, lb.lockId, 'EX'), { code: 'DLM_DEADLOCK' })
  const view = h.manager.describe().resources[0]!
  t.same(view.holders.map((l) => l.grantedMode), ['PR', 'PR'])
  h.manager.unlock(b, lb.lockId)
  t.match(h.take(a), [{ type: 'granted', lockId: la.lockId, mode: 'EX' }])
})

void t.test('convert() and lock() status codes', async (t) => {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const la = h.lock(a, 'R', 'EX')
  const lb = h.lock(b, 'R', 'PR')
  t.throws(() => h.manager.convert(b, lb.lockId, 'EX'), { code: 'DLM_CVTUNGRANT' })
  t.throws(() => h.manager.convert(b, 9999, 'EX'), { code: 'DLM_IVLOCKID' })
  t.throws(() => h.manager.convert(b, la.lockId, 'NL'), { code: 'DLM_IVLOCKID' }, 'not the owner')
  t.throws(() => h.lock(b, 'R', 'PR', { noQueue: true }), { code: 'DLM_NOTQUEUED' })
  t.throws(() => h.lock(b, 'R', 'XX' as 'EX'), { code: 'DLM_BADPARAM' })
  t.throws(() => h.lock(b, '', 'PR'), { code: 'DLM_IVBUFLEN' })
  t.throws(() => h.lock(b, 'x'.repeat(256), 'PR'), { code: 'DLM_IVBUFLEN' })
  const other = h.manager.addClient()
  t.throws(() => h.manager.lock(other, { namespace: 'ns', resource: 'R', mode: 'NL' }), { code: 'DLM_NOTATTACHED' })
  const la2 = h.lock(a, 'S', 'PR')
  const lb2 = h.lock(b, 'S', 'PR')
  t.equal(h.manager.convert(a, la2.lockId, 'EX').granted, false)
  t.throws(() => h.manager.convert(a, la2.lockId, 'PW'), { code: 'DLM_LKBUSY' })
  t.throws(() => h.manager.convert(b, lb2.lockId, 'PW', { noQueue: true }), { code: 'DLM_NOTQUEUED' })
  t.throws(() => h.manager.cancel(b, lb2.lockId), { code: 'DLM_CANCELGRANT' })
  h.manager.cancel(a, la2.lockId)
  t.same(h.take(a).filter((e) => e.type === 'refused'), [{ type: 'refused', lockId: la2.lockId, code: 'DLM_CANCEL' }])
  h.manager.cancel(b, lb.lockId)
  t.same(h.take(b).filter((e) => e.type === 'refused'), [{ type: 'refused', lockId: lb.lockId, code: 'DLM_ABORT' }])
  t.throws(() => h.manager.unlock(b, lb.lockId), { code: 'DLM_IVLOCKID' }, 'a cancelled request is gone')
  const waiting = h.lock(b, 'R', 'PR')
  h.manager.unlock(b, waiting.lockId)
  t.same(h.take(b), [{ type: 'refused', lockId: waiting.lockId, code: 'DLM_ABORT' }], 'unlock of a waiter aborts it')
  h.manager.shutdown()
  t.throws(() => h.lock(a, 'Q', 'NL'), { code: 'DLM_ENOSYS' })
})

void t.test('blocking notifications go once per holder and again only for a stronger blocked mode', async (t) => {
  const h = harness()
  const [a, b, c] = [h.client(1), h.client(2), h.client(3)]
  const la = h.lock(a, 'R', 'PW')
  h.lock(b, 'R', 'PR')
  h.lock(c, 'R', 'PR')
  t.same(h.take(a), [{ type: 'blocking', lockId: la.lockId, mode: 'PR' }])
  const lb = h.lock(a, 'T', 'CR')
  h.lock(b, 'T', 'EX')
  t.same(h.take(a), [{ type: 'blocking', lockId: lb.lockId, mode: 'EX' }])
})

void t.test('value blocks: returned on grant, written only by PW/EX down-conversion or unlock', async (t) => {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const ex = h.lock(a, 'R', 'EX')
  t.same(ex.granted && ex.valueBlock, bytes(), 'a new resource has an empty valid value block')
  const down = h.manager.convert(a, ex.lockId, 'PW', { valueBlock: bytes(1, 2) })
  t.match(down, { granted: true, valueBlock: undefined }, 'EX -> PW writes and returns nothing')
  const pr = h.manager.convert(a, ex.lockId, 'PR', { valueBlock: bytes(3) })
  t.equal(pr.granted, true)
  const reader = h.lock(b, 'R', 'CR')
  t.same(reader.granted && reader.valueBlock, bytes(3), 'PW -> PR wrote too')
  t.throws(() => h.manager.convert(a, ex.lockId, 'NL', { valueBlock: bytes(4) }), { code: 'DLM_BADPARAM' },
    'PR does not write')
  t.throws(() => h.manager.convert(b, reader.lockId, 'EX', { valueBlock: bytes(4) }), { code: 'DLM_BADPARAM' },
    'an up-conversion does not write')
  t.throws(() => h.manager.unlock(b, reader.lockId, { valueBlock: bytes(5) }), { code: 'DLM_BADPARAM' },
    'unlock from CR does not write')
  h.manager.unlock(a, ex.lockId)
  const up = h.manager.convert(b, reader.lockId, 'EX')
  t.same(up.granted && up.valueBlock, bytes(3), 'an up-conversion returns the value block')
  t.throws(() => h.manager.unlock(b, reader.lockId, { valueBlock: new Uint8Array(65) }), { code: 'DLM_IVBUFLEN' })
  const keeper = h.lock(a, 'R', 'NL')
  t.same(keeper.granted && keeper.valueBlock, bytes(3), 'NL is compatible with EX and reads the value block')
  h.manager.unlock(b, reader.lockId, { valueBlock: bytes(9, 9) })
  const again = h.manager.convert(a, keeper.lockId, 'PR')
  t.same(again.granted && again.valueBlock, bytes(9, 9), 'unlock from EX wrote')
  h.manager.unlock(a, keeper.lockId)
  const fresh = h.lock(a, 'R', 'NL')
  t.same(fresh.granted && fresh.valueBlock, bytes(), 'an idle resource outside a domain forgets it (VMS)')
})

void t.test('value blocks: a PW/EX holder that dies leaves them not valid until written', async (t) => {
  for (const mode of ['NL', 'CR', 'CW', 'PR', 'PW', 'EX'] as const) {
    const h = harness()
    const [a, b] = [h.client(1), h.client(2)]
    h.lock(a, 'R', mode)
    const waiter = h.lock(b, 'R', 'EX')
    h.manager.clientGone(a)
    h.manager.checkInvariants()
    const invalid = mode === 'PW' || mode === 'EX'
    const grant = waiter.granted ? waiter : h.take(b).find((e) => e.type === 'granted')
    t.match(grant, { valueBlockValid: !invalid,
      status: waiter.granted ? (invalid ? 'DLM_SYNCVALNOTVALID' : 'DLM_SYNCH')
        : (invalid ? 'DLM_SUCCVALNOTVALID' : 'DLM_SUCCESS') }, `holder died in ${mode}`)
    if (invalid) {
      h.manager.unlock(b, grant!.lockId, { valueBlock: bytes(7) })
      t.match(h.lock(a === 1 ? b : b, 'R', 'NL'), { valueBlockValid: true }, 'a write outside a domain validates')
    }
  }
})

void t.test('persistent locks become orphans that keep blocking until purged', async (t) => {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const ra = h.manager.rdAttach(a, { namespace: 'ns', name: 'rd' })
  const rb = h.manager.rdAttach(b, { namespace: 'ns', name: 'rd' })
  h.lock(a, 'R', 'PR', { rdId: ra, persistent: true })
  const waiter = h.lock(b, 'R', 'EX', { rdId: rb })
  h.manager.clientGone(a)
  t.equal(h.take(b).filter((e) => e.type === 'granted').length, 0, 'the orphan still blocks')
  t.equal(h.manager.describe().resources[0]!.holders[0]!.owner, null)
  t.equal(h.manager.purgeOrphans(b, 'ns', 'R'), 1)
  t.match(h.take(b), [{ type: 'granted', lockId: waiter.lockId, valueBlockValid: true }])
  t.throws(() => h.lock(b, 'P', 'PR', { persistent: true }), { code: 'DLM_BADPARAM' }, 'persistent needs a domain')
})

void t.test('namespaces: join, leave and their codes', async (t) => {
  const h = harness()
  const a = h.client(1)
  t.throws(() => h.manager.nsJoin(a, 'ns'), { code: 'DLM_ATTACHED' })
  t.throws(() => h.manager.nsJoin(a, ''), { code: 'DLM_ENAMETOOLONG' })
  t.throws(() => h.manager.nsJoin(a, 'n'.repeat(65)), { code: 'DLM_ENAMETOOLONG' })
  t.throws(() => h.manager.nsLeave(a, 'other'), { code: 'DLM_ENOENT' })
  const lock = h.lock(a, 'R', 'NL')
  t.throws(() => h.manager.nsLeave(a, 'ns'), { code: 'DLM_HASLOCKS' })
  h.manager.unlock(a, lock.lockId)
  h.manager.nsLeave(a, 'ns')
  for (let index = 0; index < 64; index++) h.manager.nsJoin(a, `ns${index}`)
  t.throws(() => h.manager.nsJoin(a, 'one-more'), { code: 'DLM_TOOMANYNS' })
})

void t.test('bounds: queue length and locks per client give DLM_INSFMEM', async (t) => {
  const { LockManager } = await import('../../../src/dlm/index.js')
  const manager = new LockManager({ limits: { queueLengthMax: 2, locksPerClientMax: 3 } })
  const a = manager.addClient()
  manager.nsJoin(a, 'ns')
  manager.lock(a, { namespace: 'ns', resource: 'R', mode: 'EX' })
  manager.lock(a, { namespace: 'ns', resource: 'R', mode: 'EX' })
  manager.lock(a, { namespace: 'ns', resource: 'R', mode: 'EX' })
  t.throws(() => manager.lock(a, { namespace: 'ns', resource: 'S', mode: 'EX' }), { code: 'DLM_INSFMEM' })
  const b = manager.addClient()
  manager.nsJoin(b, 'ns')
  t.throws(() => manager.lock(b, { namespace: 'ns', resource: 'R', mode: 'EX' }), { code: 'DLM_INSFMEM' })
})

void t.test('value blocks: all 36 conversions - who may write, who reads', async (t) => {
  const { LOCK_MODES, isDownConversion } = await import('../../../src/dlm/index.js')
  for (const from of LOCK_MODES) {
    for (const to of LOCK_MODES) {
      const h = harness()
      const a = h.client(1)
      const seed = h.lock(a, 'R', 'EX')
      h.manager.convert(a, seed.lockId, from, { valueBlock: bytes(1) })
      const writes = (from === 'PW' || from === 'EX') && isDownConversion(from, to)
      const attempt = (): unknown => h.manager.convert(a, seed.lockId, to, { valueBlock: bytes(2) })
      if (writes) {
        t.match(attempt(), { granted: true, valueBlock: undefined }, `${from}->${to} writes`)
      } else {
        t.throws(attempt, { code: 'DLM_BADPARAM' }, `${from}->${to} may not write`)
        const read = h.manager.convert(a, seed.lockId, to)
        t.same(read.granted && read.valueBlock, bytes(1), `${from}->${to} reads`)
      }
      const b = h.client(2)
      const reader = h.lock(b, 'R', 'NL')
      t.same(reader.granted && reader.valueBlock, writes ? bytes(2) : bytes(1))
    }
  }
})
