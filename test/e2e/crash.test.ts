// End to end: kill -9 of the daemon keeps every fsync-acknowledged block (raw LV with an ack
// journal, and ext4 with fsynced files); remount runs MWC recovery and the copies end identical.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, scrubMismatches, skip } from '../helpers/e2e.js'
import { repoRoot, waitExit } from '../helpers/mount-child.js'
import { readStamp } from '../helpers/stamps.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

t.test('kill -9 of the daemon during acknowledged writes, remount, MWC recovery', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '64M', copies: 2, mwc: 'active' }])
  const journal = join(fixture.dir, 'journal')
  writeFileSync(journal, '')
  const writer = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/ack-writer.ts'),
    join(fixture.mountpoint, 'mir'), String(64 << 20), journal], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { writer.kill('SIGKILL') })
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const pid = fixture.daemonPid()
  t.ok(pid, 'the daemon wrote its pid file')
  process.kill(pid!, 'SIGKILL')
  await waitExit(writer, 20_000)
  const acknowledged = new Map<number, number>()
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    const [offset, sequence] = line.split(' ').map(Number)
    if (line && offset !== undefined && sequence !== undefined) acknowledged.set(offset, sequence)
  }
  t.ok(acknowledged.size > 10, `the writer had ${acknowledged.size} acknowledged blocks`)
  const remount = fixture.cli(['mount', fixture.vg, fixture.mountpoint, '--devices', fixture.pvs.join(',')])
  t.equal(remount.code, 0, `remount over the dead mount: ${remount.stderr}`)
  let missing = 0
  for (const [offset, sequence] of acknowledged) {
    const found = readStamp(readAt(join(fixture.mountpoint, 'mir'), offset, 4096), offset)
    if (found === undefined || found < sequence) missing++
  }
  t.equal(missing, 0, 'every fsync-acknowledged block is present (or overwritten by a later write)')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'MWC recovery left both copies identical')
})

t.test('kill -9 under ext4 with fsynced files: remount, journal replay, files intact, e2fsck clean', { skip },
  async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
    createAndMount(t, fixture, [{ name: 'fs', size: '128M', copies: 2, mwc: 'active' }])
    const lvFile = join(fixture.mountpoint, 'fs')
    execFileSync('mkfs.ext4', ['-q', '-F', lvFile])
    const ext4 = join(fixture.dir, 'ext4')
    execFileSync('mkdir', ['-p', ext4])
    const loopMount = (): void => {
      execFileSync('mount', ['-o', 'loop', lvFile, ext4])
      fixture.loops.push(execFileSync('findmnt', ['-n', '-o', 'SOURCE', ext4], { encoding: 'utf8' }).trim())
    }
    loopMount()
    const journal = join(fixture.dir, 'acknowledged')
    writeFileSync(journal, '')
    // Each file is fsynced (sync FILE) before it is listed: the list holds only durable files.
    const writer = spawn('sh', ['-c', `i=0; while true; do i=$((i+1)); head -c 65536 /dev/urandom > ${ext4}/f$i && ` +
      `sync ${ext4}/f$i && sha256sum ${ext4}/f$i >> ${journal} || exit 0; done`], { stdio: 'ignore' })
    t.teardown(() => { writer.kill('SIGKILL') })
    await new Promise((resolve) => setTimeout(resolve, 3000))
    process.kill(fixture.daemonPid()!, 'SIGKILL')
    await waitExit(writer, 5_000)
    writer.kill('SIGKILL')
    spawnSync('umount', ['-l', ext4])
    for (const loop of fixture.loops.splice(0)) spawnSync('losetup', ['-d', loop])
    const lines = readFileSync(journal, 'utf8').split('\n').filter((line) => line.length > 0)
    t.ok(lines.length > 5, `${lines.length} files were acknowledged before the kill`)
    const remount = fixture.cli(['mount', fixture.vg, fixture.mountpoint, '--devices', fixture.pvs.join(',')])
    t.equal(remount.code, 0, `remount over the dead mount: ${remount.stderr}`)
    loopMount()
    try {
      const check = spawnSync('sha256sum', ['--check', '--quiet', journal], { encoding: 'utf8' })
      t.equal(check.status, 0, `every fsynced file reads back intact: ${check.stdout}${check.stderr}`)
    } finally {
      execFileSync('umount', [ext4])
      for (const loop of fixture.loops.splice(0)) spawnSync('losetup', ['-d', loop])
    }
    const fsck = spawnSync('e2fsck', ['-fn', lvFile], { encoding: 'utf8' })
    t.equal(fsck.status, 0, `e2fsck -fn is clean after journal replay: ${fsck.stdout}`)
    t.equal(scrubMismatches(fixture, 'fs'), 0, 'MWC recovery left both copies identical')
  })
