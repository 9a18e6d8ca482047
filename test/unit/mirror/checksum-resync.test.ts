/**
 * Checksum resync (src/mirror/checksum-diff.ts through ResyncOptions.narrowRanges) on real PV
 * files behind FaultyDevice: a forced resync of copies that differ in exactly 3 blocks writes
 * exactly those 3 blocks (the PV write logs show no other data write), natively hashed and
 * through the TypeScript fallback alike; an unreadable target range is rewritten whole (a
 * FaultyDevice read fault and a native fd fault); an unreadable source fails the LP with
 * LVM_NOTSYNCED and is marked stale; without force only stale copies are compared.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FAKE_DATA_OFFSET, FakeVg, createFakeVg, patchCopy, readCopy } from '../../helpers/mirror-fake-vg.js'
import { FaultBit, setFdFault } from '../../../src/fuse/native-session.js'
import { MirrorEngine } from '../../../src/mirror/index.js'
import { ChecksumNarrower, checksumDiff, hashBlocks } from '../../../src/mirror/checksum-diff.js'

const PP = 1024 * 1024
const LTG = 256 * 1024
const BLOCK = 64 * 1024
const LPS = 4

async function setup(t: Test, copies: 2 | 3 = 2): Promise<{ vg: FakeVg, engine: MirrorEngine, dir: string,
  data: Buffer }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 3, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: LPS, copies, mwc: 'off' })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: LTG })
  const lv = engine.open('lv0')
  const data = randomBytes(LPS * PP)
  await lv.write(data, 0)
  await lv.close()
  return { vg, engine, dir, data }
}

interface Span { offsetBytes: number, lengthBytes: number }

/**
 * Runs `body` with every data byte of PV `pvIndex` outside `allowed` (PV byte ranges) made
 * unwritable for native writers (a faults.cc write fault on the PV file's fd), and checks that
 * the TypeScript writers (the FaultyDevice write log) stayed inside `allowed` too. So a write of
 * a block that was not allowed fails the resync, whichever copier moved the bytes.
 */
async function onlyWrites<T>(t: Test, vg: FakeVg, pvIndex: number, allowed: readonly Span[],
  body: () => Promise<T>): Promise<T> {
  const device = vg.faulty[pvIndex]!
  const fd = device.inner.fd
  const sorted = [...allowed].sort((a, b) => a.offsetBytes - b.offsetBytes)
  let at = FAKE_DATA_OFFSET
  for (const span of [...sorted, { offsetBytes: device.sizeBytes, lengthBytes: 0 }]) {
    if (span.offsetBytes > at) setFdFault(fd, FaultBit.WRITE, at, span.offsetBytes - at)
    at = span.offsetBytes + span.lengthBytes
  }
  const from = device.writeLog.length
  try {
    return await body()
  } finally {
    setFdFault(fd, 0)
    const outside = device.writeLog.slice(from).filter((entry) => entry.offsetBytes >= FAKE_DATA_OFFSET &&
      !sorted.some((span) => entry.offsetBytes >= span.offsetBytes &&
        entry.offsetBytes + entry.lengthBytes <= span.offsetBytes + span.lengthBytes))
    t.same(outside, [], `no TypeScript write outside the allowed ranges of PV ${pvIndex}`)
  }
}

/** PV byte offset of LV byte `lvOffset` on copy `copy`. */
function pvOffset(vg: FakeVg, copy: number, lvOffset: number): number {
  const ref = vg.descriptor.lvs[0]!.lps[Math.floor(lvOffset / PP)]![copy]!
  return vg.ppOffsetBytes(ref.pvIndex, ref.pp) + (lvOffset % PP)
}

// Three blocks of copy 1 differ: a few bytes in LP 0, a whole block in LP 2, the last block of the LV.
const DIFFERING = [0 * PP + 2 * BLOCK, 2 * PP + 5 * BLOCK, 4 * PP - BLOCK]

function corrupt(dir: string, vg: FakeVg): void {
  patchCopy(dir, vg, 'lv0', 1, DIFFERING[0]! + 100, randomBytes(10))
  patchCopy(dir, vg, 'lv0', 1, DIFFERING[1]!, randomBytes(BLOCK))
  patchCopy(dir, vg, 'lv0', 1, DIFFERING[2]! + BLOCK - 1, Buffer.from([0x55 ^ readCopy(dir, vg, 'lv0', 1)[4 * PP - 1]!]))
}

for (const method of ['native', 'typescript'] as const) {
  void t.test(`forced checksum resync writes exactly the 3 differing blocks (${method} hashes)`, async (t) => {
    const { vg, engine, dir, data } = await setup(t)
    corrupt(dir, vg)
    t.notOk(readCopy(dir, vg, 'lv0', 1).equals(data), 'copy 1 differs before')
    const targetPv = vg.descriptor.lvs[0]!.lps[0]![1]!.pvIndex
    const sourcePv = vg.descriptor.lvs[0]!.lps[0]![0]!.pvIndex
    // Latency is no fault, but it keeps reads in TypeScript: the fallback path, same answers.
    if (method === 'typescript') for (const device of vg.faulty) device.latencyMs = 1
    const checksum = new ChecksumNarrower(engine.mirror)
    const allowed = DIFFERING.map((lvOffset) => ({ offsetBytes: pvOffset(vg, 1, lvOffset), lengthBytes: BLOCK }))
    // Identical blocks are unwritable on the target, every block on the source.
    const report = await onlyWrites(t, vg, targetPv, allowed, () => onlyWrites(t, vg, sourcePv, [],
      () => engine.resyncer({ narrowRanges: checksum.narrowRanges }).resynclv('lv0', true)))
    t.same(report.failed, [], 'no write hit a block outside the 3 (it would have failed)')
    t.same(vg.stalePps(), [[], [], []], 'no copy went stale')
    t.equal(report.copiedBytes, 3 * BLOCK, 'exactly 3 blocks were written')
    t.same(checksum.totals(), { comparedBytes: LPS * PP, differingBytes: 3 * BLOCK })
    t.ok(readCopy(dir, vg, 'lv0', 0).equals(data), 'the source is unchanged')
    t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'every byte of the target equals the source')

    const again = new ChecksumNarrower(engine.mirror)
    const second = await engine.resyncer({ narrowRanges: again.narrowRanges }).resynclv('lv0', true)
    t.equal(second.copiedBytes, 0, 'a second checksum resync of identical copies writes nothing')
    t.equal(again.totals().comparedBytes, LPS * PP, 'but compares every byte')
    const plain = await engine.resyncer().resynclv('lv0', true)
    t.equal(plain.copiedBytes, LPS * PP, 'contrast: a plain forced resync rewrites the whole LV')
  })
}

void t.test('checksumDiff: ranges not aligned to blocks, coalesced across targets', async (t) => {
  const { vg, engine, dir } = await setup(t, 3)
  const lv = vg.descriptor.lvs[0]!
  patchCopy(dir, vg, 'lv0', 1, PP + 3 * BLOCK + 7, randomBytes(1))
  patchCopy(dir, vg, 'lv0', 2, PP + 4 * BLOCK, randomBytes(1))
  patchCopy(dir, vg, 'lv0', 2, PP + 9 * BLOCK + 500, randomBytes(1))
  const range = { offsetInLpBytes: 3 * BLOCK, lengthBytes: 6 * BLOCK + 1000 }
  const diff = await checksumDiff(engine.mirror, lv, 1, 0, [1, 2], range)
  t.same(diff.ranges, [
    { offsetInLpBytes: 3 * BLOCK, lengthBytes: 2 * BLOCK },
    { offsetInLpBytes: 9 * BLOCK, lengthBytes: 1000 },
  ], 'blocks 3 and 4 (one per target) coalesce; the short last block is clipped to the range')
  t.same(diff.unreadableTargets, [])
  t.same((await checksumDiff(engine.mirror, lv, 1, 0, [1], { offsetInLpBytes: 0, lengthBytes: 3 * BLOCK })).ranges,
    [], 'an identical range has nothing to write')
  t.same((await checksumDiff(engine.mirror, lv, 1, 0, [], range)).ranges, [], 'no targets, nothing to write')
})

void t.test('a target read error: that target\'s whole range is rewritten', async (t) => {
  const { vg, engine, dir, data } = await setup(t)
  const targetPv = vg.descriptor.lvs[0]!.lps[0]![1]!.pvIndex
  patchCopy(dir, vg, 'lv0', 1, 2 * PP + LTG + 10, randomBytes(100))
  // A FaultyDevice read fault inside region 1 of LP 2 (every copy then hashes in TypeScript).
  const at = pvOffset(vg, 1, 2 * PP + LTG + 4096)
  vg.faulty[targetPv]!.readErrorRanges = [[at, at + 512]]
  const checksum = new ChecksumNarrower(engine.mirror)
  const report = await onlyWrites(t, vg, targetPv, [{ offsetBytes: pvOffset(vg, 1, 2 * PP + LTG), lengthBytes: LTG }],
    () => engine.resyncer({ narrowRanges: checksum.narrowRanges }).resynclv('lv0', true))
  t.same(report.failed, [])
  t.equal(report.copiedBytes, LTG, 'the unreadable region (one LTG) is written whole, nothing else')
  vg.faulty[targetPv]!.readErrorRanges = []
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'the target equals the source afterwards')

  // The same through the native path: a faults.cc read fault on the PV file's own fd.
  patchCopy(dir, vg, 'lv0', 1, 3 * PP + 5, randomBytes(1))
  const fd = vg.faulty[targetPv]!.inner.fd
  setFdFault(fd, FaultBit.READ, pvOffset(vg, 1, 0), 4096)
  t.teardown(() => setFdFault(fd, 0))
  const native = new ChecksumNarrower(engine.mirror)
  const second = await engine.resyncer({ narrowRanges: native.narrowRanges }).resynclv('lv0', true)
  setFdFault(fd, 0)
  t.equal(second.copiedBytes, LTG + BLOCK, 'region 0 of LP 0 (native read fault) whole, plus the one differing block')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data))
})

void t.test('a source read error fails the LP with LVM_NOTSYNCED and marks the source stale', async (t) => {
  const { vg, engine } = await setup(t)
  const lv = vg.descriptor.lvs[0]!
  const source = lv.lps[1]![0]!
  const at = vg.ppOffsetBytes(source.pvIndex, source.pp) + 2 * LTG
  vg.faulty[source.pvIndex]!.readErrorRanges = [[at, at + 4096]]
  const checksum = new ChecksumNarrower(engine.mirror)
  await t.rejects(engine.resyncer({ narrowRanges: checksum.narrowRanges }).resynclp('lv0', 1, true),
    { code: 'LVM_NOTSYNCED', message: /reading the source copy 0 of LP 1/ })
  t.ok(vg.isStale(source.pvIndex, source.pp), 'the unreadable source copy was marked stale (another copy is fresh)')
  t.notOk(vg.isStale(lv.lps[1]![1]!.pvIndex, lv.lps[1]![1]!.pp), 'the other copy stays fresh')

  // Native: the source's fd fails (faults.cc), no FaultyDevice fault set.
  vg.faulty[source.pvIndex]!.readErrorRanges = []
  const source2 = lv.lps[2]![0]!
  const fd = vg.faulty[source2.pvIndex]!.inner.fd
  setFdFault(fd, FaultBit.READ, vg.ppOffsetBytes(source2.pvIndex, source2.pp), 4096)
  t.teardown(() => setFdFault(fd, 0))
  await t.rejects(checksumDiff(engine.mirror, lv, 2, 0, [1], { offsetInLpBytes: 0, lengthBytes: LTG }),
    { code: 'LVM_NOTSYNCED' })
  t.ok(vg.isStale(source2.pvIndex, source2.pp), 'marked stale through onCopyError as well')
})

void t.test('without force only stale copies are compared (and only their differing blocks written)', async (t) => {
  const { vg, engine, dir, data } = await setup(t, 3)
  const lv = vg.descriptor.lvs[0]!
  await vg.markStale([lv.lps[1]![1]!])
  patchCopy(dir, vg, 'lv0', 1, PP + 7 * BLOCK + 3, randomBytes(2))
  patchCopy(dir, vg, 'lv0', 2, PP + 2 * BLOCK, randomBytes(2))
  const checksum = new ChecksumNarrower(engine.mirror)
  const report = await engine.resyncer({ narrowRanges: checksum.narrowRanges }).resynclv('lv0', false)
  t.equal(checksum.totals().comparedBytes, PP, 'one stale copy of one LP was compared')
  t.equal(report.copiedBytes, BLOCK, 'and its one differing block written')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'the stale copy is repaired')
  t.notOk(readCopy(dir, vg, 'lv0', 2).equals(data), 'the fresh copy was not a target')
  t.notOk(vg.isStale(lv.lps[1]![1]!.pvIndex, lv.lps[1]![1]!.pp), 'and the stale bit is cleared')
})

void t.test('hashBlocks of a device range past its end is an error for that device', async (t) => {
  const { vg } = await setup(t)
  const [result] = await hashBlocks([{ device: vg.faulty[0]!, offsetBytes: vg.faulty[0]!.sizeBytes - 10 }], 100)
  t.type(result, Error)
})
