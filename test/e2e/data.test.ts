// End to end through the real CLI and daemon: bytes written with dd and an ext4 tree read back
// from linear and mirrored LVs, on plain files and on loop devices.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, scrubMismatches, sha256, skip } from '../helpers/e2e.js'
import { repoRoot } from '../helpers/mount-child.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

for (const loop of [false, true]) {
  t.test(`dd round trip on linear and mirrored LVs (${loop ? 'loop devices' : 'plain files'})`, { skip },
    async (t: Test) => {
      const fixture = makeVg(t, { pvCount: 3, pvBytes: 256 << 20, loop })
      createAndMount(t, fixture, [{ name: 'lin', size: '64M' }, { name: 'mir', size: '64M', copies: 2 }])
      const data = randomBytes(16 << 20)
      const source = join(fixture.dir, 'source')
      writeFileSync(source, data)
      for (const lv of ['lin', 'mir']) {
        const file = join(fixture.mountpoint, lv)
        t.equal(statSync(file).size, 64 << 20, `${lv} has the LV size`)
        execFileSync('dd', [`if=${source}`, `of=${file}`, 'bs=1M', 'seek=8', 'oflag=direct', 'conv=notrunc,fsync',
          'status=none'])
        t.equal(sha256(readAt(file, 8 << 20, data.length)), sha256(data), `${lv} reads back what dd wrote`)
      }
      t.equal(scrubMismatches(fixture, 'mir'), 0, 'both copies of the mirror hold the same bytes')
    })
}

t.test('ext4 on an LV: mkfs, loop mount, copy a tree, e2fsck clean', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'fs', size: '128M', copies: 2 }])
  const lvFile = join(fixture.mountpoint, 'fs')
  execFileSync('mkfs.ext4', ['-q', '-F', lvFile])
  const ext4 = join(fixture.dir, 'ext4')
  execFileSync('mkdir', ['-p', ext4])
  execFileSync('mount', ['-o', 'loop', lvFile, ext4])
  try {
    execFileSync('cp', ['-a', join(repoRoot, 'src'), join(ext4, 'tree')])
  } finally {
    execFileSync('umount', [ext4])
  }
  const fsck = spawnSync('e2fsck', ['-fn', lvFile], { encoding: 'utf8' })
  t.equal(fsck.status, 0, `e2fsck -fn is clean: ${fsck.stdout}${fsck.stderr}`)
  execFileSync('mount', ['-o', 'loop,ro', lvFile, ext4])
  try {
    t.equal(spawnSync('diff', ['-r', join(repoRoot, 'src'), join(ext4, 'tree')]).status, 0, 'contents equal')
  } finally {
    execFileSync('umount', [ext4])
  }
})
