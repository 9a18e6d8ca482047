// File claims: a lock file naming a live process refuses the claim; one naming a process that
// was killed but not yet reaped (a zombie, which still answers signal 0) is taken over, so a
// remount right after kill -9 of a daemon does not fail.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { claimFile } from '../../../src/io/device-lock.js'

t.test('claimFile() refuses a live owner and takes over from a zombie owner', async (t) => {
  const dir = t.testdir({})
  process.env['LVMFS_LOCK_DIR'] = dir
  t.teardown(() => { delete process.env['LVMFS_LOCK_DIR'] })
  // `sh` starts `true` in the background, prints its pid and becomes `sleep`, which never reaps
  // it: for the next seconds `true` is a zombie whose parent is alive.
  const parent = spawn('sh', ['-c', 'true & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { parent.kill('SIGKILL') })
  const zombie = Number(await new Promise<string>((resolve) => {
    createInterface({ input: parent.stdout }).once('line', resolve)
  }))
  for (let i = 0; i < 50; i++) {
    const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  writeFileSync(join(dir, 'pv-1-2.lock'), `${parent.pid}\n`)
  t.throws(() => claimFile('/dev/live', 1, 2), { code: 'ENGINE_BUSY' }, 'a live owner keeps the claim')
  writeFileSync(join(dir, 'pv-1-3.lock'), `${zombie}\n`)
  const claim = claimFile('/dev/zombie', 1, 3)
  t.equal(readFileSync(claim.lockPath, 'utf8').trim(), String(process.pid), 'the zombie owner\'s claim is taken over')
  claim.release()
})
