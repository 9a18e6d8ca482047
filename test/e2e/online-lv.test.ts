// End to end: LVs created or extended while mounted are usable at once; a second mount of the
// same VG and an umount with an LV open are refused with clear errors.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, skip } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

t.test('an LV created while mounted is usable at once; a second mount is refused', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 128 << 20 })
  createAndMount(t, fixture, [{ name: 'first', size: '16M' }])
  fixture.ok(['lvcreate', fixture.vg, 'later', '--size', '16M', '--devices', fixture.pvs.join(',')])
  const later = join(fixture.mountpoint, 'later')
  t.ok(existsSync(later), 'the new LV appears in the mount')
  const data = randomBytes(1 << 20)
  writeFileSync(later, data, { flag: 'r+' })
  t.same(readAt(later, 0, data.length), data, 'and reads back what was written')
  fixture.ok(['lvextend', fixture.vg, 'later', '--size', '+8M', '--devices', fixture.pvs.join(',')])
  t.equal(statSync(later).size, 24 << 20, 'lvextend grows the file')
  const other = join(fixture.dir, 'other')
  execFileSync('mkdir', ['-p', other])
  const second = fixture.cli(['mount', fixture.vg, other, '--devices', fixture.pvs.join(',')])
  t.equal(second.code, 5, 'a second mount fails')
  t.match(second.stderr, /ENGINE_ALREADY_MOUNTED/, 'with a clear error')
  const umountOpen = (() => {
    const fd = openSync(later, 'r')
    try { return fixture.cli(['umount', fixture.mountpoint]) } finally { closeSync(fd) }
  })()
  t.equal(umountOpen.code, 5, 'umount refuses while an LV is open')
  t.match(umountOpen.stderr, /LVM_LVOPEN.*later/, 'naming the open LV')
  fixture.ok(['umount', fixture.mountpoint])
})
