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
  fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
  fixture.ok(['varyonvg', fixture.vg, '--no-resync', '--devices', fixture.pvs.join(',')])
  const report = JSON.parse(fixture.ok(['syncvg', fixture.vg, '--json', '--devices', fixture.pvs.join(',')])
    .trim().split('\n').pop()!) as { copiedBytes: number }
  t.equal(report.copiedBytes, chunks.size * CHUNK, `${chunks.size} chunks of 64 KiB resynced, not whole partitions`)
  t.equal(stalePps(fixture, 1), 0, 'no stale partition left')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical')
})
