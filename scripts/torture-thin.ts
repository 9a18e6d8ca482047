/**
 * Thin crash torture (issue 13): a thin LV and its snapshots written at once by two fsyncing
 * writers (test/helpers/ack-writer.ts), kill -9 of the daemon at a random point, remount; then
 * every acknowledged write of both reads back, neither LV holds a block the other wrote, and
 * thin-check is clean. Each point takes a new snapshot of the origin (the oldest beyond three
 * is removed), so snapshot creation and deletion run between crashes too. Needs root, /dev/fuse.
 *
 *   node --import tsx scripts/torture-thin.ts [--points 1000] [--seed N] [--dir DIR] [--keep]
 *
 * Exit 0 when every point passed, 1 at the first failure (the directory stays), 3 on usage.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { readAt } from '../test/helpers/e2e.js'
import { repoRoot } from '../test/helpers/mount-child.js'
import { readStamp } from '../test/helpers/stamps.js'

const MIB = 1 << 20
const RANGE = 16 * MIB
/** Sequence numbers of point p: origin from (2p+1)·10^7, snapshot from (2p+2)·10^7. */
const SPAN = 10_000_000

let values
try {
  values = parseArgs({ options: { points: { type: 'string' }, seed: { type: 'string' }, dir: { type: 'string' },
    keep: { type: 'boolean' } } }).values
} catch (error) {
  process.stderr.write(`${(error as Error).message}\nusage: torture-thin.ts [--points N] [--seed N] [--dir DIR] [--keep]\n`)
  process.exit(3)
}
const points = Number(values.points ?? 1000)
let seed = Number(values.seed ?? Date.now() % 2 ** 31) | 1
const random = (): number => {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
  return (seed >>> 0) / 2 ** 32
}
const work = mkdtempSync(join(values.dir ?? tmpdir(), 'lvmfs-torture-thin-'))
const env: NodeJS.ProcessEnv = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log'),
  LVMFS_BACKUP_DIR: join(work, 'backup') }
const vg = `tt${process.pid}`
const mountpoint = join(work, 'mnt')
const pvs = [0, 1].map((i) => join(work, `pv${i}.img`))
const devices = pvs.join(',')

function lvmfs(args: string[]): string {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args,
    ...(['umount', 'status', 'pvcreate'].includes(args[0]!) ? [] : ['--devices', devices])], { cwd: repoRoot, env, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`lvmfs ${args.join(' ')}: ${result.stderr}`)
  return result.stdout
}

function journal(path: string): Map<number, number> {
  const acknowledged = new Map<number, number>()
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [offset, sequence] = line.split(' ').map(Number)
    if (line && offset !== undefined && sequence !== undefined) acknowledged.set(offset, sequence)
  }
  return acknowledged
}

async function point(p: number, snapshots: string[]): Promise<void> {
  const snap = `s${p}`
  lvmfs(['lvcreate', vg, snap, '--snapshot', 'thin'])
  snapshots.push(snap)
  if (snapshots.length > 3) lvmfs(['lvremove', vg, snapshots.shift()!])
  const writers = [['thin', (2 * p + 1) * SPAN], [snap, (2 * p + 2) * SPAN]] as const
  const children = writers.map(([lv, first]) => {
    writeFileSync(join(work, `${lv}.journal`), '')
    return spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/ack-writer.ts'), join(mountpoint, lv),
      String(RANGE), join(work, `${lv}.journal`), String(first)], { cwd: repoRoot, stdio: 'ignore' })
  })
  await new Promise((resolve) => setTimeout(resolve, 800 + random() * 2500))
  const pid = Number(readFileSync(join(work, 'run', `${vg}.pid`), 'utf8').trim())
  process.kill(pid, 'SIGKILL')
  await Promise.all(children.map((child) => new Promise((resolve) => {
    if (child.exitCode !== null) resolve(undefined)
    else child.once('exit', resolve)
  })))
  lvmfs(['mount', vg, mountpoint])
  for (const [lv] of writers) {
    const file = join(mountpoint, lv)
    for (const [offset, sequence] of journal(join(work, `${lv}.journal`))) {
      const found = readStamp(readAt(file, offset, 4096), offset)
      if (found === undefined || found < sequence) throw new Error(`point ${p}: ${lv} lost the acknowledged write ${sequence} at ${offset}`)
    }
    // Stamps of this point's other writer must not show here.
    const other = writers.find(([name]) => name !== lv)![1]
    for (let offset = 0; offset < RANGE; offset += 4096) {
      const found = readStamp(readAt(file, offset, 4096), offset)
      if (found !== undefined && found >= other && found < other + SPAN) {
        throw new Error(`point ${p}: ${lv} holds block ${offset} written to the other LV (${found})`)
      }
    }
  }
  const check = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'thin-check', `${vg}/pool`],
    { cwd: repoRoot, env, encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`point ${p}: thin-check: ${check.stdout}${check.stderr}`)
}

let code = 0
try {
  mkdirSync(mountpoint)
  for (const pv of pvs) {
    writeFileSync(pv, '')
    truncateSync(pv, 512 * MIB)
  }
  lvmfs(['pvcreate', ...pvs])
  lvmfs(['vgcreate', vg, ...pvs])
  lvmfs(['lvcreate', vg, 'pool', '--thinpool', '--size', '768M'])
  lvmfs(['lvcreate', vg, 'thin', '--thin', 'pool', '--virtual-size', '1G'])
  lvmfs(['mount', vg, mountpoint])
  const snapshots: string[] = []
  const started = Date.now()
  for (let p = 0; p < points; p++) {
    await point(p, snapshots)
    process.stdout.write(`point ${p + 1}/${points} ok (${((Date.now() - started) / 1000).toFixed(0)} s)\n`)
  }
  process.stdout.write(`all ${points} points passed (seed ${values.seed ?? 'random'})\n`)
} catch (error) {
  process.stderr.write(`${(error as Error).message}\nkept ${work}\n`)
  code = 1
} finally {
  if (mountsAt(mountpoint).length > 0) {
    spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'umount', mountpoint, '--force'], { env })
    cleanupMountpoint(mountpoint, { force: true })
  }
  if (code === 0 && values.keep !== true) rmSync(work, { recursive: true, force: true })
}
process.exit(code)
