/**
 * Recovery domains exactly as the Tru64 reference (dlm_rd_attach/collect/validate/detach): every
 * status code is provoked by a directed test, named after the code it provokes.
 */
import t from 'tap'
import { bytes, harness } from '../../helpers/dlm-harness.js'

function setup() {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const ra = h.manager.rdAttach(a, { namespace: 'ns', name: 'rd:vg1' })
  const rb = h.manager.rdAttach(b, { namespace: 'ns', name: 'rd:vg1' })
  return { h, a, b, ra, rb, m: h.manager }
}

const stateOf = (m: ReturnType<typeof setup>['m']): string => m.describe().domains[0]!.state

void t.test('rdCollect DLM_SUCCESS: an empty collection still marks the domain in recovery', async (t) => {
  const { m, a, ra } = setup()
  t.equal(stateOf(m), 'recovered')
  const collection = m.rdCollect(a, ra)
  t.same(collection.resources, [])
  t.equal(stateOf(m), 'in-recovery')
  t.same(m.rdValidate(a, ra, collection.handle), { status: 'DLM_SUCCESS', validated: [] })
  t.equal(stateOf(m), 'recovered')
})

void t.test('rdCollect gathers exactly the resources with invalid value blocks; validate zeroes them', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  h.lock(a, 'VG:1', 'EX', { rdId: ra })
  h.manager.convert(a, 1, 'EX')
  m.unlock(a, 1, { valueBlock: bytes(5, 6) })
  h.lock(a, 'VG:1', 'PW', { rdId: ra })
  h.lock(a, 'LV:1', 'PR', { rdId: ra })
  h.lock(a, 'LV:2', 'EX', { rdId: ra })
  const waiter = h.lock(b, 'VG:1', 'PR', { rdId: rb })
  m.clientGone(a)
  const seen = h.take(b)
  const grant = seen.find((e) => e.type === 'granted')
  t.ok(seen.some((e) => e.type === 'recovery-needed'), 'attached members are told')
  t.match(grant, { lockId: waiter.lockId, valueBlockValid: false, status: 'DLM_SUCCVALNOTVALID' })
  t.same(grant?.type === 'granted' && grant.valueBlock, bytes(5, 6), 'stale contents come with the flag')
  t.equal(stateOf(m), 'needs-recovery')
  const collection = m.rdCollect(b, rb)
  t.same([...collection.resources].sort(), ['LV:2', 'VG:1'], 'PR holder did not invalidate LV:1')
  t.same(m.rdValidate(b, rb, collection.handle), { status: 'DLM_SUCCESS', validated: collection.resources })
  const reread = m.convert(b, waiter.lockId, 'EX')
  t.match(reread, { granted: true, valueBlockValid: true })
  t.same(reread.granted && reread.valueBlock, bytes(0, 0), 'validate reinitialises to zero')
})

void t.test('a write inside a domain does not validate; only rdValidate does', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  h.lock(a, 'VG:1', 'EX', { rdId: ra })
  m.clientGone(a)
  const lock = h.lock(b, 'VG:1', 'EX', { rdId: rb })
  m.unlock(b, lock.lockId, { valueBlock: bytes(1) })
  t.match(h.lock(b, 'VG:1', 'NL', { rdId: rb }), { valueBlockValid: false })
})

void t.test('rdCollect DLM_EALREADY: a second collect before validate, by anyone', async (t) => {
  const { m, a, b, ra, rb } = setup()
  const first = m.rdCollect(a, ra)
  t.throws(() => m.rdCollect(a, ra), { code: 'DLM_EALREADY' })
  t.throws(() => m.rdCollect(b, rb), { code: 'DLM_EALREADY' })
  m.rdValidate(a, ra, first.handle)
  t.ok(m.rdCollect(b, rb).handle > first.handle)
})

void t.test('rdCollect DLM_BADPARAM: rd id out of range or nonzero flags', async (t) => {
  const { m, a, ra } = setup()
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => m.rdCollect(a, bad), { code: 'DLM_BADPARAM' }, String(bad))
  t.throws(() => m.rdCollect(a, ra, 1), { code: 'DLM_BADPARAM' })
  t.throws(() => m.rdValidate(a, ra, 1, 2), { code: 'DLM_BADPARAM' })
})

void t.test('rdCollect DLM_IVRDID: no such domain id, or another process\'s id', async (t) => {
  const { m, a, rb } = setup()
  t.throws(() => m.rdCollect(a, 999), { code: 'DLM_IVRDID' })
  t.throws(() => m.rdCollect(a, rb), { code: 'DLM_IVRDID' })
})

void t.test('rdCollect DLM_NO_GROUP: a group-scoped id used outside the group', async (t) => {
  const { h, m, a, b } = setup()
  t.throws(() => m.rdAttach(a, { namespace: 'ns', name: 'rd:g', scope: 'group', group: 'g1' }),
    { code: 'DLM_NO_GROUP' }, 'attach for a group one is not in')
  m.groupJoin(a, 'g1')
  const shared = m.rdAttach(a, { namespace: 'ns', name: 'rd:g', scope: 'group', group: 'g1' })
  t.throws(() => m.rdCollect(b, shared), { code: 'DLM_NO_GROUP' })
  const c = h.client(3)
  m.groupJoin(c, 'g1')
  const collection = m.rdCollect(c, shared)
  t.same(m.rdValidate(c, shared, collection.handle).status, 'DLM_SUCCESS', 'a group member may use the id')
})

void t.test('rdCollect DLM_NOTATTACHED: the process has not joined a namespace', async (t) => {
  const { m, ra } = setup()
  const loner = m.addClient()
  t.throws(() => m.rdCollect(loner, ra), { code: 'DLM_NOTATTACHED' })
  t.throws(() => m.rdAttach(loner, { namespace: 'ns', name: 'x' }), { code: 'DLM_NOTATTACHED' })
})

void t.test('rdCollect DLM_ENOSYS: the lock manager is not enabled', async (t) => {
  const { m, a, ra } = setup()
  m.shutdown()
  t.throws(() => m.rdCollect(a, ra), { code: 'DLM_ENOSYS' })
  t.throws(() => m.addClient(), { code: 'DLM_ENOSYS' })
})

void t.test('rdValidate DLM_MORE_TO_RECOVER: a new invalidation after the collect', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  const c = h.client(3)
  const rc = m.rdAttach(c, { namespace: 'ns', name: 'rd:vg1' })
  h.lock(a, 'VG:1', 'EX', { rdId: ra })
  h.lock(c, 'LV:9', 'PW', { rdId: rc })
  m.clientGone(a)
  const collection = m.rdCollect(b, rb)
  t.same(collection.resources, ['VG:1'])
  m.clientGone(c)
  t.same(m.rdValidate(b, rb, collection.handle), { status: 'DLM_MORE_TO_RECOVER', validated: ['VG:1'] })
  t.equal(stateOf(m), 'needs-recovery')
  const again = m.rdCollect(b, rb)
  t.same(again.resources, ['LV:9'])
  t.same(m.rdValidate(b, rb, again.handle).status, 'DLM_SUCCESS')
})

void t.test('rdValidate DLM_MORE_TO_RECOVER: an attached member died after the collect', async (t) => {
  const { h, m, b, rb } = setup()
  const c = h.client(3)
  m.rdAttach(c, { namespace: 'ns', name: 'rd:vg1' })
  const collection = m.rdCollect(b, rb)
  m.clientGone(c)
  t.same(m.rdValidate(b, rb, collection.handle).status, 'DLM_MORE_TO_RECOVER')
})

void t.test('rdValidate DLM_IVHNDL: no collection, a wrong handle, or another process\'s handle', async (t) => {
  const { m, a, b, ra, rb } = setup()
  t.throws(() => m.rdValidate(a, ra, 1), { code: 'DLM_IVHNDL' })
  const collection = m.rdCollect(a, ra)
  t.throws(() => m.rdValidate(a, ra, collection.handle + 1), { code: 'DLM_IVHNDL' })
  t.throws(() => m.rdValidate(b, rb, collection.handle), { code: 'DLM_IVHNDL' })
  m.rdValidate(a, ra, collection.handle)
  t.throws(() => m.rdValidate(a, ra, collection.handle), { code: 'DLM_IVHNDL' }, 'validated twice')
})

void t.test('a collector that dies gives its collection back; another process collects it', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  const c = h.client(3)
  m.rdAttach(c, { namespace: 'ns', name: 'rd:vg1' })
  h.lock(a, 'VG:1', 'EX', { rdId: ra })
  m.clientGone(a)
  t.match(h.take(c), [{ type: 'recovery-needed', domain: 'rd:vg1' }])
  m.rdCollect(c, m.describe().domains[0]!.attachedRdIds.at(-1)!)
  m.clientGone(c)
  t.equal(stateOf(m), 'needs-recovery')
  t.match(h.take(b), [{ type: 'recovery-needed' }, { type: 'recovery-needed' }])
  const collection = m.rdCollect(b, rb)
  t.same(collection.resources, ['VG:1'])
  t.same(m.rdValidate(b, rb, collection.handle).status, 'DLM_SUCCESS', 'c died before this collect')
})

void t.test('validate releases orphaned persistent locks of the dead holder', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  h.lock(a, 'VG:1', 'EX', { rdId: ra, persistent: true })
  const waiter = h.lock(b, 'VG:1', 'EX', { rdId: rb })
  m.clientGone(a)
  t.same(h.take(b).map((e) => e.type), ['recovery-needed'], 'the orphan still blocks')
  const collection = m.rdCollect(b, rb)
  m.rdValidate(b, rb, collection.handle)
  t.match(h.take(b), [{ type: 'granted', lockId: waiter.lockId, valueBlockValid: true }])
})

void t.test('rdDetach: DLM_HASLOCKS, DLM_EINPROGRESS, then DLM_IVRDID; invalidate flag', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  const lock = h.lock(a, 'VG:1', 'EX', { rdId: ra })
  t.throws(() => m.rdDetach(a, ra), { code: 'DLM_HASLOCKS' })
  m.unlock(a, lock.lockId, { valueBlock: bytes(1) })
  const collection = m.rdCollect(a, ra)
  t.throws(() => m.rdDetach(a, ra), { code: 'DLM_EINPROGRESS' })
  m.rdValidate(a, ra, collection.handle)
  m.rdDetach(a, ra, { invalidate: true })
  t.throws(() => m.rdCollect(a, ra), { code: 'DLM_IVRDID' })
  t.same(m.rdCollect(b, rb).resources, ['VG:1'], 'DLM_RD_INVALIDATE marked the resources invalid')
})

void t.test('rdAttach: DLM_ATTACHED, DLM_ENAMETOOLONG, DLM_TOOMANYRD, DLM_BADPARAM', async (t) => {
  const { m, a } = setup()
  t.throws(() => m.rdAttach(a, { namespace: 'ns', name: 'rd:vg1' }), { code: 'DLM_ATTACHED' })
  t.throws(() => m.rdAttach(a, { namespace: 'ns', name: 'r'.repeat(65) }), { code: 'DLM_ENAMETOOLONG' })
  t.throws(() => m.rdAttach(a, { namespace: 'ns', name: 'x', scope: 'cluster' as 'group' }), { code: 'DLM_BADPARAM' })
  for (let index = 1; index < 256; index++) m.rdAttach(a, { namespace: 'ns', name: `d${index}` })
  t.throws(() => m.rdAttach(a, { namespace: 'ns', name: 'last' }), { code: 'DLM_TOOMANYRD' })
})

void t.test('lock() in domains: DLM_IS_PR, DLM_NOT_PR, DLM_PR_RD_MISMATCH', async (t) => {
  const { h, m, a, ra } = setup()
  const other = m.rdAttach(a, { namespace: 'ns', name: 'rd:vg2' })
  h.lock(a, 'VG:1', 'NL', { rdId: ra })
  h.lock(a, 'plain', 'NL')
  t.throws(() => h.lock(a, 'VG:1', 'NL'), { code: 'DLM_IS_PR' })
  t.throws(() => h.lock(a, 'plain', 'NL', { rdId: ra }), { code: 'DLM_NOT_PR' })
  t.throws(() => h.lock(a, 'VG:1', 'NL', { rdId: other }), { code: 'DLM_PR_RD_MISMATCH' })
})

void t.test('grace period: DLM_RETRY for new grants, re-assertions granted, DLM_NOTGRANTED on conflict', async (t) => {
  const { h, m, a, b, ra, rb } = setup()
  m.grace = true
  t.throws(() => h.lock(a, 'VG:1', 'PR', { rdId: ra }), { code: 'DLM_RETRY' })
  const back = m.reassert(a, { namespace: 'ns', resource: 'VG:1', mode: 'EX', rdId: ra,
    valueBlock: bytes(4), valueBlockSeq: 3, valueBlockValid: true })
  t.match(back, { mode: 'EX', valueBlockValid: true })
  t.throws(() => m.reassert(b, { namespace: 'ns', resource: 'VG:1', mode: 'PR', rdId: rb }), { code: 'DLM_NOTGRANTED' })
  t.match(m.convert(a, back.lockId, 'PW', { valueBlock: bytes(8) }), { granted: true }, 'down is allowed')
  t.throws(() => m.convert(a, back.lockId, 'EX'), { code: 'DLM_RETRY' }, 'up is a new grant')
  m.grace = false
  const reader = h.lock(b, 'VG:1', 'CR', { rdId: rb })
  t.same(reader.granted && reader.valueBlock, bytes(8))
})

void t.test('idle domain resources: forgotten unless their value block was written or is not valid', async (t) => {
  const { h, m, a, ra } = setup()
  const plain = h.lock(a, 'LP:1:7', 'EX', { rdId: ra })
  m.unlock(a, plain.lockId)
  const written = h.lock(a, 'VG:1', 'EX', { rdId: ra })
  m.unlock(a, written.lockId, { valueBlock: bytes(4) })
  t.same(m.describe().resources.map((r) => r.name), ['VG:1'], 'the never-written LP lock went')
  const again = h.lock(a, 'VG:1', 'NL', { rdId: ra })
  t.same(again.granted && again.valueBlock, bytes(4), 'the written value block stayed')
})

void t.test('the last member of a domain dies holding EX: the next member still collects its resource', async (t) => {
  const h = harness()
  const [a, b] = [h.client(1), h.client(2)]
  const ra = h.manager.rdAttach(a, { namespace: 'ns', name: 'rd:vg1:repl:3' })
  h.lock(a, 'LV:1:7', 'EX', { rdId: ra })
  h.manager.clientGone(a)
  const rb = h.manager.rdAttach(b, { namespace: 'ns', name: 'rd:vg1:repl:3' })
  const grant = h.lock(b, 'LV:1:7', 'EX', { rdId: rb, noQueue: true })
  t.match(grant, { granted: true, valueBlockValid: false }, 'the dead holder\'s value block is still not valid')
  const collection = h.manager.rdCollect(b, rb)
  t.same(collection.resources, ['LV:1:7'])
  t.match(h.manager.rdValidate(b, rb, collection.handle), { status: 'DLM_SUCCESS', validated: ['LV:1:7'] })
})
