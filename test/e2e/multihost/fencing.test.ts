// Fencing across hosts: daemon A serves LV a of a shared VG from another network namespace, its
// locks in etcd on this host; a writer keeps writing a through A. The namespace is cut off from
// etcd. A must stop writing (self-fence) before its lease can expire, so when daemon B, here,
// is first allowed to serve a, no write through A is acknowledged any more: A's writer sees EIO,
// its last acknowledgement comes before B serves a (and within the TTL of the cut), and what B
// writes reads back untouched.
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { callControl } from '../../../src/engine/control-protocol.js'
import type { VgStatusReport } from '../../../src/engine/status.js'
import { cleanupMountpoint, mountsAt } from '../../../src/fuse/mounts.js'
import { varyOnVg, vgCreate } from '../../../src/lvm/index.js'
import { ETCD_BINARY, startEtcd } from '../../helpers/etcd.js'
import { fuseAvailable, repoRoot } from '../../helpers/mount-child.js'
import { makeRemoteHost, remoteHostUnavailable } from '../../helpers/remote-host.js'

const MiB = 1 << 20
const execFileAsync = promisify(execFile)
const TTL_SECONDS = 3
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const unavailable = fuseAvailable() || remoteHostUnavailable() ||
  (spawnSync(ETCD_BINARY, ['--version']).status !== 0 ? 'etcd is not installed' : false) ||
  (spawnSync('nsenter', ['--version']).status !== 0 ? 'nsenter is not installed' : false)

function processesNaming(text: string): number[] {
  return readdirSync('/proc').map(Number).filter((pid) => Number.isInteger(pid) && pid !== process.pid)
    .filter((pid) => {
      try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text) } catch { return false }
    })
}

t.test('a daemon cut off from etcd stops writing before another host may serve its LV', { skip: unavailable,
  timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-fence-'))
  const host = makeRemoteHost(t)
  const etcd = await startEtcd(t, { alsoListenOn: host.hostAddress })
  if (etcd === null) throw new Error('etcd did not start')
  const port = new URL(etcd).port
  const env: NodeJS.ProcessEnv = { ...process.env, LVMFS_RUN_DIR: join(dir, 'run'), LVMFS_LOG_DIR: join(dir, 'log'),
    LVMFS_LOCK_DIR: join(dir, 'locks') }
  if (env['NODE_OPTIONS']?.includes('@tapjs') === true) delete env['NODE_OPTIONS']
  const mntA = join(dir, 'mnt-a')
  const mntB = join(dir, 'mnt-b')
  t.teardown(async () => {
    for (const pid of processesNaming(dir)) {
      try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
    }
    for (const mountpoint of [mntA, mntB]) {
      if (mountsAt(mountpoint).length > 0) spawnSync('umount', ['-l', mountpoint])
      try { cleanupMountpoint(mountpoint, { force: true }) } catch { /* gone */ }
    }
    await sleep(200)
    rmSync(dir, { recursive: true, force: true })
  })
  const pvs = [0, 1].map((i) => join(dir, `pv${i}.img`))
  for (const pv of pvs) {
    writeFileSync(pv, '')
    truncateSync(pv, 64 * MiB)
  }
  for (const sub of [mntA, mntB]) mkdirSync(sub, { recursive: true })
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = env['LVMFS_LOCK_DIR']
  const vg = `fvg${process.pid}`
  try {
    await vgCreate({ name: vg, paths: pvs, ppSizeBytes: 4 * MiB, shared: true })
    const { vg: online } = await varyOnVg({ vgName: vg, devices: pvs })
    await online!.lvCreate({ name: 'a', lpCount: 2 })
    await online!.varyOff()
  } finally {
    if (saved === undefined) delete process.env['LVMFS_LOCK_DIR']
    else process.env['LVMFS_LOCK_DIR'] = saved
  }
  const mountArgs = (mountpoint: string, etcdUrl: string): string[] => [join(repoRoot, 'src/cli/main.ts'), 'mount', vg,
    mountpoint, '--lvs', 'a', '--lock-backend', 'etcd', '--etcd', etcdUrl, '--lock-ttl', String(TTL_SECONDS),
    '--devices', pvs.join(',')]
  // nsenter --net: A's network is the namespace's, its mounts this host's (the test reads them).
  const mountedA = spawnSync('nsenter', [`--net=/run/netns/${host.namespace}`, process.execPath, '--import', 'tsx',
    ...mountArgs(mntA, `http://${host.hostAddress}:${port}`)], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 })
  t.equal(mountedA.status, 0, `A mounted from the namespace: ${mountedA.stderr}`)

  // The writer: 4 KiB records through A, each acknowledged one timed on this host's clock.
  const handle = await open(join(mntA, 'a'), 'r+')
  let lastAckMs = 0
  let lastAckWallMs = 0
  let acknowledged = 0
  let stopped: NodeJS.ErrnoException | undefined
  const record = Buffer.alloc(4096, 0xa5)
  const writer = (async () => {
    for (let i = 0; stopped === undefined; i++) {
      try {
        await handle.write(record, 0, record.length, (i % 2048) * 4096)
        lastAckMs = performance.now()
        lastAckWallMs = Date.now()
        acknowledged++
      } catch (error) {
        stopped = error as NodeJS.ErrnoException
      }
      if (i % 64 === 0) await sleep(1)
    }
  })()
  await sleep(1000)
  t.ok(acknowledged > 0 && stopped === undefined, `A acknowledged ${acknowledged} writes before the partition`)
  // Everything from here runs asynchronously: the writer's acknowledgements are timed as they
  // come (a spawnSync would hold them back and make them look late).
  await execFileAsync('ip', ['-n', host.namespace, 'link', 'set', host.peerDevice, 'down'])
  const cutMs = performance.now()

  // B, on this host, mounts a: its lock request waits until etcd drops A's lease.
  const mountedB = await execFileAsync(process.execPath, ['--import', 'tsx', ...mountArgs(mntB, etcd)],
    { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 }).then(() => undefined, (error: Error) => error)
  t.equal(mountedB, undefined, 'B mounted a once A\'s lease was gone')
  const bServesMs = performance.now()
  await writer
  await handle.close().catch(() => undefined)
  t.equal(stopped?.code, 'EIO', 'A\'s writer was stopped with EIO (A fenced itself)')
  t.ok(lastAckMs < bServesMs, 'no write through A was acknowledged once B served a: never two writers ' +
    `(A's last acknowledgement ${Math.round(lastAckMs - cutMs)} ms after the cut, B serving at ` +
    `${Math.round(bServesMs - cutMs)} ms; lease TTL ${TTL_SECONDS * 1000} ms)`)
  t.ok(lastAckMs - cutMs < TTL_SECONDS * 1000, 'A stopped writing within the lease TTL of losing etcd')
  // Both daemons log to the VG's log file; B's "locks taken" comes after its LV lock was granted.
  const taken = readFileSync(join(dir, 'log', `${vg}.log`), 'utf8').split('\n').filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { time: number, msg?: string })
    .filter((entry) => entry.msg === 'shared VG locks taken').map((entry) => entry.time)
  t.equal(taken.length, 2, 'A and B each logged taking their locks')
  t.ok(lastAckWallMs < taken[1]!, `A's last acknowledged write came before B logged its lock ` +
    `(${taken[1]! - lastAckWallMs} ms before)`)

  const runDir = join(dir, 'run')
  const sockets = readdirSync(runDir).filter((name) => name.startsWith(`${vg}@`) && name.endsWith('.sock'))
  const reports = await Promise.all(sockets.map((name) => callControl(join(runDir, name), 'status')
    .then((status) => status as VgStatusReport).catch(() => undefined)))
  const statusA = reports.find((report) => report?.mountpoint === mntA)
  t.equal(statusA?.shared?.fenced, true, 'A reports itself fenced')

  const data = randomBytes(8 * MiB)
  writeFileSync(join(dir, 'data.bin'), data)
  t.equal(spawnSync('dd', [`if=${join(dir, 'data.bin')}`, `of=${join(mntB, 'a')}`, 'bs=1M', 'oflag=direct',
    'conv=notrunc,fsync', 'status=none']).status, 0, 'B wrote a')
  await sleep(500)
  t.ok(readFileSync(join(mntB, 'a')).equals(data), 'a holds exactly what B wrote: nothing from A landed after')
})
