/**
 * Shared-VG end-to-end fixture: PV files, a shared VG with its LVs (created before any daemon),
 * a private broker socket and runtime directories; the CLI and shared daemons run as child
 * processes; teardown unmounts, kills every daemon and the broker, removes files, even when
 * the test failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync,
  writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { callControl } from '../../src/engine/control-protocol.js'
import type { VgStatusReport } from '../../src/engine/status.js'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'
import { varyOnVg, vgCreate } from '../../src/lvm/index.js'
import { repoRoot } from './mount-child.js'

const MiB = 1 << 20
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface SharedVgOptions {
  /** Size of each of the two PV files (default 64 MiB). */
  readonly pvBytes?: number
  /** LVs created before any daemon (default a and b, 2 partitions of 4 MiB each). */
  readonly lvs?: ReadonlyArray<{ readonly name: string, readonly lpCount: number }>
}

export interface Shared {
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

/** PV files, a shared VG with its LVs (4 MiB PPs), a private broker socket and runtime
 * directories; teardown unmounts, kills every daemon and the broker, removes files. */
export async function sharedVg(t: Test, options: SharedVgOptions = {}): Promise<Shared> {
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
    truncateSync(file, options.pvBytes ?? 64 * MiB)
    return file
  })
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = env['LVMFS_LOCK_DIR']
  try {
    await vgCreate({ name: vg, paths: pvs, ppSizeBytes: 4 * MiB, shared: true })
    const { vg: online } = await varyOnVg({ vgName: vg, devices: pvs })
    for (const lv of options.lvs ?? [{ name: 'a', lpCount: 2 }, { name: 'b', lpCount: 2 }]) await online!.lvCreate(lv)
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

/** Polls (bounded) until `check` holds: the other daemon reloads after the grant, asynchronously. */
export async function eventually(check: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true
    await sleep(100)
  }
  return false
}
