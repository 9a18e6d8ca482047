/**
 * Async mirror lag through the FUSE mount: a real daemon serves a VG on sparse files, fio writes
 * random 4 KiB blocks (direct, qd16) into the LV for `loadSeconds` once without and once with an
 * async mirror (the baseline and the load), and during the second run the daemon's status
 * (control socket, no CLI start-up in the loop) is polled every 50 ms for the lag in commits and
 * seconds; after fio exits, the time until the lag is 0 again.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { callControl } from '../../src/engine/control-protocol.js'
import { repoRoot } from './servers.js'

export interface MountedLag {
  /** fio on the same LV before the mirror existed: the baseline of fioIops. */
  readonly baselineIops: number
  readonly fioIops: number
  readonly maxCommits: number
  readonly maxSeconds: number
  readonly catchUpMs: number
}

interface LagRow { lv: string, lag?: { commits: number, seconds: number } }

export async function asyncLagMounted(work: string, intervalMs: number, loadSeconds: number): Promise<MountedLag> {
  const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log') }
  const lvmfs = (args: string[]): string => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
      { cwd: repoRoot, env, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`lvmfs ${args.join(' ')}: ${result.stderr}`)
    return result.stdout
  }
  const vg = `blag${process.pid}`
  const pvs = [0, 1].map((index) => {
    const path = join(work, `lag-pv${index}.img`)
    writeFileSync(path, '')
    truncateSync(path, 1024 * 1024 * 1024)
    return path
  })
  const devices = pvs.join(',')
  const mountpoint = join(work, 'lag-mnt')
  mkdirSync(mountpoint, { recursive: true })
  lvmfs(['pvcreate', ...pvs])
  lvmfs(['vgcreate', vg, ...pvs, '--pp-size', '4M', '--devices', devices])
  lvmfs(['lvcreate', vg, 's', '--size', '256M', '--devices', devices])
  lvmfs(['mount', vg, mountpoint, '--devices', devices])
  const fioArgs = ['--name=lag', `--filename=${join(mountpoint, 's')}`, '--rw=randwrite', '--bs=4k', '--direct=1',
    '--ioengine=libaio', '--iodepth=16', '--size=256M', `--runtime=${loadSeconds}`, '--time_based',
    '--output-format=json']
  const iopsOf = (output: string): number =>
    Math.round((JSON.parse(output) as { jobs: Array<{ write: { iops: number } }> }).jobs[0]!.write.iops)
  try {
    const baseline = spawnSync('fio', fioArgs, { encoding: 'utf8' })
    if (baseline.status !== 0) throw new Error(`fio: ${baseline.stderr}`)
    const baselineIops = iopsOf(baseline.stdout)
    lvmfs(['replicate', `${vg}/s`, 'm', '--type', 'mirror-async', '--interval', String(intervalMs / 1000), '--wait',
      '--devices', devices])
    const lag = async (): Promise<{ commits: number, seconds: number }> => {
      const status = await callControl(join(work, 'run', `${vg}.sock`), 'status') as { replicas?: LagRow[] }
      return status.replicas?.find((row) => row.lv === 'm')?.lag ?? { commits: -1, seconds: -1 }
    }
    const fio = spawn('fio', fioArgs, { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    fio.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    let stopped = 0
    fio.once('exit', () => { stopped = Date.now() })
    const closed = new Promise<void>((resolve) => fio.once('close', () => resolve()))
    let maxCommits = 0
    let maxSeconds = 0
    while (stopped === 0) {
      const now = await lag()
      maxCommits = Math.max(maxCommits, now.commits)
      maxSeconds = Math.max(maxSeconds, now.seconds)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    let catchUpMs = -1
    while (Date.now() - stopped < 20 * intervalMs) {
      if ((await lag()).commits === 0) {
        catchUpMs = Date.now() - stopped
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await closed
    return { baselineIops, fioIops: iopsOf(output), maxCommits, maxSeconds, catchUpMs }
  } finally {
    lvmfs(['umount', mountpoint, '--force'])
  }
}
