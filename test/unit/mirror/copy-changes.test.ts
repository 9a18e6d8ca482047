/**
 * lvconvert --copies and pvmove on PV files through the CLI (in process): data read back after
 * every change, stale bits where a new copy has no data yet, the unsynced marker finished by
 * vary-on after a crash between lvconvert's commits, pvmove stopped part way and resumed, and a
 * table of bad inputs that must leave every PV byte for byte unchanged.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pvCreate, vgCreate, varyOnVg, OnlineVg, type VolumeGroup } from '../../../src/lvm/index.js'
import { MirrorEngine, movePvOff } from '../../../src/mirror/index.js'
import { dropCopies } from '../../../src/lvm/copies-changes.js'
import { captureCli, lastJson } from '../../helpers/mirror-cli-fixture.js'

const PP = 1024 * 1024
const LPS = 4

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ paths: string[]; data: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-copies-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
  const paths = ['a', 'b', 'c'].map((name) => join(dir, `${name}.img`))
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, 12 * PP)
    await pvCreate(path)
  }
  process.env['LVMFS_DEVICES'] = paths.join(',')
  await vgCreate({ name: 'vg0', paths, ppSizeBytes: PP })
  const data = randomBytes(LPS * PP)
  await withEngine(paths, async (engine) => {
    await engine.vg.lvCreate({ name: 'lv0', lpCount: LPS, copies: 1, pvIndexes: [0] })
    const lv = engine.open('lv0')
    await lv.write(data, 0)
    await lv.close()
  })
  return { paths, data }
}

async function withEngine<T>(paths: string[], fn: (engine: MirrorEngine) => Promise<T>): Promise<T> {
  const vg = (await varyOnVg({ vgName: 'vg0', devices: paths, flags: { misspvVon: true, missnameVon: true } })).vg!
  const engine = await MirrorEngine.start(vg)
  try {
    return await fn(engine)
  } finally {
    await engine.stop()
    await vg.varyOff()
  }
}

/** Every copy of every LP of lv0, read from its PP: each must equal the data written. */
async function copiesOf(paths: string[]): Promise<{ vg: VolumeGroup; bytes: Buffer[][] }> {
  return await withEngine(paths, async (engine) => {
    const vg = engine.vg
    const lv = vg.lvByName('lv0')!
    const bytes: Buffer[][] = []
    for (const refs of lv.lps) {
      const copies: Buffer[] = []
      for (const ref of refs) {
        const out = Buffer.alloc(PP)
        await vg.device(ref.pvIndex)!.read(out, vg.ppOffsetBytes(ref.pvIndex, ref.pp))
        copies.push(out)
      }
      bytes.push(copies)
    }
    return { vg, bytes }
  })
}

function staleCount(vg: VolumeGroup): number {
  return vg.lvByName('lv0')!.lps.flat().filter((ref) => vg.isStale(ref.pvIndex, ref.pp)).length
}

const hashes = (paths: string[]): string[] =>
  paths.map((path) => createHash('sha256').update(readFileSync(path)).digest('hex'))

t.test('lvconvert adds a copy that is resynced, then drops the copy on a named PV', async (t) => {
  const { paths, data } = await setup(t)
  const added = await captureCli(['lvconvert', 'vg0/lv0', '--copies', '2', '--json'])
  t.equal(added.code, 0, added.stderr)
  const report = lastJson<{ copies: number; mwc: string; resync: { copiedBytes: number } }>(added.stdout)
  t.same([report.copies, report.mwc, report.resync.copiedBytes], [2, 'active', LPS * PP],
    'the new copy is copied whole and MWC follows the copy count')
  const two = await copiesOf(paths)
  t.equal(staleCount(two.vg), 0)
  two.bytes.forEach((copies, lp) => copies.forEach((bytes, copy) =>
    t.ok(bytes.equals(data.subarray(lp * PP, (lp + 1) * PP)), `LP ${lp} copy ${copy} holds the data`)))
  t.ok(two.vg.lvByName('lv0')!.lps.every((refs) => refs[1]!.pvIndex !== 0), 'the new copy is on another PV')
  t.equal(two.vg.lvByName('lv0')!.unsyncedCopies, undefined, 'the marker is gone')

  const dropped = await captureCli(['lvconvert', 'vg0/lv0', '--copies', '1', '--pv', paths[0]!, '--json'])
  t.equal(dropped.code, 0, dropped.stderr)
  const one = await copiesOf(paths)
  const lv = one.vg.lvByName('lv0')!
  t.same([lv.copies, lv.mwc], [1, 'off'])
  t.ok(lv.lps.every((refs) => refs[0]!.pvIndex !== 0), 'the copy on the named PV went')
  one.bytes.forEach((copies, lp) => t.ok(copies[0]!.equals(data.subarray(lp * PP, (lp + 1) * PP))))
})

t.test('a crash between lvconvert commits: vary-on makes the unsynced copies stale', async (t) => {
  const { paths } = await setup(t)
  // The first commit of lvconvert alone: the copy is allocated and marked, its stale bits not
  // yet on disk (the status commit never happened).
  await withEngine(paths, async (engine) => {
    const vg = engine.vg as OnlineVg
    const lv = vg.lvByName('lv0')!
    const lps = lv.lps.map((refs, lp) => [...refs, { pvIndex: 1, pp: lp }])
    await vg.commitDescriptor({ ...vg.descriptor, lvs: [{ ...lv, copies: 2, lps, unsyncedCopies: 1 }] })
  })
  const after = await copiesOf(paths)
  const lv = after.vg.lvByName('lv0')!
  t.equal(lv.unsyncedCopies, undefined, 'vary-on dropped the marker')
  t.same(lv.lps.map((refs) => refs.map((ref) => after.vg.isStale(ref.pvIndex, ref.pp))),
    Array.from({ length: LPS }, () => [false, true]), 'only the new copies are stale')
})

t.test('pvmove empties a PV LP by LP; stopped part way it resumes where it stopped', async (t) => {
  const { paths, data } = await setup(t)
  const partial = await withEngine(paths, async (engine) => {
    const controller = new AbortController()
    return await movePvOff(engine.mirror, 0, { to: [2], signal: controller.signal,
      onProgress: (p) => { if (p.movedLps === 1) controller.abort() } })
  })
  t.same([partial.movedLps, partial.remainingLps, partial.aborted], [1, LPS - 1, true])
  const moved = await captureCli(['pvmove', 'vg0', paths[0]!, paths[1]!, '--json'])
  t.equal(moved.code, 0, moved.stderr)
  t.same(lastJson<{ movedLps: number; remainingLps: number }>(moved.stdout), { vg: 'vg0', pv: paths[0], movedLps: 3,
    movedBytes: 3 * PP, remainingLps: 0, aborted: false })
  const after = await copiesOf(paths)
  const lv = after.vg.lvByName('lv0')!
  t.same(lv.lps.map((refs) => refs[0]!.pvIndex), [2, 1, 1, 1], 'LP 0 went to c, the rest to the PV named')
  after.bytes.forEach((copies, lp) => t.ok(copies[0]!.equals(data.subarray(lp * PP, (lp + 1) * PP)),
    `LP ${lp} moved intact`))
  const reduce = await captureCli(['vgreduce', 'vg0', paths[0]!])
  t.equal(reduce.code, 0, 'the emptied PV leaves the VG')
})

t.test('bad lvconvert and pvmove input: a typed error, and no byte changes', async (t) => {
  const { paths } = await setup(t)
  // Two copies on one PV (strict n): a stricter rule cannot be adopted without moving them.
  await withEngine(paths, (engine) => engine.vg.lvCreate({ name: 'twins', lpCount: 1, copies: 2, strict: 'n',
    pvIndexes: [2] }))
  const strict = await captureCli(['lvconvert', 'vg0/lv0', '--strict', 's', '--json'])
  t.equal(strict.code, 0, 'a one-copy LV satisfies superstrict')
  const before = hashes(paths)
  const cases: Array<[string[], number, string]> = [
    [['lvconvert', 'vg0/lv0', '--copies', '0'], 3, 'ENGINE_USAGE'],
    [['lvconvert', 'vg0/lv0', '--copies', '4'], 3, 'ENGINE_USAGE'],
    [['lvconvert', 'vg0/lv0', '--copies', '1'], 3, 'ENGINE_USAGE'],
    [['lvconvert', 'vg0/nope', '--copies', '2'], 5, 'ENGINE_NOT_FOUND'],
    [['lvconvert', 'vg0/lv0', '--copies', '2', '--pv', '/no/such'], 5, 'ENGINE_NOT_FOUND'],
    [['lvconvert', 'vg0/lv0', '--copies', '2', '--pv', paths[0]!], 5, 'LVM_NOFREEPPS'],
    [['pvmove', 'vg0', '/no/such'], 5, 'ENGINE_NOT_FOUND'],
    [['pvmove', 'vg0', paths[0]!, paths[0]!], 3, 'ENGINE_USAGE'],
    [['pvmove', 'vg0', paths[1]!, '--abort'], 5, 'ENGINE_NOT_FOUND'],
    [['lvconvert', 'vg0/lv0'], 3, 'ENGINE_USAGE'],
    [['lvconvert', 'vg0/lv0', '--strict', 'q'], 3, 'ENGINE_USAGE'],
    [['lvconvert', 'vg0/twins', '--strict', 'y'], 3, 'LVM_INVALID_PARAM'],
  ]
  for (const [args, code, error] of cases) {
    const run = await captureCli([...args, '--json'])
    t.equal(run.code, code, `${args.join(' ')}: exit ${code}`)
    t.match(run.stderr, error, `${args.join(' ')}: ${error}`)
  }
  t.same(hashes(paths), before, 'every PV unchanged')
})

t.test('dropping copies never drops the only fresh copy of an LP, even on a named PV', async (t) => {
  const lv = { lvId: 1, name: 'm', copies: 2 as const, strict: 'y' as const, schedule: 'p' as const,
    mwc: 'active' as const, ext: {}, lps: [[{ pvIndex: 0, pp: 0 }, { pvIndex: 1, pp: 0 }],
      [{ pvIndex: 0, pp: 1 }, { pvIndex: 1, pp: 1 }]] }
  const d = { vgId: 'v', name: 'vg', seq: 1, timestampMs: 0, ppSizeBytes: PP, lvs: [lv], nextLvId: 2,
    pvs: [0, 1].map((i) => ({ pvId: `p${i}`, lastPath: `/d${i}`, ppCount: 4, removed: false })),
    descriptorCopies: [] }
  // LP 0's copy on PV 1 is stale: the fresh one on PV 0 stays although PV 0 is named.
  const fresh = (ref: { pvIndex: number; pp: number }): boolean => !(ref.pvIndex === 1 && ref.pp === 0)
  const { lv: next } = dropCopies(d, 'm', 1, fresh, [0])
  t.same(next.lps, [[{ pvIndex: 0, pp: 0 }], [{ pvIndex: 1, pp: 1 }]])
})
