/**
 * Resync on real PV files: lvm_resynclp force semantics exactly as the reference (force false:
 * good copy to stale copies only; force true: to every other copy), byte-identical copies
 * afterwards, online resync under concurrent random writes (every block verified against a
 * model), bounded resync after a transient PV loss (bytes copied counted), resume from a
 * checkpoint after an interrupted run, and the typed refusals.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeVg, createFakeVg, patchCopy, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine } from '../../../src/mirror/index.js'

const PP = 1024 * 1024
const LTG = 256 * 1024

async function setup(t: Test, options: { copies?: 2 | 3, lps?: number, mwc?: 'active' | 'passive' | 'off' } = {}):
  Promise<{ vg: FakeVg, engine: MirrorEngine, dir: string }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 3, ppSizeBytes: PP, ppsPerPv: 16 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: options.lps ?? 4, copies: options.copies ?? 2, mwc: options.mwc ?? 'active' })
  return { vg, engine: await MirrorEngine.start(vg, { ltgBytesMax: LTG }), dir }
}

function copyRef(vg: FakeVg, lp: number, copyIndex: number): { pvIndex: number, pp: number } {
  return vg.descriptor.lvs[0]!.lps[lp]![copyIndex]!
}

void t.test('resynclp force=false copies only to stale copies; force=true to every other copy', async (t) => {
  const { vg, engine, dir } = await setup(t, { copies: 3, lps: 2 })
  const lv = engine.open('lv0')
  const data = randomBytes(2 * PP)
  await lv.write(data, 0)
  await lv.flush()
  // Copy 1 of LP 0 is stale (and holds garbage); copy 2 silently differs but is not stale.
  await vg.markStale([copyRef(vg, 0, 1)])
  patchCopy(dir, vg, 'lv0', 1, 1000, randomBytes(5000))
  patchCopy(dir, vg, 'lv0', 2, 7000, randomBytes(3000))
  const soft = await engine.resyncer().resynclp('lv0', 0, false)
  t.equal(soft.source, 0, 'the primary is the good copy chosen')
  t.same(soft.targets, [1], 'force=false targets only the stale copy')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'the stale copy now equals the good copy')
  t.notOk(readCopy(dir, vg, 'lv0', 2).equals(data), 'the non-stale copy was left alone')
  t.notOk(vg.isStale(copyRef(vg, 0, 1).pvIndex, copyRef(vg, 0, 1).pp), 'the stale bit is cleared')
  const hard = await engine.resyncer().resynclp('lv0', 0, true)
  t.same(hard.targets, [1, 2], 'force=true targets every other copy')
  t.equal(hard.copiedBytes, 2 * PP, 'each target received the whole LP')
  for (const copy of [0, 1, 2]) t.ok(readCopy(dir, vg, 'lv0', copy).equals(data), `copy ${copy} identical`)
  await lv.close()
})

void t.test('resynclp refuses: no good copy, out-of-range LP, VG offline', async (t) => {
  const { vg, engine } = await setup(t)
  await vg.markStale([copyRef(vg, 1, 0), copyRef(vg, 1, 1)])
  await t.rejects(engine.resyncer().resynclp('lv0', 1, false), { code: 'LVM_NOTSYNCED' })
  t.ok(vg.isStale(copyRef(vg, 1, 0).pvIndex, copyRef(vg, 1, 0).pp), 'nothing was "repaired" from a stale copy')
  await t.rejects(engine.resyncer().resynclp('lv0', 9, false), { code: 'MIRROR_BAD_RANGE' })
  await t.rejects(engine.resyncer().resynclp('nope', 0, false), { code: 'ENGINE_NOT_FOUND' })
  const lv = engine.open('lv0')
  await t.rejects(lv.read(Buffer.alloc(10), PP), { code: 'MIRROR_NO_FRESH_COPY' })
  await lv.close()
  vg.state = 'offline'
  await t.rejects(engine.resyncer().resynclp('lv0', 0, false), { code: 'LVM_OFFLINE' })
  vg.state = 'online'
})

void t.test('online resync under concurrent random writes: every block verified on both copies', async (t) => {
  const { vg, engine, dir } = await setup(t, { lps: 4 })
  const lv = engine.open('lv0')
  const model = randomBytes(4 * PP)
  await lv.write(model, 0)
  // Copy 1 goes stale everywhere and is scribbled over: resync must rebuild it.
  await vg.markStale([0, 1, 2, 3].map((lp) => copyRef(vg, lp, 1)))
  for (let lp = 0; lp < 4; lp++) patchCopy(dir, vg, 'lv0', 1, lp * PP, randomBytes(PP))
  let seed = 12345
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  let resyncDone = false
  const resync = engine.resyncer({ checkpointEveryRegions: 3 }).resynclv('lv0', false).finally(() => { resyncDone = true })
  let writes = 0
  while (!resyncDone || writes < 50) {
    const length = 512 * (1 + Math.floor(random() * 128))
    const offset = 512 * Math.floor(random() * ((model.length - length) / 512))
    const block = randomBytes(length)
    await lv.write(block, offset)
    block.copy(model, offset)
    writes += 1
    if (writes > 5000) break
  }
  const report = await resync
  await lv.flush()
  t.same(report.failed, [], 'every LP resynced')
  t.same(vg.stalePps(), [[], [], []], 'no stale bit left')
  t.ok(readCopy(dir, vg, 'lv0', 0).equals(model), 'copy 0 equals the model')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(model), 'copy 1 equals the model (no write lost to an older copy)')
  t.ok(writes >= 50, `${writes} writes ran during the resync`)
  await lv.close()
})

void t.test('transient PV loss: the resync copies only the bitmap chunks written while it was gone', async (t) => {
  const { vg, engine, dir } = await setup(t, { lps: 8 })
  const lv = engine.open('lv0')
  const model = randomBytes(8 * PP)
  await lv.write(model, 0)
  await lv.flush()
  vg.faulty[1]!.disappear()
  const written = randomBytes(2 * PP + 4096) // touches LPs 2, 3 and 4
  await lv.write(written, 2 * PP)
  written.copy(model, 2 * PP)
  await lv.close()
  t.equal(vg.pvState(1), 'missing')
  t.same(vg.stalePps()[1], [2, 3, 4].map((lp) => copyRef(vg, lp, 1).pp), 'exactly the written LPs are stale')
  await engine.stop()
  await vg.varyOff()
  // The PV comes back: vary on again, auto_resync.
  const again = await FakeVg.open(dir, { autoResync: true })
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  const background = await engine2.startBackground()
  // LPs 2 and 3 were written whole, LP 4 in its first 4 KiB: the write-intent bitmap (64 KiB
  // chunks) bounds the copy to those chunks, not whole partitions.
  t.equal(background.autoResync?.copiedBytes, 2 * PP + 64 * 1024, 'bytes resynced = chunks written while the PV was gone')
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model), 'copy 1 equals the model')
  t.ok(readCopy(dir, again, 'lv0', 0).equals(model), 'copy 0 equals the model')
})

void t.test('an interrupted resync resumes from its checkpoint, re-copying at most one interval', async (t) => {
  const { vg, engine, dir } = await setup(t, { lps: 2 })
  const lv = engine.open('lv0')
  const model = randomBytes(2 * PP)
  await lv.write(model, 0)
  await lv.close()
  await vg.markStale([copyRef(vg, 0, 1), copyRef(vg, 1, 1)])
  patchCopy(dir, vg, 'lv0', 1, 0, randomBytes(2 * PP))
  const abort = new AbortController()
  const progress: number[] = []
  // One region in flight (fill target = one region), so the abort lands between two regions.
  const first = engine.resyncer({ checkpointEveryRegions: 1, fillTargetBytes: LTG, signal: abort.signal,
    onProgress: (p) => {
    progress.push(p.doneBytes)
    if (p.doneBytes === PP + 2 * LTG) abort.abort()
  } }).resynclv('lv0', false)
  await t.rejects(first, { name: 'AbortError' })
  t.same(progress, [1, 2, 3, 4, 5, 6].map((n) => n * LTG), 'progress counts bytes done region by region')
  t.same(vg.stalePps()[1], [copyRef(vg, 1, 1).pp], 'LP 0 finished (bit cleared), LP 1 still stale')
  await engine.stop()
  await vg.varyOff()
  const again = await FakeVg.open(dir)
  t.teardown(() => again.varyOff())
  const engine2 = await MirrorEngine.start(again, { ltgBytesMax: LTG })
  t.equal(engine2.recovery.resumedCursors, 1, 'the checkpoint cursor was found in the MWC log')
  const report = await engine2.resyncer().resynclv('lv0', false)
  t.equal(report.lps[0]!.resumedFromBytes, 2 * LTG, 'resumed at the checkpoint, not at the start')
  t.equal(report.copiedBytes, PP - 2 * LTG, 're-copied only the remaining regions')
  t.ok(readCopy(dir, again, 'lv0', 1).equals(model), 'copies identical after the resumed run')
  t.same(again.stalePps(), [[], [], []])
})

void t.test('resynclp on an LP already being resynced fails with LVM_INRESYNC', async (t) => {
  const { vg, engine } = await setup(t, { lps: 2 })
  await vg.markStale([copyRef(vg, 0, 1)])
  const first = engine.resyncer().resynclp('lv0', 0, false)
  await t.rejects(engine.resyncer().resynclp('lv0', 0, false), { code: 'LVM_INRESYNC' })
  t.equal((await first).targets.length, 1)
})

void t.test('resyncpv resyncs whole LPs with a stale copy on that PV, and only those', async (t) => {
  const { vg, engine, dir } = await setup(t, { copies: 3, lps: 3 })
  const lv = engine.open('lv0')
  const data = randomBytes(3 * PP)
  await lv.write(data, 0)
  await lv.close()
  // LP 1: stale on PV 1 and PV 2. LP 2: stale on PV 2 only.
  await vg.markStale([copyRef(vg, 1, 1), copyRef(vg, 1, 2), copyRef(vg, 2, 2)])
  patchCopy(dir, vg, 'lv0', 1, PP, randomBytes(PP))
  patchCopy(dir, vg, 'lv0', 2, PP, randomBytes(2 * PP))
  const report = await engine.resyncer().resyncpv(copyRef(vg, 0, 1).pvIndex)
  t.same(report.lps.map((lp) => [lp.lp, lp.targets]), [[1, [1, 2]]], 'LP 1, with every stale copy (PV 2 too)')
  t.same(vg.stalePps()[2], [copyRef(vg, 2, 2).pp], 'LP 2 (stale only on PV 2) untouched')
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data))
})
