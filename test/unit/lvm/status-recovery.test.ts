/**
 * Status area (VGSA) recovery at vary-on: a copy that missed status commits is rewritten; two
 * different records at the same seq (a status fork) are merged so no stale bit is lost; with
 * no status quorum the VG does not vary on (LVM_NOQUORUM) unless forced.
 */
import t from 'tap'
import { encodeVgsaCopy, vgsaSlotOffset } from '../../../src/format/index.js'
import { varyOnVg } from '../../../src/lvm/index.js'
import { readLabel, readVgsaArea } from '../../../src/lvm/metadata-io.js'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'

async function vgsaOf(pool: Pool, path: string, vgId: string) {
  const device = pool.devices.get(path)!
  const label = await readLabel(device)
  return { label, read: await readVgsaArea(device, label, vgId, 0) }
}

void t.test('a stale status copy is rewritten at vary-on', async (t) => {
  const pool = new Pool(3)
  const d = await makeVg(pool, 'vg')
  const before = pool.snapshot()
  const vg = (await varyOn(pool, 'vg')).vg!
  const lv = await vg.lvCreate({ name: 'm', lpCount: 1, copies: 2 })
  await vg.markStale([lv.lps[0]![1]!])
  await vg.varyOff()
  // Put PV 2's status area back to its state before the commits.
  const pv2 = d.pvs[2]!.lastPath
  const { label } = await vgsaOf(pool, pv2, d.vgId)
  const start = vgsaSlotOffset(label, 0, 0)
  pool.devices.get(pv2)!.data.set(before.get(pv2)!.subarray(start, start + 2 * label.vgsaSlotBytes), start)
  const oldSeq = (await vgsaOf(pool, pv2, d.vgId)).read.best!.record.seq
  const again = await varyOn(pool, 'vg')
  t.equal(again.rc, 'LVM_SUCCESS')
  t.ok(again.vg!.isStale(lv.lps[0]![1]!.pvIndex, lv.lps[0]![1]!.pp), 'the majority status wins')
  await again.vg!.varyOff()
  const rewritten = (await vgsaOf(pool, pv2, d.vgId)).read.best!.record
  t.ok(rewritten.seq > oldSeq, 'PV 2 holds a current status copy')
})

void t.test('two different status records at one seq are merged: stale bits are never lost', async (t) => {
  const pool = new Pool(3)
  const d = await makeVg(pool, 'vg')
  const vg = (await varyOn(pool, 'vg')).vg!
  const lv = await vg.lvCreate({ name: 'm', lpCount: 2, copies: 2 })
  await vg.varyOff()
  const a = lv.lps[0]![1]!
  const b = lv.lps[1]![0]!
  // Forge a fork: each PV's status copy at seq 50 marks a different PP stale.
  for (const [i, pv] of d.pvs.entries()) {
    const { label, read } = await vgsaOf(pool, pv.lastPath, d.vgId)
    const record = read.best!.record
    const ref = i === 0 ? a : b
    const pvs = record.pvs.map((p, k) => {
      if (k !== ref.pvIndex) return p
      const stale = new Uint8Array(p.stale)
      stale[ref.pp >> 3]! |= 1 << (ref.pp & 7)
      return { ...p, stale }
    })
    const slot = 1 - read.best!.slot
    pool.devices.get(pv.lastPath)!.data.set(encodeVgsaCopy({ ...record, seq: 50, pvs },
      { pvId: pv.pvId, area: 0, slot }), vgsaSlotOffset(label, 0, slot))
  }
  const again = await varyOn(pool, 'vg')
  t.equal(again.rc, 'LVM_SUCCESS')
  t.ok(again.vg!.isStale(a.pvIndex, a.pp))
  t.ok(again.vg!.isStale(b.pvIndex, b.pp))
  t.ok(again.vg!.status.seq > 50, 'the merged status was committed above the fork')
  await again.vg!.varyOff()
})

void t.test('no status quorum: LVM_NOQUORUM without force, nothing written', async (t) => {
  const pool = new Pool(3)
  const d = await makeVg(pool, 'vg')
  for (const pv of d.pvs.slice(0, 2)) {
    const { label } = await vgsaOf(pool, pv.lastPath, d.vgId)
    pool.devices.get(pv.lastPath)!.data.fill(0, vgsaSlotOffset(label, 0, 0), vgsaSlotOffset(label, 0, 1) +
      label.vgsaSlotBytes)
  }
  const hashes = pool.hashes()
  const result = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener,
    flags: { misspvVon: true, missnameVon: true } })
  t.equal(result.rc, 'LVM_NOQUORUM')
  t.same(pool.hashes(), hashes)
  const forced = await varyOnVg({ vgName: 'vg', devices: pool.paths, opener: pool.opener,
    flags: { misspvVon: true, missnameVon: true, override: true } })
  t.equal(forced.rc, 'LVM_SUCCESS')
  await forced.vg!.varyOff()
  const after = await varyOn(pool, 'vg')
  t.equal(after.rc, 'LVM_SUCCESS', 'status copies were rewritten by the forced vary-on')
  await after.vg!.varyOff()
})
