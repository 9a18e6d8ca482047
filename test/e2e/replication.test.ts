// End to end: replication against the mounted VG through the real CLI and daemon. A clone made
// while mounted appears at once, keeps the origin's point-in-time bytes while both sides are
// written through FUSE, and protects its origin from lvremove; a synchronous mirror made while
// mounted receives every later origin write and refuses write opens.
import { randomBytes } from 'node:crypto'
import { constants, existsSync, openSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, sha256, skip, writeAt } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

t.test('clone and sync mirror of a mounted LV', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'src', size: '32M' }])
  const src = join(fixture.mountpoint, 'src')
  const original = randomBytes(32 << 20)
  writeAt(src, 0, original)

  fixture.ok(['replicate', `${fixture.vg}/src`, 'snap', '--type', 'clone', '--devices', fixture.pvs.join(',')])
  const snap = join(fixture.mountpoint, 'snap')
  t.ok(existsSync(snap), 'the clone appears in the mount at once')
  t.equal(statSync(snap).size, 32 << 20, 'with the origin size')
  t.equal(sha256(readAt(snap, 0, 32 << 20)), sha256(original), 'and the origin bytes')

  const later = randomBytes(8 << 20)
  writeAt(src, 4 << 20, later)
  t.equal(sha256(readAt(src, 4 << 20, 8 << 20)), sha256(later), 'the origin takes new writes')
  t.equal(sha256(readAt(snap, 0, 32 << 20)), sha256(original), 'the clone keeps the point-in-time bytes')

  const own = randomBytes(1 << 20)
  writeAt(snap, 20 << 20, own)
  t.equal(sha256(readAt(snap, 20 << 20, 1 << 20)), sha256(own), 'the clone is writable')
  t.equal(sha256(readAt(src, 20 << 20, 1 << 20)), sha256(original.subarray(20 << 20, 21 << 20)),
    'clone writes do not reach the origin')

  const removal = fixture.cli(['lvremove', fixture.vg, 'src', '--devices', fixture.pvs.join(',')])
  t.equal(removal.code, 5, 'removing the origin of a clone fails')
  t.match(removal.stderr, /LSM_ERR_HAS_CHILD_DEPENDENCY.*snap/, 'naming the dependent clone')

  const mirror = JSON.parse(fixture.ok(['replicate', `${fixture.vg}/src`, 'mir', '--type', 'mirror-sync', '--wait',
    '--json', '--devices', fixture.pvs.join(',')]).trim().split('\n').pop()!) as { status: string }
  t.match(mirror.status, /LSM_ERR_(OK|JOB_STARTED)/, 'the sync mirror is created')
  const mirFile = join(fixture.mountpoint, 'mir')
  const after = randomBytes(2 << 20)
  writeAt(src, 10 << 20, after)
  t.equal(sha256(readAt(mirFile, 10 << 20, 2 << 20)), sha256(after), 'an origin write reaches the sync mirror')
  t.throws(() => openSync(mirFile, constants.O_WRONLY), 'the mirror target refuses write opens')
})
