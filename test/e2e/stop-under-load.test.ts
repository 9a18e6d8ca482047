// SIGTERM and `lvmfs umount --force` while a writer streams into a mirrored LV: the stop is a lazy
// unmount, so the daemon keeps serving the open file and exits only once the writer has closed
// it; every write succeeds, the daemon exits, nothing stays mounted, and after a remount the LV
// holds every byte written and its copies are identical. (fio is not the writer here: it reopens
// its file by path for verification, which after a lazy unmount names another file.)
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountsAt } from '../../src/fuse/mounts.js'
import { readAt, scrubMismatches, sha256, skip } from '../helpers/e2e.js'
import { createAndMount, makeVg, mountVg } from '../helpers/vg-mount.js'

const BLOCKS = 16384  // 64 MiB in 4 KiB synchronous writes: several seconds on two copies

async function waitForExit(pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 1200; attempt++) {
    try {
      process.kill(pid, 0)
    } catch {
      return true
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

for (const how of ['SIGTERM', 'umount --force'] as const) {
  t.test(`${how} under a live writer: it finishes, the daemon exits, every byte is on both copies`, { skip },
    async (t: Test) => {
      const fixture = makeVg(t, { pvCount: 2, pvBytes: 192 << 20 })
      createAndMount(t, fixture, [{ name: 'mir', size: '64M', copies: 2 }])
      const pattern = join(fixture.dir, 'pattern')
      const bytes = randomBytes(BLOCKS * 4096)
      writeFileSync(pattern, bytes)
      const pid = fixture.daemonPid()!
      const writer = spawn('dd', [`if=${pattern}`, `of=${join(fixture.mountpoint, 'mir')}`, 'bs=4k',
        `count=${BLOCKS}`, 'oflag=direct,dsync', 'conv=notrunc', 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      writer.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
      const written = new Promise<number | null>((resolve) => writer.once('exit', (code) => resolve(code)))
      t.teardown(() => { writer.kill('SIGKILL') })
      await new Promise((resolve) => setTimeout(resolve, 1000))
      t.equal(writer.exitCode, null, 'the writer is still writing when the stop is asked')
      if (how === 'SIGTERM') process.kill(pid, 'SIGTERM')
      else fixture.ok(['umount', fixture.mountpoint, '--force'])
      t.equal(await written, 0, `every write succeeded ${stderr}`)
      t.ok(await waitForExit(pid), 'the daemon exited once the writer had closed the file')
      t.equal(mountsAt(fixture.mountpoint).length, 0, 'nothing left mounted')
      mountVg(t, fixture)
      t.equal(sha256(readAt(join(fixture.mountpoint, 'mir'), 0, bytes.length)), sha256(bytes), 'the LV holds every byte')
      t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are identical')
    })
}
