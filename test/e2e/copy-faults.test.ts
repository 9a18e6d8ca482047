// End to end: faults on single copies of single partitions (lvmfs fault --offset/--length,
// --lv/--lp, --fail-fsync) under requests that span many 64 KiB extents. Every failed
// (extent, copy) of a write, fsync or fallocate must be seen by policy: a write that no copy
// holds fails with EIO, and a write acknowledged without some copy leaves exactly that copy stale.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pvState, readAt, scrubMismatches, sha256, skip, staleLps } from '../helpers/e2e.js'
import { createAndMount, createLvs, createVg, daemonLog, makeVg, mountVg, type VgFixture } from '../helpers/vg-mount.js'

const PP = 64 << 10
const MIB = 1 << 20
const PV_BYTES = 16 << 20

/** Prints the daemon's log when the test failed (runs before the fixture's teardown removes it). */
function logOnFailure(t: Test, fixture: VgFixture): void {
  t.teardown(() => {
    if (!t.passing()) t.comment(`daemon log (${fixture.vg}):\n${daemonLog(fixture)}`)
  })
}

/** Two PVs, 64 KiB PPs, a mounted 2-copy LV "mir" of `size`: its fixture and file. */
function mountedMirror(t: Test, size: string): { fixture: VgFixture; file: string } {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: PV_BYTES })
  logOnFailure(t, fixture)
  createAndMount(t, fixture, [{ name: 'mir', size, copies: 2 }], { ppSize: '64K' })
  return { fixture, file: join(fixture.mountpoint, 'mir') }
}

function dataFile(fixture: VgFixture, name: string, bytes: number): { path: string; data: Buffer } {
  const data = randomBytes(bytes)
  const path = join(fixture.dir, name)
  writeFileSync(path, data)
  return { path, data }
}

/** dd of `input` over the LV at byte `offset` (O_DIRECT, 1 MiB blocks); `extra` adds conv/oflag. */
function dd(input: string, lvFile: string, offset: number, options: { bs?: string; count?: number;
  conv?: string; direct?: boolean } = {}): { code: number; stderr: string } {
  const oflag = [...(options.direct === false ? [] : ['direct']), 'seek_bytes'].join(',')
  const result = spawnSync('dd', [`if=${input}`, `of=${lvFile}`, `bs=${options.bs ?? '1M'}`,
    `count=${options.count ?? 1}`, `seek=${offset}`, `oflag=${oflag}`, `conv=${options.conv ?? 'notrunc'}`,
    'status=none'], { encoding: 'utf8', timeout: 60_000 })
  return { code: result.status ?? -1, stderr: result.stderr }
}

function faultJson(fixture: VgFixture, args: string[]): { pv: string; mode: string;
  ranges: Array<{ offsetBytes: number; lengthBytes: number }> } {
  return JSON.parse(fixture.ok(['fault', fixture.vg, ...args, '--json'])) as ReturnType<typeof faultJson>
}

t.test('linear LV across two PVs: a 1 MiB write with extents failing on the second PV fails with EIO',
  { skip }, async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: PV_BYTES })
    logOnFailure(t, fixture)
    createVg(fixture, { ppSize: '64K' })
    const pvs = JSON.parse(fixture.ok(['pvs', '--json', '--devices', fixture.pvs.join(',')])) as
      { pvs: Array<{ path: string; ppCount: number }> }
    const first = pvs.pvs.find((pv) => pv.path === fixture.pvs[0])!.ppCount
    // The allocator fills pv0 (the emptiest, lowest index) first, then continues on pv1.
    createLvs(fixture, [{ name: 'lin', size: `${(first + 16) * 64}K` }])
    mountVg(t, fixture)
    const file = join(fixture.mountpoint, 'lin')
    const offset = (first - 8) * PP // extents first-8 .. first+7: 8 on pv0, then 8 on pv1
    const input = dataFile(fixture, 'data', MIB)
    // Refused by the daemon, naming the option; none of them sets a fault.
    const refused: Array<[string[], number, string, string]> = [
      [['--lv', 'lin', '--lp', '0'], 3, 'ENGINE_USAGE', '--lp 0: logical volume "lin" has no copy of LP 0'],
      [['--lv', 'lin', '--lp', String(first + 16)], 3, 'ENGINE_USAGE', `--lp ${first + 16} is outside`],
      [['--lv', 'nope'], 5, 'ENGINE_NOT_FOUND', '--lv: no logical volume "nope"'],
      [['--offset', '16M'], 3, 'ENGINE_USAGE', '--offset 16777216 is outside'],
      [['--offset', '15M', '--length', '2M'], 3, 'ENGINE_USAGE', '--length 2097152 from --offset 15728640 runs past'],
    ]
    for (const [args, exit, code, text] of refused) {
      const r = fixture.cli(['fault', fixture.vg, fixture.pvs[1]!, '--fail-writes', ...args])
      t.equal(r.code, exit, `fault ${args.join(' ')}: exit ${exit}`)
      t.match(r.stderr, `lvmfs: ${code}: ${text}`, `fault ${args.join(' ')}: ${r.stderr.split('\n')[0]}`)
    }
    const before = dd(input.path, file, offset)
    t.equal(before.code, 0, `no fault was set by the refused requests: ${before.stderr.trim()}`)
    // --lv/--lp refuses an LP with no copy on the PV: this checks the layout assumed above.
    const onPv1 = faultJson(fixture, [fixture.pvs[1]!, '--fail-writes', '--lv', 'lin', '--lp', `${first}-${first + 7}`])
    t.equal(onPv1.ranges.length, 1, 'the LPs after pv0 are contiguous on pv1')
    t.equal(onPv1.ranges[0]!.lengthBytes, 8 * PP, 'eight PPs faulted')
    const whole = dd(input.path, file, offset)
    t.not(whole.code, 0, 'a write whose pv1 extents all fail is not acknowledged')
    t.match(whole.stderr, /Input\/output error/, `dd reports EIO: ${whole.stderr.trim()}`)

    // Only one extent, the request's 14th (6th on pv1), fails: still EIO.
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
    const one = faultJson(fixture, [fixture.pvs[1]!, '--fail-writes', '--lv', 'lin', '--lp', String(first + 5)])
    t.same(one.ranges.map((r) => r.lengthBytes), [PP], 'one PP faulted')
    const late = dd(input.path, file, offset)
    t.not(late.code, 0, 'a write with one failed extent late in the request is not acknowledged')
    t.match(late.stderr, /Input\/output error/, `dd reports EIO: ${late.stderr.trim()}`)

    // The whole PV, as a byte range.
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--fail-writes', '--offset', '0', '--length', '16M'])
    const ranged = dd(input.path, file, offset)
    t.not(ranged.code, 0, 'a write into a faulted byte range of pv1 is not acknowledged')
    t.match(ranged.stderr, /Input\/output error/, `dd reports EIO: ${ranged.stderr.trim()}`)

    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
    const clean = dd(input.path, file, offset)
    t.equal(clean.code, 0, `without a fault the same write succeeds: ${clean.stderr}`)
    t.equal(sha256(readAt(file, offset, MIB)), sha256(input.data), 'and reads back')
  })

t.test('2-copy LV, 64K PPs: a 1 MiB write over single-PP faults on pv1 leaves exactly those LPs stale',
  { skip }, async (t: Test) => {
    const { fixture, file } = mountedMirror(t, '2M')
    // Two failed copies: errorsBeforeMissing (3, src/mirror/mirror-vg.ts) is not reached.
    const lp5 = faultJson(fixture, [fixture.pvs[1]!, '--fail-writes', '--lv', 'mir', '--lp', '5'])
    t.equal(lp5.ranges.length, 1, 'LP 5 has one PP on pv1')
    // LP 9 by PV byte offset: 4 PPs further on, the LV's copy on pv1 being contiguous.
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--fail-writes', '--offset',
      String(lp5.ranges[0]!.offsetBytes + 4 * PP), '--length', '64K'])
    const input = dataFile(fixture, 'data', MIB)
    const written = dd(input.path, file, 0)
    t.equal(written.code, 0, `the write succeeds: the other copy holds every extent (${written.stderr.trim()})`)
    t.same(staleLps(fixture, 'mir', 1), [5, 9], 'exactly LPs 5 and 9 are stale on pv1')
    t.same(staleLps(fixture, 'mir', 0), [], 'nothing is stale on pv0')
    t.equal(pvState(fixture, 1), 'active', 'pv1 stays active after two errors')
    t.equal(sha256(readAt(file, 0, MIB)), sha256(input.data), 'the 1 MiB reads back')
  })

t.test('2-copy LV: failures that mark pv1 MISSING mid-request still leave every failed copy stale',
  { skip }, async (t: Test) => {
    const { fixture, file } = mountedMirror(t, '2M')
    // Four failed copies in one request: the third marks pv1 MISSING, the fourth comes after.
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--fail-writes', '--lv', 'mir', '--lp', '3,6,9,12'])
    const input = dataFile(fixture, 'data', MIB)
    const written = dd(input.path, file, 0)
    t.equal(written.code, 0, `the write succeeds (${written.stderr.trim()})`)
    t.equal(pvState(fixture, 1), 'missing', 'pv1 is MISSING after repeated errors')
    t.same(staleLps(fixture, 'mir', 1), [3, 6, 9, 12],
      'every copy the acknowledged write missed is stale (else it reads as fresh when pv1 returns)')
    t.same(staleLps(fixture, 'mir', 0), [], 'nothing is stale on pv0')
    t.equal(sha256(readAt(file, 0, MIB)), sha256(input.data), 'the 1 MiB reads back')
    // pv1 returns: syncvg resyncs what is stale, after which the copies must agree.
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
    fixture.ok(['varyonvg', fixture.vg, '--no-resync', '--devices', fixture.pvs.join(',')])
    t.equal(pvState(fixture, 1), 'active', 'pv1 is back')
    fixture.ok(['syncvg', fixture.vg, '--devices', fixture.pvs.join(',')])
    t.same(staleLps(fixture, 'mir', 1), [], 'syncvg left nothing stale')
    t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical after pv1 returned and syncvg ran')
  })

t.test('2-copy LV: a failed fsync on pv1 makes its copies stale; failed on pv0 too, fsync fails',
  { skip }, async (t: Test) => {
    const { fixture, file } = mountedMirror(t, '1M')
    const input = dataFile(fixture, 'data', MIB)
    const unsynced = dd(input.path, file, 0)
    t.equal(unsynced.code, 0, `write without fsync: ${unsynced.stderr.trim()}`)
    t.same(staleLps(fixture, 'mir', 1), [], 'nothing stale before the sync fault')
    const report = faultJson(fixture, [fixture.pvs[1]!, '--fail-fsync'])
    t.equal(report.mode, 'fail-fsync')
    const synced = dd(input.path, file, 0, { bs: '64K', count: 1, conv: 'notrunc,fsync' })
    t.equal(synced.code, 0, `fsync succeeds: pv0 holds every extent durably (${synced.stderr.trim()})`)
    t.same(staleLps(fixture, 'mir', 1), Array.from({ length: 16 }, (_, lp) => lp),
      'every LP with a copy on pv1 is stale (its sync failed: any of its writes may be lost)')
    t.same(staleLps(fixture, 'mir', 0), [], 'nothing stale on pv0')
    // pv1's copies are stale, so pv0 holds the only fresh copy of every LP: its sync failing
    // leaves no durable copy, and the last fresh copy is never marked stale.
    fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--fail-fsync'])
    const failed = dd(input.path, file, 0, { bs: '64K', count: 1, conv: 'notrunc,fsync' })
    t.not(failed.code, 0, 'fsync with no durable copy fails')
    t.match(failed.stderr, /Input\/output error/, `dd reports EIO: ${failed.stderr.trim()}`)
    t.same(staleLps(fixture, 'mir', 0), [], 'the last fresh copies are not marked stale')
    fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--clear'])
    t.equal(sha256(readAt(file, 0, MIB)), sha256(input.data), 'the data still reads back from pv0')
  })

t.test('2-copy LV: fallocate --punch-hole over failing pv1 copies succeeds, marks them stale, reads zeros',
  { skip }, async (t: Test) => {
    const { fixture, file } = mountedMirror(t, '2M')
    const input = dataFile(fixture, 'data', 2 * MIB)
    const written = dd(input.path, file, 0, { count: 2 })
    t.equal(written.code, 0, `initial write: ${written.stderr.trim()}`)
    // Every PP the LV has on pv1 (its data only: pv1's metadata and MWC areas keep working).
    fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--fail-writes', '--lv', 'mir'])
    const punch = spawnSync('fallocate', ['--punch-hole', '--offset', '0', '--length', '1M', file],
      { encoding: 'utf8', timeout: 60_000 })
    t.equal(punch.status, 0, `fallocate --punch-hole succeeds: ${punch.stderr.trim()}`)
    t.same(staleLps(fixture, 'mir', 1), Array.from({ length: 16 }, (_, lp) => lp),
      'the 16 punched LPs are stale on pv1, and only they')
    t.same(staleLps(fixture, 'mir', 0), [], 'nothing stale on pv0')
    t.ok(readAt(file, 0, MIB).equals(Buffer.alloc(MIB)), 'the punched 1 MiB reads back as zeros')
    t.equal(sha256(readAt(file, MIB, MIB)), sha256(input.data.subarray(MIB)), 'the second MiB is untouched')
  })
