// End to end: the write-intent bitmap through the native data path. While a PV is gone, 4 KiB
// writes through the mounted volume file mark their 64 KiB chunks (native marks, taken by the
// daemon); after the PV returns, the resync copies exactly those chunks, not the 4 MiB
// partitions, and the copies end byte-identical.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { scrubMismatches, skip, stalePps } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

const CHUNK = 64 << 10

t.test('a PV outage resyncs only the bitmap chunks written while it was gone', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 160 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '64M', copies: 2 }])
  const file = join(fixture.mountpoint, 'mir')
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', 'count=64', 'oflag=direct', 'conv=notrunc', 'status=none'])
  fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--disappear'])
  // Seven 4 KiB writes in five chunks of three partitions (two pairs share a chunk).
  const blocks = [0, 1, 16 * 4 + 3, 16 * 4 + 5, 16 * 40, 16 * 40 + 15, 16 * 40 + 17].map((chunk) => chunk * CHUNK / 16)
  const chunks = new Set(blocks.map((offset) => Math.floor(offset / CHUNK)))
  for (const offset of blocks) {
    execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=4k', 'count=1', `seek=${offset / 4096}`, 'oflag=direct',
      'conv=notrunc', 'status=none'])
  }
  t.ok(stalePps(fixture, 1) > 0, 'the copies on the gone PV are stale')
  const lvStatus = (): { alExtents: number, resyncPendingBytes: number, mwc: string } =>
    (JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { lvs: Array<{ name: string, alExtents: number,
      resyncPendingBytes: number, mwc: string }> }).lvs.find((lv) => lv.name === 'mir')!
  t.equal(lvStatus().resyncPendingBytes, chunks.size * CHUNK, 'status shows what a resync will copy')
  fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
  fixture.ok(['varyonvg', fixture.vg, '--no-resync', '--devices', fixture.pvs.join(',')])
  const report = JSON.parse(fixture.ok(['syncvg', fixture.vg, '--json', '--devices', fixture.pvs.join(',')])
    .trim().split('\n').pop()!) as { copiedBytes: number }
  t.equal(report.copiedBytes, chunks.size * CHUNK, `${chunks.size} chunks of 64 KiB resynced, not whole partitions`)
  t.equal(stalePps(fixture, 1), 0, 'no stale partition left')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical')

  // lvchange on the mounted VG: the activity log's size and the MWC policy change online, and
  // writes after each change keep the copies identical.
  const change = (args: string[]): { mwc: string, alExtents: number | null } =>
    JSON.parse(fixture.ok(['lvchange', `${fixture.vg}/mir`, ...args, '--json']).trim().split('\n').pop()!)
  t.equal(change(['--al-extents', '96']).alExtents, 96, 'al-extents changed online')
  const bad = fixture.cli(['lvchange', `${fixture.vg}/mir`, '--al-extents', '999999'])
  t.not(bad.code, 0, 'an al-extents past what the log holds is refused')
  t.match(bad.stderr, /al-extents/, 'the error names the option')
  for (const mwc of ['passive', 'active']) {
    t.equal(change(['--mwc', mwc]).mwc, mwc, `mwc ${mwc} online`)
    execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=64k', 'count=64', 'seek=100', 'oflag=direct',
      'conv=notrunc', 'status=none'])
  }
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical after writes under each policy')
})
