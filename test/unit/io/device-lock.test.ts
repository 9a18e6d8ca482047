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
  // `sh` starts a short `sleep` in the background, prints its pid and becomes `sleep 5`, which
  // never reaps it: once the short one ends it is a zombie whose parent is alive. The child
  // outlives the exec on purpose: a `true` that exited first was sometimes reaped by `sh` itself
  // before the exec (then /proc/PID was gone and the test failed for no fault of claimFile).
  const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 10'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { parent.kill('SIGKILL') })
  const zombie = Number(await new Promise<string>((resolve) => {
    createInterface({ input: parent.stdout }).once('line', resolve)
  }))
  for (let i = 0; i < 250; i++) {
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
