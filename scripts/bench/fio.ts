/** fio and dd runners shared by the benchmark scripts: one workload in, one figure out. */
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'

export interface Workload {
  readonly name: string
  readonly unit: 'MB/s' | 'IOPS'
  readonly rw?: 'write' | 'read' | 'randread' | 'randwrite'
  readonly bs?: string
  readonly iodepth?: number
  /** A buffered `dd bs=1M conv=fsync` write instead of fio. */
  readonly dd?: boolean
}

export const STANDARD_WORKLOADS: readonly Workload[] = [
  { name: 'seq-write-1M-qd8', unit: 'MB/s', rw: 'write', bs: '1M', iodepth: 8 },
  { name: 'seq-read-1M-qd8', unit: 'MB/s', rw: 'read', bs: '1M', iodepth: 8 },
  { name: 'rand-read-4k-qd32', unit: 'IOPS', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'rand-write-4k-qd32', unit: 'IOPS', rw: 'randwrite', bs: '4k', iodepth: 32 },
  { name: 'dd-1M-fsync', unit: 'MB/s', dd: true },
]

export function dropCaches(): void {
  try {
    execFileSync('sync')
    writeFileSync('/proc/sys/vm/drop_caches', '3')
  } catch { /* not root: compare warm caches */ }
}

interface FioJob { read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number } }

export function runWorkload(file: string, sizeBytes: number, workload: Workload, runtimeSeconds: number): number {
  dropCaches()
  if (workload.dd) {
    const count = Math.floor(sizeBytes / (1 << 20))
    const started = process.hrtime.bigint()
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${count}`, 'conv=fsync,notrunc',
      'status=none'])
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    return (count * (1 << 20)) / seconds / 1e6
  }
  return fioFigure([`--filename=${file}`, '--ioengine=libaio', '--direct=1'], file, sizeBytes, workload, runtimeSeconds)
}

/** The same workload through fio's own NBD engine (libnbd), straight at an export. */
export function runNbdWorkload(uri: string, sizeBytes: number, workload: Workload, runtimeSeconds: number): number {
  dropCaches()
  return fioFigure(['--ioengine=nbd', `--uri=${uri}`], uri, sizeBytes, workload, runtimeSeconds)
}

function fioFigure(target: readonly string[], what: string, sizeBytes: number, workload: Workload,
  runtimeSeconds: number): number {
  const result = spawnSync('fio', ['--name=bench', ...target, `--size=${sizeBytes}`,
    `--rw=${workload.rw}`, `--bs=${workload.bs}`,
    `--iodepth=${workload.iodepth}`, '--time_based', `--runtime=${runtimeSeconds}`, '--ramp_time=2',
    '--group_reporting', '--output-format=json'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (result.status !== 0) throw new Error(`fio failed on ${what}: ${result.stderr}`)
  // Some engines print a line before the JSON (nbd: "fio: connected to NBD server").
  const job = (JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: FioJob[] }).jobs[0]!
  const side = workload.rw === 'write' || workload.rw === 'randwrite' ? job.write : job.read
  return workload.unit === 'IOPS' ? side.iops : side.bw_bytes / 1e6
}

/**
 * Writes `sizeBytes` of `file` once (1 MiB, direct, qd8), unmeasured: the blocks behind a new LV
 * on sparse PV files get allocated here rather than during a measured workload, like the raw file
 * the baselines run on (written in full by dd first).
 */
export function fillFile(file: string, sizeBytes: number): void {
  const result = spawnSync('fio', ['--name=fill', `--filename=${file}`, `--size=${sizeBytes}`, '--ioengine=libaio',
    '--direct=1', '--rw=write', '--bs=1M', '--iodepth=8', '--output-format=terse'], { encoding: 'utf8',
    maxBuffer: 64 << 20 })
  if (result.status !== 0) throw new Error(`fio fill failed on ${file}: ${result.stderr}`)
}
