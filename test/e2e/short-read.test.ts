// End to end, under either FUSE transport (scripts/test-uring.sh runs it over io_uring too): a
// backing read that comes back short, here from a PV file truncated under the mount, is never
// taken for data. The read fails over to the other copy and returns the bytes written, and the
// failed copy is counted.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sha256, skip } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

t.test('a short backing read fails over to the other copy and is counted', { skip }, async (t: Test) => {
  // A third PV keeps the quorum when the first goes missing.
  const fixture = makeVg(t, { pvCount: 3, pvBytes: 64 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '16M', copies: 2 }])
  const file = join(fixture.mountpoint, 'mir')
  const data = randomBytes(16 << 20)
  writeFileSync(file, data, { flag: 'r+' })
  execFileSync('sync', [file])
  // The first copy reads first; past 8 MiB its PV file now ends, so its reads come back empty.
  truncateSync(fixture.pvs[0]!, 8 << 20)
  const read = execFileSync('dd', [`if=${file}`, 'iflag=direct', 'bs=1M', 'status=none'], { maxBuffer: 32 << 20 })
  t.equal(read.length, data.length, 'the whole LV reads')
  t.equal(sha256(read), sha256(data), 'with the bytes written: the other copy served the cut-off extents')
  const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { io: Record<string, number> }
  t.ok((status.io['copyErrors'] ?? 0) > 0, `the failed copy reads are counted (${status.io['copyErrors']})`)
})
