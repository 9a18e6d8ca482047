/**
 * Write-intent bitmap (src/mirror/intent-bitmap.ts) on PV files: while a PV is gone, the chunks
 * written are marked and the resync of its returning copies copies exactly those chunks; the
 * bits survive a clean stop (activity-log records) and a crash (the logged extents are added);
 * an LP stale before tracking, a crashed LV without the log, and an unreadable log all resync
 * whole; the bits of an LP are dropped once every copy is fresh.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { openSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { FAKE_MWC_BYTES, FAKE_MWC_OFFSET, FakeVg, createFakeVg, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine } from '../../../src/mirror/index.js'

const PP = 1024 * 1024
const LTG = 256 * 1024
const CHUNK = 64 * 1024

async function setup(t: Test, mwc: 'active' | 'passive' = 'active'): Promise<{ vg: FakeVg, engine: MirrorEngine, dir: string, model: Buffer }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: 4, copies: 2, mwc })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: LTG })
  const model = randomBytes(4 * PP)
  const lv = engine.open('lv0')
  await lv.write(model, 0)
  await lv.close()
  return { vg, engine, dir, model }
}

/** Writes 4 KiB blocks at `offsets` while PV 1 is gone (MISSING); returns the handle still open. */
async function writeDegraded(engine: MirrorEngine, vg: FakeVg, model: Buffer, offsets: readonly number[]) {
  vg.faulty[1]!.disappear()
  await vg.setPvState(1, 'missing')
  const lv = engine.open('lv0')
  for (const offset of offsets) {
    const block = randomBytes(4096)
    await lv.write(block, offset)
    block.copy(model, offset)
  }
  return lv
}

const OFFSETS = [PP + 5 * CHUNK + 100, PP + 5 * CHUNK + 9000, PP + 9 * CHUNK, 3 * PP + 2 * CHUNK - 4096 + 2048]

void t.test('chunks written while a PV is gone: marked, kept across a clean stop, and all a resync copies', async (t) => {
  const { vg, engine, dir, model } = await setup(t)
  const lv = await writeDegraded(engine, vg, model, OFFSETS)
  const mirror = engine.mirror
  const lvd = mirror.lv('lv0')
  t.same(mirror.resyncRanges(lvd, 1, [1]), [{ offsetInLpBytes: 5 * CHUNK, lengthBytes: CHUNK },
    { offsetInLpBytes: 9 * CHUNK, lengthBytes: CHUNK }], 'LP 1: the two chunks written')
  t.same(mirror.resyncRanges(lvd, 3, [1]), [{ offsetInLpBytes: CHUNK, lengthBytes: 2 * CHUNK }],
    'LP 3: a write across a chunk boundary marks both chunks')
  t.equal(mirror.resyncRanges(lvd, 0, [1]), undefined, 'an LP never degraded is not tracked')
  await lv.close()
  await engine.stop()
  await vg.varyOff()

  const again = await FakeVg.open(dir, { autoResync: true })
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  t.same(engine2.mirror.resyncRanges(engine2.mirror.lv('lv0'), 1, [1]), mirror.resyncRanges(lvd, 1, [1]),
    'the bitmap came back from the activity-log records')
  const background = await engine2.startBackground()
  t.equal(background.autoResync?.copiedBytes, 4 * CHUNK, 'four chunks copied, not two partitions')
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model), 'copy 1 equals the model')
  t.same(again.stalePps(), [[], []], 'no stale partition left')
  t.equal(engine2.mirror.resyncRanges(engine2.mirror.lv('lv0'), 1, [1]), undefined, 'the bits were dropped')
})

void t.test('after a crash the logged extents of a tracked LP are added to its bits', async (t) => {
  const { vg, engine, dir, model } = await setup(t)
  await writeDegraded(engine, vg, model, OFFSETS)
  // Crash: no close, no stop; the records on PV 0 are what the next vary-on finds.
  const again = await FakeVg.open(dir, { autoResync: true })
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  const ranges = engine2.mirror.resyncRanges(engine2.mirror.lv('lv0'), 1, [1]) ?? []
  const covered = (offset: number): boolean => ranges.some((range) =>
    offset - PP >= range.offsetInLpBytes && offset - PP < range.offsetInLpBytes + range.lengthBytes)
  t.ok(OFFSETS.slice(0, 3).every(covered), 'every chunk written is covered')
  t.ok(ranges.every((range) => range.lengthBytes % CHUNK === 0), 'in whole chunks')
  await engine2.startBackground()
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model), 'copy 1 equals the model')
  void vg
})

void t.test('after a crash, extents that left the log resync by their chunks only', async (t) => {
  const { vg, engine, dir, model } = await setup(t)
  await engine.stop() // a clean stop empties the log
  const small = await MirrorEngine.start(vg, { ltgBytesMax: LTG, mwcCacheLtgs: 1 })
  await writeDegraded(small, vg, model, OFFSETS) // each new extent evicts the previous one
  const again = await FakeVg.open(dir, { autoResync: true })
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  const background = await engine2.startBackground()
  // LP 1: its two chunks; LP 3: the extent still in the log at the crash (it holds both chunks).
  t.equal(background.autoResync?.copiedBytes, 2 * CHUNK + LTG, 'chunks, plus the extent the log still listed')
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model), 'copy 1 equals the model')
})

void t.test('a write that fails on one copy marks its chunks and starts tracking the LP', async (t) => {
  const { vg, engine, dir, model } = await setup(t)
  vg.faulty[1]!.disappear() // fails every I/O, PV still ACTIVE until enough errors
  const lv = engine.open('lv0')
  const block = randomBytes(4096)
  await lv.write(block, 2 * PP + 7 * CHUNK)
  block.copy(model, 2 * PP + 7 * CHUNK)
  t.same(engine.mirror.resyncRanges(engine.mirror.lv('lv0'), 2, [1]), [{ offsetInLpBytes: 7 * CHUNK, lengthBytes: CHUNK }])
  t.same(vg.stalePps()[1], [engine.mirror.lv('lv0').lps[2]![1]!.pp], 'the failed copy is stale')
  void dir
})

void t.test('an LP stale before tracking started resyncs whole', async (t) => {
  const { vg, engine, dir, model } = await setup(t)
  const lvd = engine.mirror.lv('lv0')
  await vg.markStale([lvd.lps[2]![1]!]) // not through the engine: nothing knows what differs
  t.equal(engine.mirror.resyncRanges(lvd, 2, [1]), undefined, 'untracked: the whole LP')
  await engine.stop()
  await vg.varyOff()
  const again = await FakeVg.open(dir, { autoResync: true })
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  t.equal((await engine2.startBackground()).autoResync?.copiedBytes, PP)
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model))
})

void t.test('a crashed passive LV does not trust its bits', async (t) => {
  const { vg, engine, dir, model } = await setup(t, 'passive')
  const lv = await writeDegraded(engine, vg, model, OFFSETS)
  t.ok(engine.mirror.resyncRanges(engine.mirror.lv('lv0'), 1, [1]) !== undefined, 'tracked while running')
  await engine.mirror.mwc.writeClean() // a record with the bitmap reached PV 0 ...
  void lv // ... then the daemon died with the LV open (dirty flag set)
  const again = await FakeVg.open(dir)
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  t.equal(engine2.mirror.resyncRanges(engine2.mirror.lv('lv0'), 1, [1]), undefined, 'untracked after the crash')
})

void t.test('an unreadable activity log: full forced resync of the LVs with a copy there, reported', async (t) => {
  const { vg, engine, dir } = await setup(t)
  await engine.stop()
  await vg.varyOff()
  const fd = openSync(join(dir, 'pv0.img'), 'r+')
  writeSync(fd, Buffer.alloc(FAKE_MWC_BYTES, 0x5a), 0, FAKE_MWC_BYTES, FAKE_MWC_OFFSET)
  closeSync(fd)
  const again = await FakeVg.open(dir)
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  t.same(engine2.recovery.unreadableLogs, [{ pvIndex: 0, lvs: ['lv0'] }], 'reported with the PV and its LVs')
  t.same(engine2.recovery.forcedResync, ['lv0'], 'the LV gets a forced resync')
  const background = await engine2.startBackground()
  t.equal(background.forced[0]?.copiedBytes, 4 * PP, 'every partition copied')
})

void t.test('a failed sync marks the whole partition: any write since the last sync may be lost there', async (t) => {
  const { vg, engine } = await setup(t)
  const lv = engine.open('lv0')
  await lv.write(randomBytes(4096), PP + 3 * CHUNK)
  vg.faulty[1]!.disappear()
  await lv.flush() // copy 1 of LP 1 was written since the last sync; its sync fails
  t.same(engine.mirror.resyncRanges(engine.mirror.lv('lv0'), 1, [1]), [{ offsetInLpBytes: 0, lengthBytes: PP }],
    'the whole LP, not the chunk written')
})
