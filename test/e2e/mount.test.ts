// The mounted volume group end to end, through the real CLI and daemon: data written with dd,
// fio and ext4 reads back; a PV failing under fio loses nothing and resyncs; a kill -9 of the
// daemon keeps every fsync-acknowledged block; LVs created while mounted appear at once; a
// second mount of the same VG is refused.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { fuseAvailable, repoRoot, waitExit } from '../helpers/mount-child.js'
import { readStamp } from '../helpers/stamps.js'
import { createAndMount, makeVg, type VgFixture } from '../helpers/vg-mount.js'

const skip = fuseAvailable() || (spawnSync('fio', ['--version']).status !== 0 ? 'fio is not installed' : false)

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(length)
    readSync(fd, buffer, 0, length, offset)
    return buffer
  } finally {
    closeSync(fd)
  }
}

function scrubMismatches(fixture: VgFixture, lv: string): number {
  const report = JSON.parse(fixture.ok(['scrub', `${fixture.vg}/${lv}`, '--json']).trim().split('\n').pop()!) as
    { mismatches: unknown[] }
  return report.mismatches.length
}

function stalePps(fixture: VgFixture, pvIndex: number): number {
  const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { pvs: Array<{ stalePps: number }> }
  return status.pvs[pvIndex]!.stalePps
}

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

t.test('fio with verify on a mirrored LV while one PV fails, then resync', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 3, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '128M', copies: 2 }])
  const fio = spawn('fio', ['--name=verify', `--filename=${join(fixture.mountpoint, 'mir')}`, '--rw=randwrite',
    '--bsrange=4k-64k', '--ioengine=libaio', '--direct=1', '--iodepth=8', '--size=128M', '--time_based',
    '--runtime=6', '--verify=crc32c', '--verify_backlog=256', '--verify_fatal=1', '--verify_state_save=0',
    '--output-format=json'],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  let fioOut = ''
  fio.stdout.on('data', (chunk: Buffer) => { fioOut += chunk.toString() })
  t.teardown(() => { fio.kill('SIGKILL') })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--fail-writes'])
  const failedAt = Date.now()
  let staleAfterMs: number | undefined
  while (staleAfterMs === undefined && Date.now() - failedAt < 10_000) {
    if (stalePps(fixture, 0) > 0) staleAfterMs = Date.now() - failedAt
    else await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(staleAfterMs !== undefined, 'partitions of the failed PV were marked stale')
  t.comment(`stale bits visible ${staleAfterMs} ms after the fault (polling every 50 ms)`)
  await new Promise<void>((resolve) => fio.once('exit', () => resolve()))
  t.equal(fio.exitCode, 0, 'fio finished without an I/O or verify error')
  const job = (JSON.parse(fioOut.slice(fioOut.indexOf('{'))) as { jobs: Array<{ error: number }> }).jobs[0]!
  t.equal(job.error, 0, 'fio reports error 0')
  fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--clear'])
  fixture.ok(['varyonvg', fixture.vg, '--devices', fixture.pvs.join(',')])
  fixture.ok(['syncvg', fixture.vg, '--devices', fixture.pvs.join(',')])
  t.equal(stalePps(fixture, 0), 0, 'no stale partition left after resync')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical')
})

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

t.test('online resync while fio writes and verifies: copies end identical', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '128M', copies: 2 }])
  const file = join(fixture.mountpoint, 'mir')
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', 'count=128', 'oflag=direct', 'conv=notrunc',
    'status=none'])
  fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--disappear'])
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', 'count=128', 'oflag=direct', 'conv=notrunc',
    'status=none'])
  t.ok(stalePps(fixture, 1) > 0, 'the lost PV has stale partitions')
  fixture.ok(['fault', fixture.vg, fixture.pvs[1]!, '--clear'])
  fixture.ok(['varyonvg', fixture.vg, '--no-resync', '--devices', fixture.pvs.join(',')])
  t.ok(stalePps(fixture, 1) > 0, 'the returned PV is still stale (no automatic resync)')
  const fio = spawn('fio', ['--name=online', `--filename=${file}`, '--rw=randwrite', '--bsrange=4k-64k',
    '--ioengine=libaio', '--direct=1', '--iodepth=16', '--size=16M', '--time_based', '--runtime=8',
    '--verify=crc32c', '--verify_backlog=256', '--verify_fatal=1', '--verify_state_save=0'], { stdio: 'ignore' })
  t.teardown(() => { fio.kill('SIGKILL') })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const resync = fixture.cli(['syncvg', fixture.vg, '--devices', fixture.pvs.join(','), '--rate', '32M'])
  t.equal(resync.code, 0, `syncvg succeeds while fio writes: ${resync.stderr}`)
  await new Promise<void>((resolve) => fio.once('exit', () => resolve()))
  t.equal(fio.exitCode, 0, 'fio verified every block it wrote')
  t.equal(stalePps(fixture, 1), 0, 'no stale partition left')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'resync never overwrote newer data: copies identical')
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
