/**
 * End-to-end fixtures: PV files, a VG, a mounted daemon started through the real CLI, and a
 * teardown that always unmounts, kills the daemon, detaches loop devices and removes files.
 * Every test gets its own runtime and log directories (LVMFS_RUN_DIR, LVMFS_LOG_DIR) and its
 * own VG name, so tests never see each other's daemons.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { cleanupMountpoint, mountsAt } from '../../src/fuse/mounts.js'
import { repoRoot } from './mount-child.js'

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface VgFixture {
  readonly dir: string
  readonly vg: string
  readonly pvs: string[]
  readonly mountpoint: string
  readonly env: NodeJS.ProcessEnv
  cli(args: string[]): CliResult
  /** Like cli(), but fails the test with the output when the exit code is not 0. */
  ok(args: string[]): string
  daemonPid(): number | undefined
  loops: string[]
}

let counter = 0

export function makeVg(t: Test, options: { pvCount: number; pvBytes: number; loop?: boolean }): VgFixture {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-e2e-'))
  const vg = `vg${process.pid}x${counter++}`
  const env: NodeJS.ProcessEnv = { ...process.env, LVMFS_RUN_DIR: join(dir, 'run'), LVMFS_LOG_DIR: join(dir, 'log'),
    LVMFS_BACKUP_DIR: join(dir, 'backup') }
  // tap puts its process-info loader in NODE_OPTIONS; loaded into every CLI run and daemon it
  // costs about 0.4 s each, and coverage (what it is for) is off.
  if (env['NODE_OPTIONS']?.includes('@tapjs') === true) delete env['NODE_OPTIONS']
  const loops: string[] = []
  const pvs: string[] = []
  for (let i = 0; i < options.pvCount; i++) {
    const file = join(dir, `pv${i}.img`)
    writeFileSync(file, '')
    truncateSync(file, options.pvBytes)
    if (options.loop === true) {
      const device = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim()
      loops.push(device)
      pvs.push(device)
    } else {
      pvs.push(file)
    }
  }
  const mountpoint = join(dir, 'mnt')
  execFileSync('mkdir', ['-p', mountpoint])
  const cli = (args: string[]): CliResult => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
      { cwd: repoRoot, env, encoding: 'utf8', timeout: 120_000 })
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr }
  }
  const fixture: VgFixture = {
    dir, vg, pvs, mountpoint, env, cli, loops,
    ok(args) {
      const result = cli(args)
      if (result.code !== 0) t.fail(`lvmfs ${args.join(' ')} exited ${result.code}: ${result.stderr}`)
      return result.stdout
    },
    daemonPid() {
      try {
        return Number(readFileSync(join(dir, 'run', `${vg}.pid`), 'utf8').trim())
      } catch {
        return undefined
      }
    },
  }
  t.teardown(() => teardown(fixture))
  return fixture
}

function teardown(fixture: VgFixture): void {
  const pid = fixture.daemonPid()
  if (mountsAt(fixture.mountpoint).length > 0) fixture.cli(['umount', fixture.mountpoint, '--force'])
  if (pid !== undefined) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
  for (const dir of [fixture.mountpoint, join(fixture.dir, 'ext4')]) {
    while (mountsAt(dir).length > 0) {
      if (spawnSync('umount', ['-l', dir]).status !== 0) {
        try { cleanupMountpoint(dir, { force: true }) } catch { break }
      }
    }
  }
  for (const loop of fixture.loops) spawnSync('losetup', ['-d', loop])
  rmSync(fixture.dir, { recursive: true, force: true })
}

/** pvcreate and vgcreate on the fixture's PVs (PP size default 4M). */
export function createVg(fixture: VgFixture, options: { ppSize?: string } = {}): void {
  const devices = fixture.pvs.join(',')
  fixture.ok(['pvcreate', ...fixture.pvs])
  fixture.ok(['vgcreate', fixture.vg, ...fixture.pvs, '--pp-size', options.ppSize ?? '4M', '--devices', devices])
}

export function createLvs(fixture: VgFixture, lvs: Array<{ name: string; size: string; copies?: number;
  mwc?: string }>): void {
  const devices = fixture.pvs.join(',')
  for (const lv of lvs) {
    fixture.ok(['lvcreate', fixture.vg, lv.name, '--size', lv.size, '--copies', String(lv.copies ?? 1),
      ...(lv.mwc ? ['--mwc', lv.mwc] : []), '--devices', devices])
  }
}

/** Mounts the fixture's VG in the background. */
export function mountVg(t: Test, fixture: VgFixture): void {
  fixture.ok(['mount', fixture.vg, fixture.mountpoint, '--devices', fixture.pvs.join(',')])
  t.ok(mountsAt(fixture.mountpoint).length === 1, 'mounted')
}

/** Creates PVs, the VG (PP size default 4M) and LVs, and mounts it in the background. */
export function createAndMount(t: Test, fixture: VgFixture, lvs: Array<{ name: string; size: string; copies?: number;
  mwc?: string }>, options: { ppSize?: string } = {}): void {
  createVg(fixture, options)
  createLvs(fixture, lvs)
  mountVg(t, fixture)
}

/** The daemon's log (LVMFS_LOG_DIR of the fixture), or '' when there is none yet. */
export function daemonLog(fixture: VgFixture): string {
  try {
    return readFileSync(join(fixture.dir, 'log', `${fixture.vg}.log`), 'utf8')
  } catch {
    return ''
  }
}
