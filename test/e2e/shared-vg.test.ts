// End to end: a shared VG (vgcreate --shared) served by two daemons through FUSE, each serving
// one LV under the DLM (broker, then etcd); one extends its LV while the other writes, and both
// see the new descriptor. Then kill -9 of a daemon holding the VG lock EX right after a commit:
// the other recovers (collect, reload from disk, validate) and its next commit keeps the dead
// process's change.
import { spawn } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { VgStatusReport } from '../../src/engine/status.js'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'
import { scanDevices } from '../../src/lvm/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { fuseAvailable } from '../helpers/mount-child.js'
import { eventually, sharedVg, type Shared } from '../helpers/shared-vg.js'

const skip = fuseAvailable()
const MiB = 1 << 20
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

function lvSize(status: VgStatusReport, lv: string): number | undefined {
  return status.lvs.find((candidate) => candidate.name === lv)?.sizeBytes
}

/** Two daemons, one LV each; B writes b while A extends a; then B extends b while A reads. */
async function twoServers(t: Test, fixture: Shared, lockArgs: string[]): Promise<void> {
  const mntA = fixture.mountpoint('mnt-a')
  const mntB = fixture.mountpoint('mnt-b')
  const devices = ['--devices', fixture.pvs.join(',')]
  fixture.ok(['mount', fixture.vg, mntA, '--lvs', 'a', ...lockArgs, ...devices])
  fixture.ok(['mount', fixture.vg, mntB, '--lvs', 'b', ...lockArgs, ...devices])
  t.same(readdirSync(mntA), ['a'], 'daemon A serves only a')
  t.same(readdirSync(mntB), ['b'], 'daemon B serves only b')
  const again = fixture.cli(['mount', fixture.vg, fixture.mountpoint('mnt-c'), '--lvs', 'a', ...lockArgs, ...devices])
  t.equal(again.code, 5, 'a third daemon cannot serve a as well')
  t.match(again.stderr, /ENGINE_BUSY.*"a" is served by another process/, 'with a clear error')

  const data = randomBytes(8 * MiB)
  const source = join(fixture.dir, 'data.bin')
  writeFileSync(source, data)
  const dd = new Promise<number>((resolve) => {
    const child = spawn('dd', [`if=${source}`, `of=${join(mntB, 'b')}`, 'bs=256K', 'oflag=direct', 'conv=notrunc,fsync'],
      { stdio: 'ignore', timeout: 60_000 })
    child.once('exit', (code) => resolve(code ?? -1))
  })
  const extend = fixture.cliAsync(['lvextend', fixture.vg, 'a', '--size', '+8M', ...devices])
  const [ddCode, extendCode] = await Promise.all([dd, extend])
  t.equal(ddCode, 0, 'B wrote 8 MiB into b')
  t.equal(extendCode, 0, 'A extended a meanwhile (lvextend routed to the daemon serving a)')
  t.equal(statSync(join(mntA, 'a')).size, 16 * MiB, 'A serves the grown a')
  const statusA = await fixture.status(mntA)
  t.ok(await eventually(async () => (await fixture.status(mntB)).seq === statusA.seq),
    `B reloaded the descriptor A committed (seq ${statusA.seq})`)
  t.equal(lvSize(await fixture.status(mntB), 'a'), 16 * MiB, 'B sees a at its new size')
  t.equal(sha(readFileSync(join(mntB, 'b'))), sha(data), 'b reads back what B wrote')

  fixture.ok(['lvextend', fixture.vg, 'b', '--size', '+4M', ...devices])
  t.equal(statSync(join(mntB, 'b')).size, 12 * MiB, 'B serves the grown b')
  const statusB = await fixture.status(mntB)
  t.ok(statusB.seq > statusA.seq, 'B committed on top of A\'s descriptor')
  t.ok(await eventually(async () => lvSize(await fixture.status(mntA), 'b') === 12 * MiB),
    'A sees b at its new size')
  t.equal(sha(readFileSync(join(mntB, 'b')).subarray(0, 8 * MiB)), sha(data), 'b keeps its data')

  // Replication runs in the daemon serving the source: the clone is made, locked and served by B.
  fixture.ok(['replicate', `${fixture.vg}/b`, 'snap', '--type', 'clone', ...devices])
  t.same(readdirSync(mntB).sort(), ['b', 'snap'], 'B serves the clone of b with b')
  t.equal(sha(readFileSync(join(mntB, 'snap')).subarray(0, 8 * MiB)), sha(data), 'the clone holds b\'s data')
  const other = fixture.cli(['mount', fixture.vg, fixture.mountpoint('mnt-d'), '--lvs', 'snap', ...lockArgs, ...devices])
  t.equal(other.code, 5, 'another daemon cannot serve the clone')
  t.match(other.stderr, /ENGINE_NOT_SUPPORTED.*served with its source/, `naming why: ${other.stderr.trim()}`)
  t.ok(await eventually(async () => (await fixture.status(mntA)).lvs.some((lv) => lv.name === 'snap')),
    'A sees the clone in the descriptor B committed')
  const fromA = fixture.cli(['replicate', `${fixture.vg}/a`, 'snap-a', '--type', 'clone', ...devices])
  t.equal(fromA.code, 0, `a clone of a is made by A, which serves a: ${fromA.stderr}`)
  fixture.ok(['lvremove', fixture.vg, 'snap-a', '--devices', fixture.pvs.join(',')])

  fixture.ok(['umount', mntA])
  fixture.ok(['umount', mntB])
  t.equal(mountsAt(mntA).length + mountsAt(mntB).length, 0, 'both unmounted by mount point')
  const { vgs } = await scanDevices(fixture.pvs)
  const onDisk = vgs.find((vg) => vg.name === fixture.vg)!.result.descriptor!
  t.same(onDisk.lvs.map((lv) => [lv.name, lv.lps.length]), [['a', 4], ['b', 3], ['snap', 1]],
    'on disk: a 16 MiB, b 12 MiB, the clone\'s metadata partition')
  t.equal(onDisk.shared, true, 'the VG is still marked shared')
}

t.test('shared VG through the broker: two daemons, extend while writing', { skip }, async (t) => {
  const fixture = await sharedVg(t)
  const plain = fixture.cli(['mount', fixture.vg, fixture.mountpoint('mnt-plain'), '--devices', fixture.pvs.join(',')])
  t.equal(plain.code, 3, 'a shared VG is not mounted without --lvs')
  t.match(plain.stderr, /is shared: name the LVs to serve with --lvs/)
  await twoServers(t, fixture, [])
})

t.test('shared VG through etcd: two daemons, extend while writing', { skip }, async (t) => {
  const url = await startEtcd(t)
  if (url === null) {
    t.plan(0, 'etcd is not installed (/usr/bin/etcd)')
    return
  }
  const fixture = await sharedVg(t)
  await twoServers(t, fixture, ['--lock-backend', 'etcd', '--etcd', url, '--lock-ttl', '5'])
})

t.test('kill -9 of a daemon holding the VG lock EX: the other recovers', { skip }, async (t) => {
  const fixture = await sharedVg(t)
  const mntA = fixture.mountpoint('mnt-a')
  const mntB = fixture.mountpoint('mnt-b')
  const devices = ['--devices', fixture.pvs.join(',')]
  const pause = join(fixture.dir, 'paused')
  fixture.ok(['mount', fixture.vg, mntA, '--lvs', 'a', ...devices], { LVMFS_TEST_SHARED_PAUSE_AFTER_COMMIT: pause })
  fixture.ok(['mount', fixture.vg, mntB, '--lvs', 'b', ...devices])
  const before = (await fixture.status(mntB)).seq
  const pidA = (await fixture.status(mntA)).pid
  writeFileSync(`${pause}.arm`, '')
  const hung = fixture.cliAsync(['lvextend', fixture.vg, 'a', '--size', '+8M', ...devices])
  t.ok(await eventually(async () => existsSync(pause)), 'A committed and stopped holding the VG lock EX')
  process.kill(pidA, 'SIGKILL')
  t.not(await hung, 0, 'the lvextend sent to A fails with A')
  cleanupMountpoint(mntA, { force: true })

  fixture.ok(['lvextend', fixture.vg, 'b', '--size', '+4M', ...devices])
  const statusB = await fixture.status(mntB)
  t.ok((statusB.shared?.recoveries ?? 0) >= 1, 'B ran collect → reload → validate')
  t.equal(statusB.seq, before + 2, 'B\'s commit follows the one A made before dying')
  t.equal(lvSize(statusB, 'a'), 16 * MiB, 'B kept A\'s extension of a (reloaded from disk)')
  t.equal(statSync(join(mntB, 'b')).size, 12 * MiB, 'and serves its own grown b')
  fixture.ok(['umount', mntB])
  const { vgs } = await scanDevices(fixture.pvs)
  const onDisk = vgs.find((vg) => vg.name === fixture.vg)!.result.descriptor!
  t.same(onDisk.lvs.map((lv) => [lv.name, lv.lps.length]), [['a', 4], ['b', 3]], 'on disk: both extensions')
})
