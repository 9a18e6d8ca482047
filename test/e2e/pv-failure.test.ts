// End to end: a PV failing under fio verify loses nothing, its partitions go stale, and resync
// (also while fio writes) leaves the copies byte-identical.
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { scrubMismatches, skip, stalePps } from '../helpers/e2e.js'
import { createAndMount, makeVg } from '../helpers/vg-mount.js'

t.test('fio with verify on a mirrored LV while one PV fails, then resync', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 3, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'mir', size: '128M', copies: 2 }])
  const fio = spawn('fio', ['--name=verify', `--filename=${join(fixture.mountpoint, 'mir')}`, '--rw=randwrite',
    '--bsrange=4k-64k', '--ioengine=libaio', '--direct=1', '--iodepth=8', '--size=128M', '--time_based',
    // Long enough that the fault (a CLI call, several seconds on a loaded 2-core machine) lands
    // while fio still writes.
    '--runtime=12', '--verify=crc32c', '--verify_backlog=256', '--verify_fatal=1', '--verify_state_save=0',
    '--output-format=json'],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  let fioOut = ''
  fio.stdout.on('data', (chunk: Buffer) => { fioOut += chunk.toString() })
  const fioExited = new Promise<void>((resolve) => fio.once('exit', () => resolve()))
  t.teardown(() => { fio.kill('SIGKILL') })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--fail-writes'])
  t.equal(fio.exitCode, null, 'fio was still writing when the PV failed')
  const failedAt = Date.now()
  let staleAfterMs: number | undefined
  while (staleAfterMs === undefined && Date.now() - failedAt < 10_000) {
    if (stalePps(fixture, 0) > 0) staleAfterMs = Date.now() - failedAt
    else await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(staleAfterMs !== undefined, 'partitions of the failed PV were marked stale')
  t.comment(`stale bits visible ${staleAfterMs} ms after the fault (polling every 50 ms)`)
  await fioExited
  t.equal(fio.exitCode, 0, 'fio finished without an I/O or verify error')
  const job = (JSON.parse(fioOut.slice(fioOut.indexOf('{'))) as { jobs: Array<{ error: number }> }).jobs[0]!
  t.equal(job.error, 0, 'fio reports error 0')
  fixture.ok(['fault', fixture.vg, fixture.pvs[0]!, '--clear'])
  fixture.ok(['varyonvg', fixture.vg, '--devices', fixture.pvs.join(',')])
  fixture.ok(['syncvg', fixture.vg, '--devices', fixture.pvs.join(',')])
  t.equal(stalePps(fixture, 0), 0, 'no stale partition left after resync')
  t.equal(scrubMismatches(fixture, 'mir'), 0, 'the copies are byte-identical')
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
