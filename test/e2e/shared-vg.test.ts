// End to end: a shared VG (vgcreate --shared) served by two daemons through FUSE, each serving
// one LV under the DLM (broker, then etcd); one extends its LV while the other writes, and both
// see the new descriptor. Then kill -9 of a daemon holding the VG lock EX right after a commit:
// the other recovers (collect, reload from disk, validate) and its next commit keeps the dead
// process's change.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync,
  writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { callControl } from '../../src/engine/control-protocol.js'
import type { VgStatusReport } from '../../src/engine/status.js'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'
import { scanDevices, varyOnVg, vgCreate } from '../../src/lvm/index.js'
import { startEtcd } from '../helpers/etcd.js'
import { fuseAvailable, repoRoot } from '../helpers/mount-child.js'

const skip = fuseAvailable()
const MiB = 1 << 20
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Shared {
  readonly dir: string
  readonly vg: string
  readonly pvs: string[]
  readonly env: NodeJS.ProcessEnv
  cli(args: string[], extraEnv?: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string }
  ok(args: string[], extraEnv?: NodeJS.ProcessEnv): string
  cliAsync(args: string[]): Promise<number>
  mountpoint(name: string): string
  /** The status of the shared daemon serving `mountpoint` (found by its VG@pid socket). */
  status(mountpoint: string): Promise<VgStatusReport>
}

let counter = 0

/** PV files, a shared VG with LVs a and b (8 MiB each, 4 MiB PPs), a private broker socket and
 * runtime directories; teardown unmounts, kills every daemon and the broker, removes files. */
async function sharedVg(t: Test): Promise<Shared> {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-shared-'))
  const vg = `svg${process.pid}x${counter++}`
  const env: NodeJS.ProcessEnv = { ...process.env, LVMFS_RUN_DIR: join(dir, 'run'), LVMFS_LOG_DIR: join(dir, 'log'),
    LVMFS_LOCKD_SOCKET: join(dir, 'lockd.sock'), LVMFS_LOCK_DIR: join(dir, 'locks') }
  const mountpoints: string[] = []
  const children: ChildProcess[] = []
  const broker = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'lockd',
    '--socket', join(dir, 'lockd.sock')], { cwd: repoRoot, env, stdio: 'ignore' })
  t.teardown(async () => {
    // Every process started for this fixture names its directory on its command line (daemons
    // that never got as far as a pid file included).
    for (const child of children) child.kill('SIGKILL')
    for (const pid of processesNaming(dir)) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    for (const mountpoint of mountpoints) {
      if (mountsAt(mountpoint).length > 0) spawnSync('umount', ['-l', mountpoint])
      try { cleanupMountpoint(mountpoint, { force: true }) } catch { /* already gone */ }
    }
    broker.kill('SIGKILL')
    await sleep(200)
    rmSync(dir, { recursive: true, force: true })
  })
  const pvs = [0, 1].map((i) => {
    const file = join(dir, `pv${i}.img`)
    writeFileSync(file, '')
    truncateSync(file, 64 * MiB)
    return file
  })
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = env['LVMFS_LOCK_DIR']
  try {
    await vgCreate({ name: vg, paths: pvs, ppSizeBytes: 4 * MiB, shared: true })
    const { vg: online } = await varyOnVg({ vgName: vg, devices: pvs })
    await online!.lvCreate({ name: 'a', lpCount: 2 })
    await online!.lvCreate({ name: 'b', lpCount: 2 })
    await online!.varyOff()
  } finally {
    if (saved === undefined) delete process.env['LVMFS_LOCK_DIR']
    else process.env['LVMFS_LOCK_DIR'] = saved
  }
  for (let i = 0; i < 200 && !existsSync(join(dir, 'lockd.sock')); i++) await sleep(25)
  const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): ReturnType<Shared['cli']> => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
      { cwd: repoRoot, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 60_000 })
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr }
  }
  return {
    dir, vg, pvs, env,
    cli: run,
    ok(args, extraEnv) {
      const result = run(args, extraEnv)
      if (result.code !== 0) t.fail(`lvmfs ${args.join(' ')} exited ${result.code}: ${result.stderr}`)
      return result.stdout
    },
    cliAsync(args) {
      // Bounded: a lock protocol that stalls fails the test instead of hanging the suite.
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
        { cwd: repoRoot, env, stdio: 'ignore', timeout: 60_000 })
      children.push(child)
      return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? -1)))
    },
    mountpoint(name) {
      const mountpoint = join(dir, name)
      mkdirSync(mountpoint, { recursive: true })
      mountpoints.push(mountpoint)
      return mountpoint
    },
    async status(mountpoint) {
      for (const name of readdirSync(join(dir, 'run')).filter((n) => n.startsWith(`${vg}@`) && n.endsWith('.sock'))) {
        try {
          const status = await callControl(join(dir, 'run', name), 'status') as VgStatusReport
          if (status.mountpoint === mountpoint) return status
        } catch { /* a dead daemon's socket */ }
      }
      throw new Error(`no shared daemon serves ${mountpoint}`)
    },
  }
}

/** Pids of processes whose command line contains `text` (this fixture's unique directory). */
function processesNaming(text: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) pids.push(pid)
    } catch { /* exited meanwhile */ }
  }
  return pids
}

function lvSize(status: VgStatusReport, lv: string): number | undefined {
  return status.lvs.find((candidate) => candidate.name === lv)?.sizeBytes
}

/** Polls (bounded) until `check` holds: the other daemon reloads after the grant, asynchronously. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true
    await sleep(100)
  }
  return false
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

  const replicate = fixture.cli(['replicate', `${fixture.vg}/b`, 'snap', '--type', 'clone', ...devices])
  t.equal(replicate.code, 5, 'replication in a shared VG is refused')
  t.match(replicate.stderr, /LSM_ERR_NO_SUPPORT.*shared/, `with LSM_ERR_NO_SUPPORT naming why: ${replicate.stderr.trim()}`)

  fixture.ok(['umount', mntA])
  fixture.ok(['umount', mntB])
  t.equal(mountsAt(mntA).length + mountsAt(mntB).length, 0, 'both unmounted by mount point')
  const { vgs } = await scanDevices(fixture.pvs)
  const onDisk = vgs.find((vg) => vg.name === fixture.vg)!.result.descriptor!
  t.same(onDisk.lvs.map((lv) => [lv.name, lv.lps.length]), [['a', 4], ['b', 3]], 'on disk: a 16 MiB, b 12 MiB')
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
