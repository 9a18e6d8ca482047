/**
 * MirroredLv on real PV files behind FaultyDevice: mapping across LP boundaries, write fan-out,
 * read failover, stale marking before acknowledgement, EIO when no fresh copy remains, and a
 * 3-copy LV that survives losing two PVs. Each test checks bytes read back and the copies on
 * the PV files themselves.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeVg, createFakeVg, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine, buildVolumeMap } from '../../../src/mirror/index.js'

const PP = 1024 * 1024

async function setup(t: Test, options: { pvCount?: number, lps?: number, copies?: 1 | 2 | 3,
  schedule?: 'p' | 'ps' | 'pr' | 's' } = {}): Promise<{ vg: FakeVg, engine: MirrorEngine, dir: string }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: options.pvCount ?? 3, ppSizeBytes: PP, ppsPerPv: 16 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: options.lps ?? 4, copies: options.copies ?? 2,
    schedule: options.schedule ?? 'p', mwc: 'active' })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  return { vg, engine, dir }
}

void t.test('write then read back across LP boundaries; every copy holds the data', async (t) => {
  const { vg, engine, dir } = await setup(t)
  const lv = engine.open('lv0')
  const data = randomBytes(4 * PP)
  await lv.write(data.subarray(0, PP + 12345), 0)
  await lv.write(data.subarray(PP + 12345), PP + 12345)
  await lv.flush()
  const back = Buffer.alloc(3 * PP)
  await lv.read(back, PP / 2)
  t.ok(back.equals(data.subarray(PP / 2, PP / 2 + 3 * PP)), 'bytes read back equal bytes written')
  t.ok(readCopy(dir, vg, 'lv0', 0).equals(data), 'copy 0 on its PV file equals the data')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'copy 1 on its PV file equals the data')
  await t.rejects(lv.read(Buffer.alloc(10), 4 * PP - 5), { code: 'MIRROR_BAD_RANGE' })
  await lv.close()
})

void t.test('EIO on one copy during a write stream: acknowledged data kept, stale set, reads from the other copy',
  async (t) => {
    const { vg, engine, dir } = await setup(t)
    const lv = engine.open('lv0')
    const data = randomBytes(4 * PP)
    const chunk = 64 * 1024
    for (let offset = 0; offset < data.length; offset += chunk) {
      // Copy 1 lives on PV 1: its writes start failing a third of the way through.
      if (offset === 4 * PP / 3 - ((4 * PP / 3) % chunk)) vg.faulty[1]!.failWritesAfter(0)
      await lv.write(data.subarray(offset, offset + chunk), offset)
    }
    await lv.flush()
    t.ok(vg.stalePps()[1]!.length > 0, 'copies on the failing PV are marked stale')
    t.same(vg.stalePps()[0], [], 'the good copy is never marked stale')
    t.equal(vg.pvState(1), 'missing', 'repeated failures mark the PV missing')
    const back = Buffer.alloc(data.length)
    await lv.read(back, 0)
    t.ok(back.equals(data), 'every acknowledged byte reads back (served by copy 0)')
    t.ok(readCopy(dir, vg, 'lv0', 0).equals(data), 'copy 0 holds all data')
    await lv.close()
  })

void t.test('read failover: a read error on the primary marks it stale and serves the other copy', async (t) => {
  const { vg, engine } = await setup(t, { schedule: 's' })
  const lv = engine.open('lv0')
  const data = randomBytes(PP)
  await lv.write(data, 0)
  const primary = vg.descriptor.lvs[0]!.lps[0]![0]!
  vg.faulty[primary.pvIndex]!.readErrorRanges.push([0, Number.MAX_SAFE_INTEGER])
  const back = Buffer.alloc(PP)
  await lv.read(back, 0)
  t.ok(back.equals(data), 'data comes from the secondary copy')
  t.ok(vg.isStale(primary.pvIndex, primary.pp), 'the failing copy is stale')
  const map = buildVolumeMap(vg, vg.descriptor.lvs[0]!)
  t.equal(map.extents[0]!.copies[0]!.stale, true, 'the volume map never sends reads to the stale copy')
  t.equal(map.readPolicy, 'primary', 'sequential schedule reads the primary')
  t.equal(map.writeSchedule, 'sequential')
  await lv.close()
})

void t.test('no fresh copy left: the I/O fails with EIO and the last copy is not marked stale', async (t) => {
  const { vg, engine } = await setup(t, { copies: 2 })
  const lv = engine.open('lv0')
  await lv.write(randomBytes(4096), 0) // LTG 0 is now in the MWC log: the next write goes straight to data
  vg.faulty[0]!.failWritesAfter(0)
  vg.faulty[1]!.failWritesAfter(0)
  const error = await lv.write(randomBytes(4096), 0).catch((caught: unknown) => caught)
  t.match(error, { code: 'MIRROR_NO_FRESH_COPY' })
  t.equal((error as { errno: number }).errno, 5, 'the request answers EIO')
  const stale = vg.stalePps()
  t.equal(stale[0]!.length + stale[1]!.length, 1, 'exactly one copy of LP 0 was marked stale, never both')
  await lv.close().catch(() => {})
})

void t.test('a 3-copy LV survives losing two PVs', async (t) => {
  const { vg, engine, dir } = await setup(t, { copies: 3 })
  const lv = engine.open('lv0')
  const data = randomBytes(4 * PP)
  await lv.write(data, 0)
  vg.faulty[0]!.disappear()
  vg.faulty[2]!.disappear()
  const update = randomBytes(PP)
  await lv.write(update, PP)
  update.copy(data, PP)
  await lv.flush()
  const back = Buffer.alloc(4 * PP)
  await lv.read(back, 0)
  t.ok(back.equals(data), 'reads return the newest data from the one surviving copy')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'the surviving copy holds everything')
  t.ok(vg.isStale(0, vg.descriptor.lvs[0]!.lps[1]![0]!.pp), 'copies on the lost PVs are stale for the LP written')
  await lv.close()
})

void t.test('read errors on 64 random sectors of one copy: every read still returns the data', async (t) => {
  const { vg, engine } = await setup(t, { lps: 4 })
  const lv = engine.open('lv0')
  const data = randomBytes(4 * PP)
  await lv.write(data, 0)
  let seed = 7
  for (let index = 0; index < 64; index++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    const sector = 2048 + (seed % (4 * 2048)) // data area of PV 0 (copy 0), 512-byte sectors
    vg.faulty[0]!.readErrorRanges.push([sector * 512, sector * 512 + 512])
  }
  const back = Buffer.alloc(4 * PP)
  for (let offset = 0; offset < back.length; offset += 65536) {
    await lv.read(back.subarray(offset, offset + 65536), offset)
  }
  t.ok(back.equals(data), 'every byte correct (failover to copy 1)')
  t.ok(engine.mirror.counters.copyErrors > 0, `${engine.mirror.counters.copyErrors} copy read errors handled`)
  await lv.close()
})
