/**
 * The mirror engine on the real VolumeGroup (lvm/ vary-on, VGSA commits, MWC area from the PV
 * layout), PVs on memory devices behind FaultyDevice: a write stream with one failing PV marks
 * stale bits that survive a re-varyon and auto_resync repairs; MWC recovery across vary-off/on.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'
import { MirrorEngine } from '../../../src/mirror/index.js'
import type { VolumeGroup } from '../../../src/lvm/index.js'

async function readCopy(vg: VolumeGroup, lvName: string, copyIndex: number): Promise<Buffer> {
  const lv = vg.lvByName(lvName)!
  const out = Buffer.alloc(lv.lps.length * vg.ppSizeBytes)
  for (let lp = 0; lp < lv.lps.length; lp++) {
    const copy = lv.lps[lp]![copyIndex]!
    await vg.device(copy.pvIndex)!.read(out.subarray(lp * vg.ppSizeBytes, (lp + 1) * vg.ppSizeBytes),
      vg.ppOffsetBytes(copy.pvIndex, copy.pp))
  }
  return out
}

void t.test('real VG: failing PV → stale in the VGSA → re-varyon with auto_resync → identical copies', async (t) => {
  const pool = new Pool(3)
  await makeVg(pool, 'vg0')
  const first = await varyOn(pool, 'vg0')
  t.equal(first.rc, 'LVM_SUCCESS', first.error?.message ?? 'vary-on')
  const vg = first.vg!
  const lvd = await vg.lvCreate({ name: 'm', lpCount: 8, copies: 2, mwc: 'active' })
  const engine = await MirrorEngine.start(vg)
  const lv = engine.open('m')
  const data = randomBytes(lv.sizeBytes)
  const failing = lvd.lps[0]![1]!.pvIndex
  const chunk = 16 * 1024
  for (let offset = 0; offset < data.length; offset += chunk) {
    if (offset === data.length / 2) pool.opened.filter((d) => d.path === pool.paths[failing]).at(-1)!.failWritesAfter(0)
    await lv.write(data.subarray(offset, offset + chunk), offset)
  }
  await lv.flush()
  const stale = lvd.lps.filter((copies) => vg.isStale(copies[1]!.pvIndex, copies[1]!.pp)).length
  t.ok(stale > 0, `${stale} LPs have a stale copy recorded in the VGSA`)
  const back = Buffer.alloc(data.length)
  await lv.read(back, 0)
  t.ok(back.equals(data), 'every acknowledged byte reads back')
  await lv.close()
  await engine.stop()
  await vg.varyOff()

  const again = await varyOn(pool, 'vg0', { misspvVon: true, missnameVon: true, autoResync: true })
  t.equal(again.rc, 'LVM_SUCCESS', again.error?.message ?? 'vary-on')
  const vg2 = again.vg!
  t.ok(vg2.lvByName('m')!.lps.some((copies) => vg2.isStale(copies[1]!.pvIndex, copies[1]!.pp)),
    'stale bits survived the vary-off/on')
  const engine2 = await MirrorEngine.start(vg2)
  const background = await engine2.startBackground()
  t.same(background.autoResync?.failed, [], 'auto_resync synced every stale LP')
  t.ok(vg2.lvByName('m')!.lps.every((copies) => !vg2.isStale(copies[1]!.pvIndex, copies[1]!.pp)), 'no stale bit left')
  t.ok((await readCopy(vg2, 'm', 0)).equals(data), 'copy 0 holds the data')
  t.ok((await readCopy(vg2, 'm', 1)).equals(data), 'copy 1 holds the data')
  await engine2.stop()
  await vg2.varyOff()
})

void t.test('real VG: LTGs left in the MWC log are made consistent at the next vary-on', async (t) => {
  const pool = new Pool(2)
  await makeVg(pool, 'vg1')
  const vg = (await varyOn(pool, 'vg1')).vg!
  const lvd = await vg.lvCreate({ name: 'm', lpCount: 4, copies: 2, mwc: 'active' })
  const engine = await MirrorEngine.start(vg)
  const lv = engine.open('m')
  const data = randomBytes(lv.sizeBytes)
  await lv.write(data, 0)
  await lv.flush()
  // A "crash" mid-write: copy 1 of LP 2 got other bytes, and no clean MWC record was written.
  const copy = lvd.lps[2]![1]!
  await vg.device(copy.pvIndex)!.write(randomBytes(4096), vg.ppOffsetBytes(copy.pvIndex, copy.pp) + 8192)
  await vg.varyOff()
  const vg2 = (await varyOn(pool, 'vg1')).vg!
  const engine2 = await MirrorEngine.start(vg2)
  t.ok(engine2.recovery.ltgs.some((ltg) => ltg.source === 0 && ltg.targets.includes(1)), 'recovery copied from copy 0')
  t.ok((await readCopy(vg2, 'm', 1)).equals(await readCopy(vg2, 'm', 0)), 'copies identical after recovery')
  t.ok((await readCopy(vg2, 'm', 0)).equals(data))
  await engine2.stop()
  await vg2.varyOff()
})

void t.test('real VG: with a PV MISSING, a write into a new activity-log extent lands on the other copy', async (t) => {
  const pool = new Pool(3)
  await makeVg(pool, 'vg0')
  const vg = (await varyOn(pool, 'vg0')).vg!
  t.teardown(() => vg.varyOff())
  const lvd = await vg.lvCreate({ name: 'm', lpCount: 4, copies: 2, mwc: 'active' })
  const engine = await MirrorEngine.start(vg)
  const lost = lvd.lps[0]![1]!.pvIndex
  await vg.setPvState(lost, 'missing')
  // The missing PV has no activity-log area to measure: the log's per-PV bound must skip it.
  const lv = engine.open('m')
  const data = randomBytes(64 * 1024)
  await lv.write(data, 0)
  await lv.flush()
  const back = Buffer.alloc(data.length)
  await lv.read(back, 0)
  t.ok(back.equals(data), 'written and read back')
  t.ok(vg.isStale(lvd.lps[0]![1]!.pvIndex, lvd.lps[0]![1]!.pp), 'the copy on the missing PV is stale')
  await lv.close()
  await engine.stop()
})

void t.test('a PV that stops answering goes MISSING at its first error, also under a last copy', async (t) => {
  const pool = new Pool(3)
  await makeVg(pool, 'vg0')
  const vg = (await varyOn(pool, 'vg0')).vg!
  t.teardown(() => vg.varyOff().catch(() => undefined))
  const lvd = await vg.lvCreate({ name: 'one', lpCount: 2, copies: 1 })
  const engine = await MirrorEngine.start(vg)
  t.teardown(() => engine.stop())
  const lv = engine.open('one')
  const pvIndex = lvd.lps[0]![0]!.pvIndex
  const device = pool.opened.filter((d) => d.path === pool.paths[pvIndex]).at(-1)!
  device.failWritesAfter(0)
  await t.rejects(lv.write(Buffer.alloc(4096, 1), 0), { code: 'MIRROR_NO_FRESH_COPY' }, 'a failed block: EIO')
  t.equal(vg.pvState(pvIndex), 'active', 'one failed write on the last copy leaves the PV active (a bad block)')
  device.stopAnswering()
  await t.rejects(lv.write(Buffer.alloc(4096, 2), 0))
  t.equal(vg.pvState(pvIndex), 'missing', 'a device that stopped answering is MISSING at once (the VG keeps quorum)')
  t.equal(vg.state, 'online')
})
