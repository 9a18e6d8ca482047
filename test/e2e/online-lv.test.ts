// End to end: LVs created or extended while mounted are usable at once; a second mount of the
// same VG and an umount with an LV open are refused with clear errors.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs'
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

t.test('day two on a mounted VG: lvchange --activate n and --permission r, vgcfgrestore after trashed descriptors',
  { skip }, async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: 64 << 20 })
    const devices = ['--devices', fixture.pvs.join(',')]
    createAndMount(t, fixture, [{ name: 'a', size: '8M' }])
    const a = join(fixture.mountpoint, 'a')
    const held = openSync(a, 'r')
    const busy = (() => {
      try { return fixture.cli(['lvchange', `${fixture.vg}/a`, '--activate', 'n', ...devices]) } finally { closeSync(held) }
    })()
    t.equal(busy.code, 5, 'deactivating an open LV is refused')
    t.match(busy.stderr, /LVM_LVOPEN/)
    const data = randomBytes(1 << 20)
    const fd = openSync(a, 'r+')
    try {
      writeSync(fd, data, 0, data.length, 0)
      fixture.ok(['lvchange', `${fixture.vg}/a`, '--permission', 'r', ...devices])
      t.throws(() => writeSync(fd, data, 0, data.length, 0), { code: 'EROFS' }, 'a file already open fails writes')
    } finally {
      closeSync(fd)
    }
    t.throws(() => openSync(a, 'r+'), { code: 'EROFS' }, 'an open for write fails with EROFS')
    t.equal(statSync(a).mode & 0o777, 0o444, 'mode 0444')
    t.same(readAt(a, 0, data.length), data, 'reads still work')
    fixture.ok(['lvchange', `${fixture.vg}/a`, '--activate', 'n', ...devices])
    t.notOk(existsSync(a), 'a deactivated LV leaves the mount')
    t.throws(() => openSync(a, 'r'), { code: 'ENOENT' })
    fixture.ok(['umount', fixture.mountpoint])
    // Both VGDA areas of every PV zeroed (default layout: four 512 KiB slots from 64 KiB).
    for (const pv of fixture.pvs) {
      const pvFd = openSync(pv, 'r+')
      try { writeSync(pvFd, Buffer.alloc(4 * 512 * 1024), 0, 4 * 512 * 1024, 64 * 1024) } finally { closeSync(pvFd) }
    }
    fixture.ok(['vgcfgrestore', fixture.vg, ...devices])
    const lvs = JSON.parse(fixture.ok(['lvs', fixture.vg, '--json', ...devices])) as { lvs: Array<{ lv: string }> }
    t.same(lvs.lvs.map((lv) => lv.lv), ['a'], 'vary-on adopts the restored descriptor')
  })
