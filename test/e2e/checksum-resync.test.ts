// End to end: `lvmfs resync VG/LV --force --checksum` on a mounted VG is forwarded to its daemon
// (argv over the control socket) and runs there against the online VG: copies that differ in 3
// blocks get exactly those 3 blocks written; a target LP made unreadable with `lvmfs fault
// --fail-reads` is rewritten whole (the daemon's FaultyDevice sees the fault).
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, scrubMismatches, sha256, skip, writeAt } from '../helpers/e2e.js'
import { createAndMount, daemonLog, makeVg, type VgFixture } from '../helpers/vg-mount.js'

const MIB = 1 << 20
const BLOCK = 64 << 10
const LPS = 4

function logOnFailure(t: Test, fixture: VgFixture): void {
  t.teardown(() => {
    if (!t.passing()) t.comment(`daemon log (${fixture.vg}):\n${daemonLog(fixture)}`)
  })
}

/** PV byte offset of the PP LP `lp` of "mir" has on `pv` (asked through a fault, then cleared). */
function ppOffset(fixture: VgFixture, pv: string, lp: number): number {
  const fault = JSON.parse(fixture.ok(['fault', fixture.vg, pv, '--fail-reads', '--lv', 'mir', '--lp', String(lp),
    '--json'])) as { ranges: Array<{ offsetBytes: number, lengthBytes: number }> }
  fixture.ok(['fault', fixture.vg, pv, '--clear'])
  return fault.ranges[0]!.offsetBytes
}

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+')
  try {
    writeSync(fd, bytes, 0, bytes.length, offset)
  } finally {
    closeSync(fd)
  }
}

function resync(fixture: VgFixture): { comparedBytes: number, copiedBytes: number, failed: unknown[] } {
  const out = fixture.ok(['resync', `${fixture.vg}/mir`, '--force', '--checksum', '--json'])
  return JSON.parse(out.trim().split('\n').pop()!) as ReturnType<typeof resync>
}

t.test('resync --force --checksum in the daemon writes only the differing blocks', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 16 * MIB })
  logOnFailure(t, fixture)
  createAndMount(t, fixture, [{ name: 'mir', size: `${LPS}M`, copies: 2 }], { ppSize: '1M' })
  const file = join(fixture.mountpoint, 'mir')
  const data = randomBytes(LPS * MIB)
  writeAt(file, 0, data)
  const [pv0, pv1] = fixture.pvs as [string, string]
  const copies = [0, 1, 2, 3].map((lp) =>
    ({ primary: ppOffset(fixture, pv0, lp), secondary: ppOffset(fixture, pv1, lp) }))
  const copyOf = (pv: string, lp: number, which: 'primary' | 'secondary'): Buffer =>
    readAt(pv, copies[lp]![which], MIB)

  // Behind the daemon's back: 3 blocks of the copies on pv1 change.
  patch(pv1, copies[0]!.secondary + 3 * BLOCK + 17, randomBytes(5))
  patch(pv1, copies[2]!.secondary, randomBytes(BLOCK))
  patch(pv1, copies[3]!.secondary + MIB - 1, Buffer.from([~data[LPS * MIB - 1]! & 0xff]))
  const first = resync(fixture)
  t.same(first.failed, [])
  t.equal(first.comparedBytes, LPS * MIB, 'the daemon compared the whole LV (--checksum was forwarded)')
  t.equal(first.copiedBytes, 3 * BLOCK, 'and wrote exactly the 3 differing blocks')
  for (let lp = 0; lp < LPS; lp++) {
    t.equal(sha256(copyOf(pv1, lp, 'secondary')), sha256(data.subarray(lp * MIB, (lp + 1) * MIB)), `LP ${lp} copy 1`)
    t.equal(sha256(copyOf(pv0, lp, 'primary')), sha256(data.subarray(lp * MIB, (lp + 1) * MIB)), `LP ${lp} copy 0`)
  }
  t.equal(resync(fixture).copiedBytes, 0, 'identical copies: nothing written')

  // A target LP that cannot be read is rewritten whole (one LTG = the 1 MiB PP).
  fixture.ok(['fault', fixture.vg, pv1, '--fail-reads', '--lv', 'mir', '--lp', '1'])
  patch(pv1, copies[3]!.secondary + 5 * BLOCK, randomBytes(100))
  const faulted = resync(fixture)
  fixture.ok(['fault', fixture.vg, pv1, '--clear'])
  t.same(faulted.failed, [])
  t.equal(faulted.copiedBytes, MIB + BLOCK, 'LP 1 (unreadable on pv1) whole, plus the one differing block of LP 3')
  t.equal(sha256(copyOf(pv1, 3, 'secondary')), sha256(data.subarray(3 * MIB)), 'LP 3 copy 1 repaired')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'scrub finds the copies identical')
  t.equal(sha256(readAt(file, 0, LPS * MIB)), sha256(data), 'the LV reads back through the mount')
})
