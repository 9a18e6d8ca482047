/**
 * The policy the native data path calls (what the daemon wires to the VolumeMap events):
 * buildVolumeMap, the gate callback (beforeWriteRegion: MWC record on disk before the gate
 * opens, absent copies marked stale) and the copy-error callback (stale-and-continue, fail on
 * the last fresh copy, PV MISSING after repeated errors).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { scanMwcArea } from '../../../src/format/mwc-log.js'
import { FAKE_MWC_BYTES, FAKE_MWC_OFFSET, FakeVg, createFakeVg } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine, buildVolumeMap } from '../../../src/mirror/index.js'

const PP = 1024 * 1024

function newestRecordOnDisk(dir: string, vg: FakeVg, pvIndex: number) {
  const bytes = readFileSync(join(dir, `pv${pvIndex}.img`)).subarray(FAKE_MWC_OFFSET, FAKE_MWC_OFFSET + FAKE_MWC_BYTES)
  return scanMwcArea(bytes, { vgId: vg.vgId, pvId: vg.descriptor.pvs[pvIndex]!.pvId }).newest?.record
}

void t.test('buildVolumeMap, beforeWriteRegion and onCopyError as the daemon uses them', async (t) => {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 3, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  const lv = await vg.lvCreate({ name: 'lv0', lpCount: 3, copies: 2, schedule: 'pr', mwc: 'active' })
  await vg.lvCreate({ name: 'lin', lpCount: 1, copies: 1 })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024, errorsBeforeMissing: 2 })

  const map = engine.buildVolumeMap('lv0')
  t.equal(map.sizeBytes, 3 * PP)
  t.equal(map.extentBytes, PP)
  t.equal(map.gateBytes, 256 * 1024, 'gate regions are the LTGs')
  t.equal(map.readPolicy, 'round-robin')
  t.equal(map.writeSchedule, 'parallel')
  t.same(map.extents[1]!.copies.map((copy) => [copy.fd, copy.offsetBytes, copy.stale]),
    lv.lps[1]!.map((copy) => [vg.device(copy.pvIndex)!.fd, vg.ppOffsetBytes(copy.pvIndex, copy.pp), false]))
  t.equal(engine.buildVolumeMap('lin').gateBytes, 0, 'a linear LV is never gated')

  await engine.beforeWriteRegion('lv0', 5)
  for (const pvIndex of [0, 1]) {
    t.match(newestRecordOnDisk(dir, vg, pvIndex)?.entries, [{ lvId: lv.lvId, ltgIndex: 5 }],
      `LTG 5 is in the MWC record on PV ${pvIndex} before the gate opens`)
  }
  engine.afterWriteRegion('lv0', 5)

  t.equal(await engine.onCopyError('lv0', 2, 1, 5, true), 'stale-and-continue')
  t.ok(vg.isStale(lv.lps[2]![1]!.pvIndex, lv.lps[2]![1]!.pp), 'the failed copy is stale (committed)')
  t.equal(await engine.onCopyError('lv0', 2, 0, 5, true), 'fail', 'the last fresh copy fails the request')
  t.notOk(vg.isStale(lv.lps[2]![0]!.pvIndex, lv.lps[2]![0]!.pp), 'and is never marked stale')
  t.equal(vg.pvState(lv.lps[2]![1]!.pvIndex), 'active')
  t.equal(await engine.onCopyError('lv0', 0, 1, 5, false), 'stale-and-continue', 'a read error fails over')
  t.equal(vg.pvState(lv.lps[0]![1]!.pvIndex), 'missing', 'the second error on the PV marks it missing')
  const after = engine.buildVolumeMap('lv0')
  t.same(after.extents[1]!.copies.map((copy) => copy.stale), [false, true], 'copies on a missing PV are stale in the map')
  t.equal(after.extents[1]!.copies[1]!.fd, -1)
  await engine.beforeWriteRegion('lv0', 4)
  t.ok(vg.isStale(lv.lps[1]![1]!.pvIndex, lv.lps[1]![1]!.pp), 'the gate marks the absent copy stale before the write')
  engine.afterWriteRegion('lv0', 4)
  await t.rejects(engine.beforeWriteRegion('lv0', 12), { code: 'MIRROR_BAD_RANGE' })
  t.same(buildVolumeMap(vg, vg.lvByName('lv0')!).extents.length, 3)
})

void t.test('the exclusive hook runs under the region lock before every resync copy', async (t) => {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  const lv = await vg.lvCreate({ name: 'lv0', lpCount: 2, copies: 2 })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  const closed: number[] = []
  engine.mirror.setExclusiveHook(async (lvId, region) => {
    t.equal(lvId, lv.lvId)
    closed.push(region)
  })
  await vg.markStale([lv.lps[1]![1]!])
  await engine.resyncer().resynclp('lv0', 1, false)
  t.same(closed, [4, 5, 6, 7], 'the daemon is asked to close and drain the gate of each region copied')
  t.equal(typeof engine.policy.onCopyError, 'function')
})

void t.test('during a resync the stale target is writeOnly in the volume map, and listeners hear of it', async (t) => {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  const lv = await vg.lvCreate({ name: 'lv0', lpCount: 2, copies: 2 })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  await vg.markStale([lv.lps[1]![1]!])
  const idle = engine.buildVolumeMap('lv0').extents[1]!.copies[1] as unknown as { writeOnly: boolean, fd: number }
  t.match(idle, { writeOnly: false, fd: -1, stale: true }, 'before the resync: stale, untouched')
  const events: number[] = []
  engine.mirror.onWriteThroughChange((lvId) => events.push(lvId))
  let during: { writeOnly: boolean, fd: number, stale: boolean } | undefined
  engine.mirror.setExclusiveHook(async () => {
    during ??= engine.buildVolumeMap('lv0').extents[1]!.copies[1] as unknown as typeof during
  })
  await engine.resyncer().resynclp('lv0', 1, false)
  t.match(during, { writeOnly: true, stale: true, fd: vg.device(lv.lps[1]![1]!.pvIndex)!.fd },
    'while copying: written like a fresh copy, never read')
  t.same(events, [lv.lvId, lv.lvId], 'a change when the resync starts and when it finishes')
  t.match(engine.buildVolumeMap('lv0').extents[1]!.copies[1], { stale: false, writeOnly: false }, 'fresh afterwards')
})
