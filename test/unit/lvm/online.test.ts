/**
 * The VolumeGroup API while online: concurrent LV creation, LV lifecycle, ext carried through
 * commits, status records (stale bits, dirty flags), change listeners, PVs that fail during a
 * commit (marked MISSING when a majority survives, FORCEOFF when it does not), second vary-on
 * bringing MISSING PVs back, vgextend/vgreduce, and allocation strictness.
 */
import t from 'tap'
import { varyOnVg, type VgChangeEvent } from '../../../src/lvm/index.js'
import { Pool, PV_BYTES, makeVg, varyOn } from '../../helpers/lvm-fixture.js'

async function online(pvCount: number) {
  const pool = new Pool(pvCount)
  const d = await makeVg(pool, 'vg')
  const result = await varyOn(pool, 'vg')
  return { pool, d, vg: result.vg! }
}

void t.test('several LVs created concurrently all commit, with distinct ids and PPs', async (t) => {
  const { pool, vg } = await online(3)
  const events: VgChangeEvent[] = []
  vg.onChange((e) => events.push(e))
  await Promise.all(Array.from({ length: 8 }, (_, i) => vg.lvCreate({ name: `lv${i}`, lpCount: 2, copies: 2 })))
  t.equal(vg.descriptor.lvs.length, 8)
  t.equal(new Set(vg.descriptor.lvs.map((lv) => lv.lvId)).size, 8)
  const pps = vg.descriptor.lvs.flatMap((lv) => lv.lps.flat().map((r) => `${r.pvIndex}:${r.pp}`))
  t.equal(new Set(pps).size, pps.length, 'no PP allocated twice')
  t.equal(events.filter((e) => e.kind === 'descriptor').length, 8)
  await vg.varyOff()
  const again = await varyOn(pool, 'vg')
  t.equal(again.vg!.descriptor.lvs.length, 8)
  await again.vg!.varyOff()
})

void t.test('LV lifecycle and ext carried through commits', async (t) => {
  const { pool, vg } = await online(2)
  await vg.lvCreate({ name: 'a', lpCount: 3, ext: { origin: 'x', n: [1, 2] } })
  await vg.lvExtend('a', 2)
  await vg.lvReduce('a', 1)
  await vg.lvRename('a', 'b')
  await vg.lvCreate({ name: 'c', lpCount: 1 })
  await vg.lvRemove('c')
  await vg.lvSetExt('b', { origin: 'y' })
  await t.rejects(vg.lvCreate({ name: 'b', lpCount: 1 }), { code: 'ENGINE_EXISTS' })
  await t.rejects(vg.lvCreate({ name: 'bad name', lpCount: 1 }), { code: 'ENGINE_USAGE' })
  await t.rejects(vg.lvCreate({ name: 'd', lpCount: 1, copies: 4 as 3 }), { code: 'LVM_NOALLOCLP' })
  await t.rejects(vg.lvCreate({ name: 'd', lpCount: 10_000 }), { code: 'LVM_NOFREEPPS' })
  await t.rejects(vg.lvReduce('b', 4), { code: 'ENGINE_USAGE' })
  await t.rejects(vg.lvRemove('zz'), { code: 'ENGINE_NOT_FOUND' })
  await vg.varyOff()
  const again = (await varyOn(pool, 'vg')).vg!
  const lv = again.lvByName('b')!
  t.equal(lv.lps.length, 4)
  t.same(lv.ext, { origin: 'y' })
  t.equal(again.lvByName('c'), undefined)
  t.equal(again.descriptor.nextLvId, 3, 'lvIds are never reused')
  await again.varyOff()
})

void t.test('lvChange: MWC policy, al-extents and bitmap chunk committed; bad values refused naming the field', async (t) => {
  const { pool, vg } = await online(2)
  await vg.lvCreate({ name: 'm', lpCount: 2, copies: 2, alExtents: 30 })
  t.equal(vg.lvByName('m')!.alExtents, 30, 'lvcreate --al-extents')
  await vg.lvChange('m', { mwc: 'passive', alExtents: 20, bitmapChunkBytes: 32 * 1024 })
  await t.rejects(vg.lvChange('m', { alExtents: 0 }), { code: 'LVM_INVALID_PARAM', context: { field: 'alExtents' } })
  await t.rejects(vg.lvChange('m', { alExtents: 1_000_000 }), { code: 'LVM_INVALID_PARAM', context: { field: 'alExtents' } })
  await t.rejects(vg.lvChange('m', { bitmapChunkBytes: 3000 }), { code: 'LVM_INVALID_PARAM',
    context: { field: 'bitmapChunkBytes' } })
  await t.rejects(vg.lvChange('m', {}), { code: 'ENGINE_USAGE' }, 'nothing to change')
  await t.rejects(vg.lvChange('zz', { mwc: 'off' }), { code: 'ENGINE_NOT_FOUND' })
  await vg.varyOff()
  const again = (await varyOn(pool, 'vg')).vg!
  const lv = again.lvByName('m')!
  t.same([lv.mwc, lv.alExtents, lv.bitmapChunkBytes], ['passive', 20, 32 * 1024], 'persisted; refused changes left nothing')
  await again.varyOff()
})

void t.test('lvSwapLps exchanges partitions in one commit, stale bits moving with them', async (t) => {
  const { pool, vg } = await online(3)
  const lv = await vg.lvCreate({ name: 'w', lpCount: 4, copies: 2, mwc: 'passive' })
  const stale = lv.lps[3]![0]!
  await vg.markStale([stale])
  const seqBefore = vg.descriptor.seq
  await vg.lvSwapLps('w', [[0, 3], [1, 2]])
  t.equal(vg.descriptor.seq, seqBefore + 1, 'one descriptor commit')
  const swapped = vg.lvByName('w')!
  t.same(swapped.lps, [lv.lps[3], lv.lps[2], lv.lps[1], lv.lps[0]])
  t.ok(vg.isStale(stale.pvIndex, stale.pp), 'the stale PP is still stale, now under LP 0')
  await t.rejects(vg.lvSwapLps('w', [[0, 4]]), { code: 'ENGINE_USAGE', message: /LP 4 of "w"/ })
  await t.rejects(vg.lvSwapLps('w', [[0, 1], [1, 2]]), { code: 'ENGINE_USAGE', message: /more than one/ })
  await t.rejects(vg.lvSwapLps('w', [[2, 2]]), { code: 'ENGINE_USAGE', message: /exchanged with itself/ })
  t.same(vg.lvByName('w')!.lps, swapped.lps, 'a refused exchange changes nothing')
  await vg.varyOff()
  const again = (await varyOn(pool, 'vg')).vg!
  t.same(again.lvByName('w')!.lps, swapped.lps, 'the exchange is on disk')
  await again.varyOff()
})

void t.test('stale bits and dirty flags persist; freed PPs lose their stale bits', async (t) => {
  const { pool, vg } = await online(3)
  const lv = await vg.lvCreate({ name: 'm', lpCount: 2, copies: 2, mwc: 'passive' })
  const ref = lv.lps[1]![1]!
  await vg.markStale([ref])
  await vg.setLvDirty(lv.lvId, true)
  t.ok(vg.isStale(ref.pvIndex, ref.pp))
  await vg.varyOff()
  const again = (await varyOn(pool, 'vg')).vg!
  t.ok(again.isStale(ref.pvIndex, ref.pp))
  t.same(again.status.dirtyLvs, [lv.lvId])
  await again.lvReduce('m', 1)
  t.notOk(again.isStale(ref.pvIndex, ref.pp), 'freed PP is not stale')
  await again.clearStale([ref])
  await again.setLvDirty(lv.lvId, false)
  t.same(again.status.dirtyLvs, [])
  await again.varyOff()
})

void t.test('a PV failing during a commit is marked MISSING when a majority survives', async (t) => {
  const { pool, d, vg } = await online(3)
  const target = d.pvs[2]!.lastPath
  const faulty = pool.opened.filter((f) => f.path === target).at(-1)!
  faulty.disappear()
  await vg.lvCreate({ name: 'a', lpCount: 1 })
  t.equal(vg.pvState(2), 'missing')
  t.equal(vg.state, 'online')
  await vg.varyOff()
  faulty.reappear()
  const back = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener, registry: pool.registry,
    flags: { misspvVon: true, missnameVon: true } })
  t.equal(back.rc, 'LVM_SUCCESS', 'the PV is found again and its copies rewritten')
  t.ok(back.vg!.lvByName('a'))
  await back.vg!.varyOff()
})

void t.test('losing quorum mid-commit forces the VG off; later calls fail with LVM_FORCEOFF', async (t) => {
  const { pool, d, vg } = await online(3)
  const forced: Error[] = []
  vg.onForceOff((e) => forced.push(e))
  for (const i of [1, 2]) pool.opened.filter((f) => f.path === d.pvs[i]!.lastPath).at(-1)!.disappear()
  await t.rejects(vg.lvCreate({ name: 'a', lpCount: 1 }), { code: 'LVM_FORCEOFF' })
  t.equal(vg.state, 'forcedoff')
  t.equal(forced.length, 1)
  await t.rejects(vg.markStale([{ pvIndex: 0, pp: 0 }]), { code: 'LVM_FORCEOFF' })
  await t.rejects(vg.lvCreate({ name: 'b', lpCount: 1 }), { code: 'LVM_FORCEOFF' })
})

void t.test('known-unreachable majority: FORCEOFF without touching the surviving PV', async (t) => {
  const { pool, d, vg } = await online(3)
  await vg.setPvState(1, 'missing')
  const survivor = d.pvs[0]!.lastPath
  const before = pool.hash(survivor)
  const third = pool.hash(d.pvs[2]!.lastPath)
  await t.rejects(vg.setPvState(2, 'missing'), { code: 'LVM_FORCEOFF' })
  t.equal(pool.hash(survivor), before, 'no byte changed on the surviving PV')
  t.equal(pool.hash(d.pvs[2]!.lastPath), third)
})

void t.test('a second vary-on of an online VG brings a MISSING PV back to ACTIVE', async (t) => {
  const { pool, d, vg } = await online(3)
  await vg.setPvState(2, 'missing')
  t.equal(vg.pvState(2), 'missing')
  const again = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener, registry: pool.registry,
    vvgIn: [{ pvId: d.pvs[2]!.pvId, name: d.pvs[2]!.lastPath }] })
  t.equal(again.vg, vg, 'same VolumeGroup object')
  t.equal(again.rc, 'LVM_SUCCESS')
  t.equal(vg.pvState(2), 'active')
  await vg.lvCreate({ name: 'x', lpCount: 1 })
  await vg.varyOff()
})

void t.test('vgextend adds PVs and recomputes the copy placement; vgreduce refuses used PVs', async (t) => {
  const pool = new Pool(1)
  await makeVg(pool, 'vg')
  pool.add('/dev/new1')
  pool.add('/dev/new2')
  const vg = (await varyOnVg({ vgName: 'vg', devices: ['/dev/pv0'], opener: pool.opener, registry: pool.registry })).vg!
  t.same(vg.descriptor.descriptorCopies, [{ pvIndex: 0, area: 0 }, { pvIndex: 0, area: 1 }])
  await vg.vgExtend(['/dev/new1'])
  t.same(vg.descriptor.descriptorCopies.map((c) => c.pvIndex), [0, 0, 1])
  await vg.vgExtend(['/dev/new2'])
  t.same(vg.descriptor.descriptorCopies.map((c) => c.pvIndex), [0, 1, 2])
  const lv = await vg.lvCreate({ name: 'm', lpCount: 2, copies: 3 })
  t.equal(new Set(lv.lps[0]!.map((r) => r.pvIndex)).size, 3, 'strict: three PVs')
  await t.rejects(vg.vgReduce(2), { code: 'LVM_PVHASPPS' })
  await vg.lvRemove('m')
  await vg.vgReduce(2)
  t.equal(vg.descriptor.pvs.length, 2)
  await t.rejects(vg.vgExtend(['/dev/pv0']), { code: 'LVM_PVINUSE' })
  await vg.varyOff()
  const again = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener, registry: pool.registry })
  t.equal(again.rc, 'LVM_SUCCESS', again.error?.message ?? '')
  t.equal(again.vg!.descriptor.pvs.length, 2)
  await again.vg!.varyOff()
})

void t.test('superstrict keeps each copy on its own PV set; strict n may share PVs', async (t) => {
  const { vg } = await online(4)
  const s = await vg.lvCreate({ name: 's', lpCount: 10, copies: 2, strict: 's' })
  const sets = [0, 1].map((k) => new Set(s.lps.map((lp) => lp[k]!.pvIndex)))
  t.notOk([...sets[0]!].some((pv) => sets[1]!.has(pv)))
  const n = await vg.lvCreate({ name: 'n', lpCount: 2, copies: 2, strict: 'n', pvIndexes: [3] })
  t.equal(n.lps[0]![0]!.pvIndex, n.lps[0]![1]!.pvIndex, 'both copies on PV 3')
  await vg.varyOff()
})

void t.test('a descriptor too large for the VGDA slot is refused before any write', async (t) => {
  const { pool, vg } = await online(1)
  const before = pool.hashes()
  const ext = { blob: 'x'.repeat(70 * 1024) }
  await t.rejects(vg.lvCreate({ name: 'big', lpCount: 1, ext }), { code: 'LVM_VGDASPACE' })
  t.same(pool.hashes(), before)
  t.equal(vg.state, 'online')
  await vg.varyOff()
  t.ok(PV_BYTES > 0)
})

void t.test('a second vary-on given only devices brings every MISSING member back', async (t) => {
  const { pool, vg } = await online(3)
  pool.add('/dev/stranger')
  await vg.setPvState(1, 'missing')
  const again = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener, registry: pool.registry })
  t.equal(again.rc, 'LVM_SUCCESS', JSON.stringify(again.vvgOut))
  t.equal(vg.pvState(1), 'active')
  t.equal(again.vvgOut.length, 3, 'devices of no VG are not reported')
  await vg.varyOff()
})

void t.test('setPvState: removed and returned (lvm_changepv), placement follows', async (t) => {
  const { pool, vg } = await online(3)
  await vg.setPvState(2, 'removed')
  t.equal(vg.pvState(2), 'removed')
  t.same(vg.descriptor.descriptorCopies.map((c) => c.pvIndex), [0, 0, 1], 'two PVs left: 2 + 1 copies')
  await vg.setPvState(2, 'active')
  t.equal(vg.pvState(2), 'active')
  t.same(vg.descriptor.descriptorCopies.map((c) => c.pvIndex), [0, 1, 2])
  await vg.varyOff()
  const again = await varyOn(pool, 'vg')
  t.equal(again.rc, 'LVM_SUCCESS')
  await again.vg!.varyOff()
})
