/**
 * Resync by byte ranges (mirror.resyncRanges, narrowRanges) on real PV files: only the ranges
 * are written (bytes outside them keep the target's old contents), every region a range touches
 * is taken exclusive, narrowRanges runs under the region lock and progress counts the whole
 * range as done but only what was written as copied, a checkpoint cursor inside sparse ranges
 * resumes correctly, and the bytes move natively (an injected native fault on the target's fd
 * reaches the resync; the TypeScript path does not see it), through a daemon's O_DIRECT fds when
 * registered.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync } from 'node:fs'
import { FakeVg, createFakeVg, patchCopy, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine, setDirectCopyFds, type LpRange } from '../../../src/mirror/index.js'
import type { LvDescriptor } from '../../../src/lvm/index.js'
import { FaultBit, setFdFault } from '../../../src/fuse/native-session.js'
import type { FaultyDevice } from '../../../src/io/index.js'

const PP = 1024 * 1024
const LTG = 256 * 1024

interface Bed {
  vg: FakeVg
  engine: MirrorEngine
  dir: string
  model: Buffer
  garbage: Buffer
}

/** Two 2-copy LPs, copy 1 stale in both and overwritten with garbage. */
async function bed(t: Test, lps = 2): Promise<Bed> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 2, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: lps, copies: 2, mwc: 'active' })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: LTG })
  const model = randomBytes(lps * PP)
  const lv = engine.open('lv0')
  await lv.write(model, 0)
  await lv.close()
  await vg.markStale(vg.descriptor.lvs[0]!.lps.map((copies) => copies[1]!))
  const garbage = randomBytes(lps * PP)
  patchCopy(dir, vg, 'lv0', 1, 0, garbage)
  return { vg, engine, dir, model, garbage }
}

/** What copy 1 must hold after copying `ranges` (per LP) from copy 0 over `garbage`. */
function expected(model: Buffer, garbage: Buffer, ranges: ReadonlyArray<readonly LpRange[]>): Buffer {
  const out = Buffer.from(garbage)
  ranges.forEach((list, lp) => {
    for (const range of list) {
      const at = lp * PP + range.offsetInLpBytes
      model.copy(out, at, at, at + range.lengthBytes)
    }
  })
  return out
}

function useRanges(engine: MirrorEngine, ranges: ReadonlyArray<readonly LpRange[]>): void {
  engine.mirror.resyncRanges = (_lv: LvDescriptor, lp: number) => ranges[lp]
}

const sum = (ranges: ReadonlyArray<readonly LpRange[]>): number =>
  ranges.flat().reduce((total, range) => total + range.lengthBytes, 0)

// LP 0: a small unaligned range, one spanning regions 0 and 1, one to the end of the LP; LP 1:
// none (the bitmap says its stale copy missed nothing).
const RANGES: LpRange[][] = [
  [{ offsetInLpBytes: 100, lengthBytes: 5000 }, { offsetInLpBytes: LTG - 1000, lengthBytes: 3000 },
    { offsetInLpBytes: 3 * LTG + 7, lengthBytes: LTG - 7 }],
  [],
]

for (const copyMethod of ['auto', 'typescript'] as const) {
  void t.test(`${copyMethod}: only the ranges are copied, under the lock of every region they touch`, async (t) => {
    const { vg, engine, dir, model, garbage } = await bed(t)
    useRanges(engine, RANGES)
    // Regions held exclusive now (the copy's locks; resync may also take and drop every region
    // of an LP first to settle writes in flight).
    const held = new Set<number>()
    const lock = engine.mirror.lockRegionExclusive.bind(engine.mirror)
    engine.mirror.lockRegionExclusive = async (lvId, region) => {
      const release = await lock(lvId, region)
      held.add(region)
      return () => {
        held.delete(region)
        release()
      }
    }
    const locked: number[] = []
    const seen: Array<{ done: number, total: number, copied: number }> = []
    const report = await engine.resyncer({ copyMethod, onProgress: (p) => {
      seen.push({ done: p.doneBytes, total: p.totalBytes, copied: p.copiedBytes })
    }, narrowRanges: async (_lv, lp, _source, _targets, range) => {
      const first = lp * 4 + Math.floor(range.offsetInLpBytes / LTG)
      const last = lp * 4 + Math.floor((range.offsetInLpBytes + range.lengthBytes - 1) / LTG)
      for (let region = first; region <= last; region++) {
        t.ok(held.has(region), `region ${region} is held while its piece is copied`)
        locked.push(region)
      }
      return [range]
    } }).resynclv('lv0', false)
    t.same(report.failed, [])
    t.ok(readCopy(dir, vg, 'lv0', 1).equals(expected(model, garbage, RANGES)),
      'copy 1 = the model inside the ranges, its old bytes everywhere else')
    t.equal(report.copiedBytes, sum(RANGES), 'copied = the ranges, not the partitions')
    t.same([...new Set(locked)].sort((a, b) => a - b), [0, 1, 3], 'regions 0, 1 and 3 of LP 0 were copied')
    t.same(seen.at(-1), { done: sum(RANGES), total: sum(RANGES), copied: sum(RANGES) }, 'progress ends at the total')
    t.same(vg.stalePps(), [[], []], 'both LPs finished: stale bits cleared')
  })
}

void t.test('narrowRanges runs under the region lock; done counts the range, copied what was written', async (t) => {
  const { vg, engine, dir, model, garbage } = await bed(t, 1)
  const lv = engine.open('lv0')
  let writeDone = false
  let writeStarted = false
  const written: LpRange[] = []
  const narrowed: Array<{ range: LpRange, source: number, targets: readonly number[] }> = []
  // Forced: resyncRanges is ignored, the whole LP is visited region by region.
  const report = await engine.resyncer({ narrowRanges: async (_lv, _lp, source, targets, range) => {
    narrowed.push({ range, source, targets })
    if (!writeStarted && range.offsetInLpBytes === 2 * LTG) {
      // A writer into this region must wait for the lock the resync holds now.
      writeStarted = true
      void lv.write(Buffer.alloc(512, 0xab), 2 * LTG + 4096).then(() => { writeDone = true })
      await new Promise((resolve) => setTimeout(resolve, 50))
      t.notOk(writeDone, 'a write into the region waits while narrowRanges runs')
    }
    // Keep 4 KiB at the start and the last 100 bytes of each range.
    const parts = [{ offsetInLpBytes: range.offsetInLpBytes, lengthBytes: 4096 },
      { offsetInLpBytes: range.offsetInLpBytes + range.lengthBytes - 100, lengthBytes: 100 }]
    written.push(...parts)
    return parts
  } }).resynclv('lv0', true)
  await lv.flush()
  t.ok(writeDone, 'the write completed after the region')
  t.same(narrowed.map((entry) => entry.range),
    [0, 1, 2, 3].map((r) => ({ offsetInLpBytes: r * LTG, lengthBytes: LTG })),
    'one call per region of the LP, each with the whole region')
  t.ok(narrowed.every((entry) => entry.source === 0 && entry.targets.length === 1 && entry.targets[0] === 1))
  t.equal(report.copiedBytes, written.length / 2 * (4096 + 100), 'copied counts the narrowed parts only')
  t.equal(engine.resyncer().progress().doneBytes, 0, 'a fresh resyncer starts at 0')
  const want = expected(model, garbage, [written])
  Buffer.alloc(512, 0xab).copy(want, 2 * LTG + 4096)  // the write that waited reached both copies
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(want), 'copy 1: model in the parts, the write, old bytes elsewhere')
  await lv.close()
})

void t.test('progress: doneBytes counts whole ranges even where narrowRanges writes nothing', async (t) => {
  const { engine } = await bed(t, 1)
  useRanges(engine, [RANGES[0]!])
  const done: number[] = []
  const report = await engine.resyncer({ narrowRanges: async () => [],
    onProgress: (p) => done.push(p.doneBytes) }).resynclv('lv0', false)
  t.equal(report.copiedBytes, 0, 'nothing written')
  t.equal(done.at(-1), sum([RANGES[0]!]), 'all of it done')
  t.equal(done.length, 3, 'one event per region visited (0, 1, 3)')
})

void t.test('a cursor inside sparse ranges: resume copies only what is left of them', async (t) => {
  const { vg, engine, dir, model, garbage } = await bed(t, 1)
  // Regions 0, 2 and 3 of the LP; region 1 untouched.
  const ranges: LpRange[][] = [[{ offsetInLpBytes: 10, lengthBytes: 1000 },
    { offsetInLpBytes: 2 * LTG + 5, lengthBytes: LTG + 100 }]]
  useRanges(engine, ranges)
  const abort = new AbortController()
  await t.rejects(engine.resyncer({ checkpointEveryRegions: 1, fillTargetBytes: LTG, signal: abort.signal,
    onProgress: () => abort.abort() }).resynclv('lv0', false), { name: 'AbortError' })
  const cursor = engine.mirror.mwc.cursor(vg.descriptor.lvs[0]!.lvId, 0)
  t.equal(cursor?.offsetInLpBytes, 2 * LTG, 'the cursor is the start of the first region not finished')
  await engine.stop()
  await vg.varyOff()
  const again = await FakeVg.open(dir)
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  useRanges(engine2, ranges)
  const report = await engine2.resyncer().resynclv('lv0', false)
  t.equal(report.lps[0]!.resumedFromBytes, 2 * LTG)
  t.equal(report.copiedBytes, LTG + 100, 'the resumed run copied the second range only')
  t.ok(readCopy(dir, again, 'lv0', 1).equals(expected(model, garbage, ranges)))
  t.same(again.stalePps(), [[], []])
})

void t.test('the copy is native: an injected fault on the target fd fails the target; TypeScript sees none', async (t) => {
  const { vg, engine, dir, model } = await bed(t, 1)
  const target = vg.descriptor.lvs[0]!.lps[0]![1]!
  const fd = (vg.device(target.pvIndex) as FaultyDevice).inner.fd
  setFdFault(fd, FaultBit.WRITE, vg.ppOffsetBytes(target.pvIndex, target.pp) + LTG, 1)
  t.teardown(() => setFdFault(fd, 0))
  const native = await engine.resyncer().resynclv('lv0', false)
  t.same(native.failed.map((entry) => entry.code), ['LVM_NOTSYNCED'], 'the only target failed in region 1')
  t.ok(vg.isStale(target.pvIndex, target.pp), 'and stays stale')
  // The TypeScript path writes through the FileDevice handle, which the native fault does not cover.
  const viaTs = await engine.resyncer({ copyMethod: 'typescript' }).resynclv('lv0', false)
  t.same(viaTs.failed, [])
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(model), 'copied whole through TypeScript')
})

void t.test('with a daemon\'s O_DIRECT fds registered, aligned copies go through them', async (t) => {
  const { vg, engine, dir, model } = await bed(t, 1)
  const direct = vg.descriptor.pvs.map((pv) => {
    try {
      return openSync(pv.lastPath, constants.O_RDWR | constants.O_DIRECT)
    } catch {
      return openSync(pv.lastPath, constants.O_RDWR)  // a file system without O_DIRECT
    }
  })
  t.teardown(() => {
    setDirectCopyFds(vg, undefined)
    for (const fd of direct) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
  })
  setDirectCopyFds(vg, (pvIndex) => direct[pvIndex])
  const target = vg.descriptor.lvs[0]!.lps[0]![1]!
  // A fault on the O_DIRECT fd of the target only: if the copy used it, the target fails.
  setFdFault(direct[target.pvIndex]!, FaultBit.WRITE, vg.ppOffsetBytes(target.pvIndex, target.pp) + 2 * LTG, 1)
  const faulted = await engine.resyncer().resynclv('lv0', false)
  t.same(faulted.failed.map((entry) => entry.code), ['LVM_NOTSYNCED'], 'the fault on the direct fd was hit')
  setFdFault(direct[target.pvIndex]!, 0)
  const report = await engine.resyncer().resynclv('lv0', false)
  t.same(report.failed, [])
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(model), 'copied whole through the direct fds')
})

void t.test('a native source fault marks the source stale and the LP is not synced', async (t) => {
  const { vg, engine } = await bed(t, 1)
  const source = vg.descriptor.lvs[0]!.lps[0]![0]!
  await vg.clearStale([vg.descriptor.lvs[0]!.lps[0]![1]!])
  const fd = (vg.device(source.pvIndex) as FaultyDevice).inner.fd
  setFdFault(fd, FaultBit.READ, vg.ppOffsetBytes(source.pvIndex, source.pp) + 3 * LTG, 1)
  t.teardown(() => setFdFault(fd, 0))
  // Forced: copy 0 to copy 1; the read of region 3 fails natively.
  const report = await engine.resyncer().resynclv('lv0', true)
  t.same(report.failed.map((entry) => entry.code), ['LVM_NOTSYNCED'])
  t.ok(vg.isStale(source.pvIndex, source.pp), 'the source was marked stale (another fresh copy remained)')
})
