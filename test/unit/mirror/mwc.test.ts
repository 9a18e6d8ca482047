/**
 * MWC: the runtime protocol on PV files (the codec: test/unit/format/mwc-log.test.ts). An LTG is in
 * the log on every PV holding a copy before the data write; recovery copies from the recorded
 * source and reports it; passive MWC resync on read.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeVg, FAKE_MWC_OFFSET, createFakeVg, patchCopy, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine } from '../../../src/mirror/index.js'

async function setup(t: Test, mwc: 'active' | 'passive'): Promise<{ vg: FakeVg, dir: string }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: 1024 * 1024, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: 4, copies: 2, mwc })
  return { vg, dir }
}

void t.test('active MWC: the LTG is logged on both PVs before the data write; recovery reports the source',
  async (t) => {
    const { vg, dir } = await setup(t, 'active')
    const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
    const order: string[] = []
    for (const pvIndex of [0, 1]) {
      const device = vg.faulty[pvIndex]!
      const write = device.write.bind(device)
      const writeDurable = device.writeDurable.bind(device)
      device.write = async (buffer, offsetBytes) => {
        order.push(`${pvIndex}:${offsetBytes < 1024 * 1024 ? 'mwc' : 'data'}`)
        await write(buffer, offsetBytes)
      }
      device.writeDurable = async (buffer, offsetBytes) => {
        order.push(`${pvIndex}:${offsetBytes < 1024 * 1024 ? 'mwc' : 'data'}-durable`)
        await writeDurable(buffer, offsetBytes)
      }
    }
    const lv = engine.open('lv0')
    await lv.write(randomBytes(4096), 3 * 256 * 1024 + 100)
    const firstData = order.findIndex((entry) => entry.endsWith('data'))
    t.ok(order.slice(0, firstData).includes('0:mwc-durable') && order.slice(0, firstData).includes('1:mwc-durable'),
      `both MWC records are durable before the first data write (${order.join(' ')})`)
    // Simulate a crash: copy 1 misses part of a write inside LTG 3, and the log still lists it.
    patchCopy(dir, vg, 'lv0', 1, 3 * 256 * 1024 + 100, randomBytes(4096))
    t.notOk(readCopy(dir, vg, 'lv0', 0).equals(readCopy(dir, vg, 'lv0', 1)), 'copies differ before recovery')
    await vg.varyOff()
    const again = await FakeVg.open(dir)
    t.teardown(() => again.varyOff())
    const recovered = await MirrorEngine.start(again, { ltgBytesMax: 256 * 1024 })
    const ltg = recovered.recovery.ltgs.find((entry) => entry.ltgIndex === 3)
    t.match(ltg, { lv: 'lv0', source: 0, targets: [1] }, 'LTG 3 made consistent from copy 0, recorded')
    t.ok(readCopy(dir, again, 'lv0', 0).equals(readCopy(dir, again, 'lv0', 1)), 'copies identical after recovery')
    const clean = await MirrorEngine.start(again, { ltgBytesMax: 256 * 1024 })
    t.same(clean.recovery.ltgs, [], 'the log is clean after recovery')
    t.ok(FAKE_MWC_OFFSET < 1024 * 1024)
  })

void t.test('passive MWC: dirty flag set by the first write, cleared on clean close; resync on read after a crash',
  async (t) => {
    const { vg, dir } = await setup(t, 'passive')
    const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
    const lv = engine.open('lv0')
    const data = randomBytes(4 * 1024 * 1024)
    await lv.write(data, 0)
    t.same(vg.status.dirtyLvs, [1], 'the first write set the dirty flag')
    await lv.close()
    t.same(vg.status.dirtyLvs, [], 'a clean close clears it')
    const lv2 = engine.open('lv0')
    await lv2.write(data.subarray(0, 4096), 0)
    // Crash: the flag stays set and the copies differ in LTG 5.
    patchCopy(dir, vg, 'lv0', 1, 5 * 256 * 1024, randomBytes(8192))
    await vg.varyOff()
    const again = await FakeVg.open(dir)
    t.teardown(() => again.varyOff())
    const recovered = await MirrorEngine.start(again, { ltgBytesMax: 256 * 1024 })
    t.same(recovered.recovery.forcedResync, ['lv0'])
    const reader = recovered.open('lv0', { readOnly: true })
    const block = Buffer.alloc(8192)
    await reader.read(block, 5 * 256 * 1024)
    t.ok(block.equals(data.subarray(5 * 256 * 1024, 5 * 256 * 1024 + 8192)), 'the read returns the source copy')
    const copy0 = readCopy(dir, again, 'lv0', 0).subarray(5 * 256 * 1024, 6 * 256 * 1024)
    const copy1 = readCopy(dir, again, 'lv0', 1).subarray(5 * 256 * 1024, 6 * 256 * 1024)
    t.ok(copy0.equals(copy1), 'reading the region synced it first (resync on read)')
    await reader.close()
    t.same(again.status.dirtyLvs, [1], 'the flag stays until the forced resync completes')
    await recovered.startBackground()
    t.same(again.status.dirtyLvs, [], 'cleared after the forced resync')
  })

void t.test('MWC recovery with an unreadable primary takes the next fresh copy and marks the primary stale',
  async (t) => {
    const { vg, dir } = await setup(t, 'active')
    const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
    const lv = engine.open('lv0')
    const data = randomBytes(256 * 1024)
    await lv.write(data, 2 * 256 * 1024)
    await vg.varyOff()
    const again = await FakeVg.open(dir)
    t.teardown(() => again.varyOff())
    again.faulty[0]!.readErrorRanges.push([1024 * 1024, Number.MAX_SAFE_INTEGER])
    const recovered = await MirrorEngine.start(again, { ltgBytesMax: 256 * 1024 })
    t.match(recovered.recovery.ltgs.find((ltg) => ltg.ltgIndex === 2), { source: 1, targets: [] })
    const primary = again.descriptor.lvs[0]!.lps[0]![0]!
    t.ok(again.isStale(primary.pvIndex, primary.pp), 'the unreadable primary is stale')
    const back = Buffer.alloc(data.length)
    await recovered.open('lv0', { readOnly: true }).read(back, 2 * 256 * 1024)
    t.ok(back.equals(data), 'reads are served by the surviving copy')
  })

void t.test('MWC off: a crash is reported as needing a forced resync, which clears the flag', async (t) => {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: 1024 * 1024, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  await vg.lvCreate({ name: 'lv0', lpCount: 2, copies: 2, mwc: 'off' })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  const data = randomBytes(2 * 1024 * 1024)
  await engine.open('lv0').write(data, 0)
  patchCopy(dir, vg, 'lv0', 1, 4096, randomBytes(4096)) // the crash left copy 1 behind
  await vg.varyOff()
  const again = await FakeVg.open(dir)
  t.teardown(() => again.varyOff())
  const recovered = await MirrorEngine.start(again, { ltgBytesMax: 256 * 1024 })
  t.same(recovered.recovery.needsForcedResync, ['lv0'])
  t.same(recovered.recovery.forcedResync, [], 'no automatic resync without MWC')
  const plain = await recovered.resyncer().resynclv('lv0', false)
  t.equal(plain.copiedBytes, 0, 'a stale-only resync finds nothing to do (no bit is stale)')
  const lv = recovered.open('lv0')
  await lv.close()
  t.same(again.status.dirtyLvs, [1], 'a clean close does not hide the crash')
  const forced = await recovered.forcedResync('lv0')
  t.equal(forced.copiedBytes, 2 * 1024 * 1024)
  t.same(again.status.dirtyLvs, [], 'the forced resync clears the flag')
  t.ok(readCopy(dir, again, 'lv0', 0).equals(readCopy(dir, again, 'lv0', 1)))
})

void t.test('MWC eviction syncs the PVs of unflushed LTGs only', async (t) => {
  const { vg } = await setup(t, 'active')
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024, mwcCacheLtgs: 4 })
  let syncs = 0
  for (const device of vg.faulty) {
    const sync = device.sync.bind(device)
    device.sync = async () => { syncs += 1; await sync() }
  }
  const lv = engine.open('lv0')
  const block = randomBytes(4096)
  for (const ltg of [0, 4, 8, 12]) await lv.write(block, ltg * 256 * 1024)
  syncs = 0
  for (const ltg of [1, 5, 9, 13]) await lv.write(block, ltg * 256 * 1024)
  t.ok(syncs > 0, `evicting unflushed LTGs synced their PVs (${syncs} syncs)`)
  await lv.flush()
  syncs = 0
  await lv.write(block, 2 * 256 * 1024) // evicts flushed LTGs (for LTG 2 and its look-ahead)
  t.equal(syncs, 0, 'LTGs made durable by a flush leave the log without another sync')
  await lv.close()
})

void t.test('concurrent pins beyond the cache never list more LTGs than a record holds', async (t) => {
  // Many writers wait in makeRoom at once; before the fix they all woke and inserted, the record
  // outgrew MWC_MAX_ENTRIES, the encoder asserted and the daemon marked every PV missing.
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: 1024 * 1024, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: 8, copies: 2, mwc: 'active' })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 16 * 1024, mwcCacheLtgs: 120 })
  const regions = Array.from({ length: 512 }, (_, i) => i)
  const held: number[] = []
  await Promise.all(regions.map(async (region) => {
    await engine.beforeWriteRegion('lv0', region)
    held.push(region)
    // Keep up to 100 pinned at once, like open write gates, then release in arrival order.
    while (held.length > 100) engine.afterWriteRegion('lv0', held.shift()!)
  }))
  for (const region of held.splice(0)) engine.afterWriteRegion('lv0', region)
  t.same([0, 1].map((pvIndex) => vg.pvState(pvIndex)), ['active', 'active'], 'no PV was marked missing')
  t.equal(engine.mirror.counters.pvsMarkedMissing, 0)
})

void t.test('a log write failing for a reason other than the device fails the write, not the PV', async (t) => {
  const { vg } = await setup(t, 'active')
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  const device = vg.faulty[1]!
  const writeDurable = device.writeDurable.bind(device)
  device.writeDurable = async () => { throw new TypeError('a defect in the record writer') }
  await t.rejects(engine.beforeWriteRegion('lv0', 2), { name: 'TypeError' }, 'the pin fails with the defect')
  t.same([0, 1].map((pvIndex) => vg.pvState(pvIndex)), ['active', 'active'], 'no PV was marked missing')
  device.writeDurable = writeDurable
  device.disappear()
  await engine.beforeWriteRegion('lv0', 3)
  t.same([0, 1].map((pvIndex) => vg.pvState(pvIndex)), ['active', 'missing'], 'a device error still marks its PV missing')
})
