// End to end across hosts: a mirror with one copy on a local file and one on an NBD export
// served from another network namespace. The remote server stops answering, then dies, while fio
// writes and verifies: fio sees no error, the remote PV goes MISSING and its copies stale; the
// server comes back, varyonvg re-adds the PV, syncvg resyncs it, and the copies are identical.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pvState, scrubMismatches, skip, stalePps } from '../../helpers/e2e.js'
import { remoteExport, remoteHostUnavailable, startNbdServer } from '../../helpers/remote-host.js'
import { createAndMount, makeVg } from '../../helpers/vg-mount.js'

const unavailable = skip || remoteHostUnavailable()

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a local+remote mirror survives the remote server stopping and dying under fio verify',
  { skip: unavailable }, async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 1, pvBytes: 256 << 20 })
    const remote = await remoteExport(t, fixture.dir, 256 << 20)
    const { host, file: remoteFile } = remote
    let server = remote.server
    fixture.pvs.push(server.uri)
    // A remote PV that does not answer for 2 s is failed (the default is 30 s).
    fixture.env['LVMFS_NBD_TIMEOUT_MS'] = '2000'
    createAndMount(t, fixture, [{ name: 'mir', size: '64M', copies: 2 }])
    t.equal(pvState(fixture, 1), 'active', 'the NBD PV is active')
    const fio = spawn('fio', ['--name=remote', `--filename=${join(fixture.mountpoint, 'mir')}`, '--rw=randwrite',
      '--bsrange=4k-64k', '--ioengine=libaio', '--direct=1', '--iodepth=8', '--size=64M', '--time_based',
      '--runtime=12', '--verify=crc32c', '--verify_backlog=256', '--verify_fatal=1', '--verify_state_save=0',
      '--output-format=json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let fioOut = ''
    fio.stdout.on('data', (chunk: Buffer) => { fioOut += chunk.toString() })
    const fioExited = new Promise<void>((resolve) => fio.once('exit', () => resolve()))
    t.teardown(() => { fio.kill('SIGKILL') })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // First it stops answering (a hung host), so requests time out; then it dies.
    server.process.kill('SIGSTOP')
    t.equal(fio.exitCode, null, 'fio was still writing when the server stopped')
    await until('the remote PV is missing', () => pvState(fixture, 1) === 'missing')
    t.pass('the remote PV went MISSING after the timeout')
    await server.kill()
    await fioExited
    t.equal(fio.exitCode, 0, 'fio finished without an I/O or verify error')
    const job = (JSON.parse(fioOut.slice(fioOut.indexOf('{'))) as { jobs: Array<{ error: number }> }).jobs[0]!
    t.equal(job.error, 0, 'fio reports error 0')
    t.ok(stalePps(fixture, 1) > 0, 'the copies written while it was gone are stale')

    server = await startNbdServer(t, host, remoteFile, 10809)
    fixture.ok(['varyonvg', fixture.vg, '--devices', fixture.pvs.join(',')])
    t.equal(pvState(fixture, 1), 'active', 'varyonvg re-added the remote PV')
    fixture.ok(['syncvg', fixture.vg, '--devices', fixture.pvs.join(',')])
    t.equal(stalePps(fixture, 1), 0, 'no stale partition left after resync')
    t.equal(scrubMismatches(fixture, 'mir'), 0, 'the local and remote copies are byte-identical')
  })
