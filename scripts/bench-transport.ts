/**
 * bench:transport — the FUSE transports against each other and the raw file, in one run: the
 * same two LVs (linear, and 2-copy with MWC active) in two VGs, one mounted over /dev/fuse and one
 * with --transport uring (FUSE over io_uring, docs/fuse-protocol.md), fio libaio direct: 4 KiB
 * random read and write at qd32, 1 MiB sequential read and write at qd8. Each workload runs on
 * the raw file and the four LV files back to back, so the machine's noise hits them alike.
 *
 * Target (issue 16): io_uring >= 1.5x /dev/fuse on 4 KiB random IOPS.
 * fuse.enable_uring is turned on for the run (root) and put back after.
 *
 *   npm run bench:transport -- [--json] [--runtime S] [--size-mb N] [--dir DIR]
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { fillFile, runWorkload, type Workload } from './bench/fio.js'
import { lvmfsRunner, parseRunArgs } from './bench/run-args.js'

const { json, runtimeSeconds, sizeMb, sizeBytes, dir } = parseRunArgs('bench:transport')
const PARAMETER = '/sys/module/fuse/parameters/enable_uring'

const WORKLOADS: readonly Workload[] = [
  { name: 'rand-read-4k-qd32', unit: 'IOPS', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'rand-write-4k-qd32', unit: 'IOPS', rw: 'randwrite', bs: '4k', iodepth: 32 },
  { name: 'seq-read-1M-qd8', unit: 'MB/s', rw: 'read', bs: '1M', iodepth: 8 },
  { name: 'seq-write-1M-qd8', unit: 'MB/s', rw: 'write', bs: '1M', iodepth: 8 },
]
const TRANSPORTS = ['dev', 'uring'] as const
const LVS = [{ name: 'lin', copies: 1 }, { name: 'mir', copies: 2 }] as const

const work = mkdtempSync(join(dir, 'lvmfs-bench-transport-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log'),
  LVMFS_BACKUP_DIR: join(work, 'backup') }
const vgOf = (transport: string): string => `tr${transport}${process.pid}`

const lvmfs = lvmfsRunner(env)

function zeroFile(path: string, mb: number): void {
  execFileSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', `count=${mb}`, 'conv=fsync', 'status=none'])
}

interface Row { workload: string; unit: string; raw: number; lv: string; dev: number; uring: number;
  uringPerDev: number; uringPerRaw: number }
const rows: Row[] = []
let failed = false
const saved = readFileSync(PARAMETER, 'utf8').trim()
try {
  writeFileSync(PARAMETER, 'Y')
  const raw = join(work, 'raw.img')
  zeroFile(raw, sizeMb)
  for (const transport of TRANSPORTS) {
    const vg = vgOf(transport)
    const pvs = [0, 1].map((i) => join(work, `${transport}-pv${i}.img`))
    for (const pv of pvs) zeroFile(pv, 2 * sizeMb + 64)
    const devices = pvs.join(',')
    lvmfs(['pvcreate', ...pvs])
    lvmfs(['vgcreate', vg, ...pvs, '--devices', devices])
    for (const lv of LVS) {
      lvmfs(['lvcreate', vg, lv.name, '--size', `${sizeMb}M`, '--copies', String(lv.copies), '--devices', devices])
    }
    const mnt = join(work, `mnt-${transport}`)
    mkdirSync(mnt)
    lvmfs(['mount', vg, mnt, '--transport', transport, '--devices', devices])
    for (const lv of LVS) fillFile(join(mnt, lv.name), sizeBytes)
  }
  for (const workload of WORKLOADS) {
    const rawValue = runWorkload(raw, sizeBytes, workload, runtimeSeconds)
    for (const lv of LVS) {
      const [dev, uring] = TRANSPORTS.map((transport) =>
        runWorkload(join(work, `mnt-${transport}`, lv.name), sizeBytes, workload, runtimeSeconds))
      const row = { workload: workload.name, unit: workload.unit, raw: Math.round(rawValue), lv: lv.name,
        dev: Math.round(dev!), uring: Math.round(uring!), uringPerDev: Number((uring! / dev!).toFixed(2)),
        uringPerRaw: Number((uring! / rawValue).toFixed(2)) }
      rows.push(row)
      if (!json) {
        process.stderr.write(`${row.workload} ${row.lv}: raw ${row.raw}, /dev/fuse ${row.dev}, io_uring ${row.uring} ` +
          `(${row.uringPerDev}x) ${row.unit}\n`)
      }
    }
  }
} catch (error) {
  failed = true
  process.stderr.write(`bench:transport: ${(error as Error).message}\n`)
} finally {
  for (const transport of TRANSPORTS) {
    try {
      lvmfs(['umount', vgOf(transport), '--force'])
    } catch { /* not mounted */ }
    const mnt = join(work, `mnt-${transport}`)
    if (mountsAt(mnt).length > 0) cleanupMountpoint(mnt, { force: true })
  }
  writeFileSync(PARAMETER, saved)
  rmSync(work, { recursive: true, force: true })
}
if (json) {
  process.stdout.write(JSON.stringify({ rows }, null, 1) + '\n')
} else {
  process.stdout.write('\n| workload | LV | raw file | /dev/fuse | io_uring | io_uring / dev | io_uring / raw |\n' +
    '|---|---|---|---|---|---|---|\n')
  for (const row of rows) {
    process.stdout.write(`| ${row.workload} | ${row.lv} | ${row.raw} ${row.unit} | ${row.dev} | ${row.uring} | ` +
      `**${row.uringPerDev}** | ${row.uringPerRaw} |\n`)
  }
}
process.exitCode = failed ? 1 : 0
