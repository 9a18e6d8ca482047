// End to end: a full copy of a mounted LV made by a background job in the daemon. The target
// refuses opens until the job completes; a source write right after the job started does not
// reach the copy (it is the image at creation); a kill -9 of the daemon mid-job, then a remount,
// resumes the job from its checkpoint; progress never goes back; the finished copy is exact.
import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, sha256, skip, writeAt } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

const SIZE = 192 << 20

t.test('copy job of a mounted LV survives kill -9 and completes with the image at creation', { skip },
  async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: 512 << 20 })
    const devices = fixture.pvs.join(',')
    createAndMount(t, fixture, [{ name: 'src', size: '192M' }])
    const source = join(fixture.mountpoint, 'src')
    const original = randomBytes(SIZE)
    writeAt(source, 0, original)

    const started = JSON.parse(fixture.ok(['replicate', `${fixture.vg}/src`, 'cp', '--type', 'copy', '--json',
      '--devices', devices])) as { status: string, job: string }
    t.equal(started.status, 'LSM_ERR_JOB_STARTED', `the copy answers with job ${started.job}`)
    const later = randomBytes(1 << 20)
    writeAt(source, SIZE - (3 << 20), later)
    let refused = false
    try {
      closeSync(openSync(join(fixture.mountpoint, 'cp'), constants.O_RDONLY))
    } catch (error) {
      refused = (error as NodeJS.ErrnoException).code === 'EBUSY'
    }
    process.kill(fixture.daemonPid()!, 'SIGKILL')
    t.ok(refused, 'the target refused the open with EBUSY while the job ran')
    const status = (): { state: string, percent: number } =>
      JSON.parse(fixture.ok(['job', started.job, '--json', '--devices', devices])) as { state: string, percent: number }
    // Read from disk with no daemon: what the job had persisted when it was killed.
    const before = status()
    t.equal(before.state, 'INPROGRESS', `the kill landed mid-job, at ${before.percent}%`)

    const remount = fixture.cli(['mount', fixture.vg, fixture.mountpoint, '--devices', devices])
    t.equal(remount.code, 0, `remount after the kill: ${remount.stderr}`)
    const percents: number[] = [before.percent]
    for (let poll = 0; poll < 600; poll++) {
      const now = status()
      percents.push(now.percent)
      if (now.state !== 'INPROGRESS') {
        t.equal(now.state, 'COMPLETE', 'the resumed job completes')
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.same([...percents].sort((a, b) => a - b), percents, `progress never went back (${percents.join(' ')})`)
    const copy = readAt(join(fixture.mountpoint, 'cp'), 0, SIZE)
    t.equal(sha256(copy), sha256(original), 'the copy is the source image at creation, byte for byte')
    t.equal(sha256(readAt(source, SIZE - (3 << 20), 1 << 20)), sha256(later), 'while the source kept its later write')
    writeAt(join(fixture.mountpoint, 'cp'), 0, later)
    t.equal(sha256(readAt(join(fixture.mountpoint, 'cp'), 0, 1 << 20)), sha256(later), 'the complete copy is writable')
    t.equal(sha256(readAt(source, 0, 1 << 20)), sha256(original.subarray(0, 1 << 20)), 'and independent of the source')
  })
