/**
 * bench:blockdev — the kernel block path of linear LVs (mount --block-devices,
 * docs/block-devices.md) against the raw backing file and the LV's own file in the FUSE mount,
 * in one run: fio libaio direct, 4 KiB random read/write at qd32 and 1 MiB sequential at qd8.
 *
 * Targets (issue 16, set for FUSE passthrough, which the kernel refuses here; see the doc):
 * block device >= 0.9 of raw on 4 KiB random read and write, >= 0.95 on 1 MiB sequential.
 *
 * The raw file and the PV are one file each on the same file system, both written in full by dd
 * first (unmeasured), so neither run allocates blocks and both lie as contiguously as the file
 * system allows: a PV left sparse and filled through the LV is allocated in the order its writes
 * land, and its sequential reads measured 0.65-0.72 of the raw file for that reason alone (the
 * LV file through FUSE read exactly as slowly as the block device).
 *
 *   npm run bench:blockdev -- [--json] [--runtime S] [--size-mb N] [--dir DIR]
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { fillFile, runWorkload, type Workload } from './bench/fio.js'
import { lvmfsRunner, parseRunArgs } from './bench/run-args.js'

const { json, runtimeSeconds, sizeMb, sizeBytes, dir } = parseRunArgs('bench:blockdev')

const WORKLOADS: ReadonlyArray<Workload & { goal: number }> = [
  { name: 'rand-read-4k-qd32', unit: 'IOPS', rw: 'randread', bs: '4k', iodepth: 32, goal: 0.9 },
  { name: 'rand-write-4k-qd32', unit: 'IOPS', rw: 'randwrite', bs: '4k', iodepth: 32, goal: 0.9 },
  { name: 'seq-read-1M-qd8', unit: 'MB/s', rw: 'read', bs: '1M', iodepth: 8, goal: 0.95 },
  { name: 'seq-write-1M-qd8', unit: 'MB/s', rw: 'write', bs: '1M', iodepth: 8, goal: 0.95 },
]

const work = mkdtempSync(join(dir, 'lvmfs-bench-blockdev-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log'),
  LVMFS_DEV_DIR: join(work, 'dev'), LVMFS_BACKUP_DIR: join(work, 'backup') }
const mnt = join(work, 'mnt')
const vg = `bdbench${process.pid}`

const lvmfs = lvmfsRunner(env)

interface Row { workload: string; unit: string; raw: number; fuseFile: number; blockDevice: number;
  ratio: number; fuseRatio: number; goal: number; met: boolean }
const rows: Row[] = []
let failed = false
try {
  const raw = join(work, 'raw.img')
  execFileSync('dd', ['if=/dev/zero', `of=${raw}`, 'bs=1M', `count=${sizeMb}`, 'conv=fsync', 'status=none'])
  const pv = join(work, 'pv0.img')
  execFileSync('dd', ['if=/dev/zero', `of=${pv}`, 'bs=1M', `count=${sizeMb + 64}`, 'conv=fsync', 'status=none'])
  mkdirSync(mnt)
  lvmfs(['pvcreate', pv])
  lvmfs(['vgcreate', vg, pv, '--devices', pv])
  lvmfs(['lvcreate', vg, 'lin', '--size', `${sizeMb}M`, '--devices', pv])
  lvmfs(['mount', vg, mnt, '--block-devices', '--devices', pv])
  const device = readlinkSync(join(work, 'dev', vg, 'lin'))
  const lvFile = join(mnt, 'lin')
  fillFile(lvFile, sizeBytes)
  for (const workload of WORKLOADS) {
    // Back to back per workload, so the machine's noise hits all three alike.
    const rawValue = runWorkload(raw, sizeBytes, workload, runtimeSeconds)
    const fuseValue = runWorkload(lvFile, sizeBytes, workload, runtimeSeconds)
    const deviceValue = runWorkload(device, sizeBytes, workload, runtimeSeconds)
    const ratio = deviceValue / rawValue
    const row = { workload: workload.name, unit: workload.unit, raw: Math.round(rawValue),
      fuseFile: Math.round(fuseValue), blockDevice: Math.round(deviceValue), ratio: Number(ratio.toFixed(2)),
      fuseRatio: Number((fuseValue / rawValue).toFixed(2)), goal: workload.goal, met: ratio >= workload.goal }
    rows.push(row)
    if (!json) {
      process.stderr.write(`${row.workload}: raw ${row.raw}, LV file ${row.fuseFile} (${row.fuseRatio}), ` +
        `block device ${row.blockDevice} (${row.ratio}) ${row.unit}\n`)
    }
  }
} catch (error) {
  failed = true
  process.stderr.write(`bench:blockdev: ${(error as Error).message}\n`)
} finally {
  try {
    lvmfs(['umount', vg, '--force'])
  } catch { /* not mounted */ }
  if (mountsAt(mnt).length > 0) cleanupMountpoint(mnt, { force: true })
  rmSync(work, { recursive: true, force: true })
}
if (json) {
  process.stdout.write(JSON.stringify({ rows }, null, 1) + '\n')
} else {
  process.stdout.write('\n| workload | raw file | LV file (FUSE) | ratio | block device | ratio | goal |\n' +
    '|---|---|---|---|---|---|---|\n')
  for (const row of rows) {
    process.stdout.write(`| ${row.workload} | ${row.raw} ${row.unit} | ${row.fuseFile} | ${row.fuseRatio} | ` +
      `${row.blockDevice} | **${row.ratio}** | ≥ ${row.goal} ${row.met ? 'met' : 'not met'} |\n`)
  }
}
process.exitCode = failed ? 1 : 0
