/**
 * bench:e2e — the mounted volume group against its baselines, in one run:
 *  - fio (1 MiB sequential, 4 KiB random qd32, direct) and a buffered dd on a linear LV and a
 *    2-copy LV in the mount, against the raw backing file and the passthrough example;
 *  - resync throughput of a 1 GiB 2-copy LV while fio writes to it;
 *  - daemon RSS serving a 64 GiB VG.
 * Targets (issue 5): linear >= 90% of passthrough; 2-copy write >= 85% of the physical limit
 * (half of raw write, both PVs on one disk); 4 KiB random within 15% of passthrough; RSS < 150 MiB.
 * Usage: npm run bench:e2e -- [--json] [--runtime 15] [--size-mb 2048]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runWorkload, STANDARD_WORKLOADS } from './bench/fio.js'
import { repoRoot, startLvmfsPassthrough } from './bench/servers.js'

const { values } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  runtime: { type: 'string', default: '15' },
  'size-mb': { type: 'string', default: '2048' },
  dir: { type: 'string', default: '/var/tmp' },
} })
const runtimeSeconds = Number(values.runtime)
const sizeBytes = Number(values['size-mb']) * 2 ** 20
const work = mkdtempSync(join(values.dir, 'lvmfs-bench-e2e-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log') }

function lvmfs(args: string[]): string {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
    { cwd: repoRoot, env, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`lvmfs ${args.join(' ')}: ${result.stderr}`)
  return result.stdout
}

function sparse(path: string, bytes: number): string {
  writeFileSync(path, '')
  truncateSync(path, bytes)
  return path
}

interface Result { target: string; test: string; value: number; unit: string; ratio?: number; against?: string }
const results: Result[] = []
function record(target: string, test: string, value: number, unit: string, ratio?: number, against?: string): void {
  results.push({ target, test, value: Math.round(value), unit, ...(ratio === undefined ? {} : { ratio, against }) })
  if (!values.json) process.stderr.write(`${target} ${test}: ${value.toFixed(0)} ${unit}\n`)
}

function runAll(target: string, file: string): Map<string, number> {
  const row = new Map<string, number>()
  for (const workload of STANDARD_WORKLOADS) {
    const value = runWorkload(file, sizeBytes, workload, runtimeSeconds)
    row.set(workload.name, value)
    record(target, workload.name, value, workload.unit)
  }
  return row
}

function daemonRss(vg: string): number {
  const pid = Number(readFileSync(join(work, 'run', `${vg}.pid`), 'utf8').trim())
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024
}

const mnt = join(work, 'mnt')
try {
  // Baselines: the raw file (O_DIRECT, as the daemon accesses its PVs) and the passthrough example.
  const raw = join(work, 'raw.img')
  execFileSync('dd', ['if=/dev/zero', `of=${raw}`, 'bs=1M', `count=${sizeBytes / 2 ** 20}`, 'conv=fsync', 'status=none'])
  const rawRow = runAll('raw', raw)
  const passthrough = await startLvmfsPassthrough(raw, join(work, 'mnt-passthrough'))
  let passRow: Map<string, number>
  try { passRow = runAll('passthrough', passthrough.file) } finally { await passthrough.stop() }

  // The VG: two PVs on the same disk, a linear LV and a 2-copy LV (MWC active) of the same size.
  const pvBytes = sizeBytes * 2 + (256 << 20)
  const pvs = [sparse(join(work, 'pv0.img'), pvBytes), sparse(join(work, 'pv1.img'), pvBytes)]
  const devices = pvs.join(',')
  lvmfs(['pvcreate', ...pvs])
  lvmfs(['vgcreate', 'bench', ...pvs, '--devices', devices])
  lvmfs(['lvcreate', 'bench', 'lin', '--size', `${sizeBytes / 2 ** 20}M`, '--devices', devices])
  lvmfs(['lvcreate', 'bench', 'mir', '--size', `${sizeBytes / 2 ** 20}M`, '--copies', '2', '--mwc', 'active',
    '--devices', devices])
  mkdirSync(mnt)
  lvmfs(['mount', 'bench', mnt, '--devices', devices])
  try {
    const linRow = runAll('linear-lv', join(mnt, 'lin'))
    const mirRow = runAll('2-copy-lv', join(mnt, 'mir'))
    for (const workload of STANDARD_WORKLOADS) {
      const name = workload.name
      record('linear-lv', name, linRow.get(name)!, workload.unit, linRow.get(name)! / passRow.get(name)!, 'passthrough')
      const isWrite = name.includes('write') || name.startsWith('dd')
      const limit = isWrite ? rawRow.get(name)! / 2 : passRow.get(name)!
      record('2-copy-lv', name, mirRow.get(name)!, workload.unit, mirRow.get(name)! / limit,
        isWrite ? 'physical limit (raw/2)' : 'passthrough')
    }
    // Resync of 1 GiB of stale copies while fio writes to the LV.
    const resyncBytes = Math.min(sizeBytes, 1 << 30)
    lvmfs(['fault', 'bench', pvs[1]!, '--disappear'])
    execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'mir')}`, 'bs=1M', `count=${resyncBytes / 2 ** 20}`,
      'oflag=direct', 'conv=notrunc', 'status=none'])
    lvmfs(['fault', 'bench', pvs[1]!, '--clear'])
    lvmfs(['varyonvg', 'bench', '--no-resync', '--devices', devices])
    const fio = spawn('fio', ['--name=load', `--filename=${join(mnt, 'mir')}`, '--rw=randwrite', '--bs=4k',
      '--iodepth=8', '--ioengine=libaio', '--direct=1', `--size=${resyncBytes}`, '--time_based', '--runtime=600'],
    { stdio: 'ignore' })
    const started = process.hrtime.bigint()
    lvmfs(['syncvg', 'bench', '--devices', devices])
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    fio.kill('SIGTERM')
    const copy = join(work, 'dd-copy.img')
    const ddStarted = process.hrtime.bigint()
    execFileSync('dd', [`if=${raw}`, `of=${copy}`, 'bs=1M', `count=${resyncBytes / 2 ** 20}`, 'iflag=direct',
      'oflag=direct', 'status=none'])
    const ddSeconds = Number(process.hrtime.bigint() - ddStarted) / 1e9
    record('resync-under-fio', 'resync-1G', resyncBytes / seconds / 1e6, 'MB/s',
      (resyncBytes / seconds) / (resyncBytes / ddSeconds), 'dd copy of the same bytes')
    record('daemon', 'rss-after-io', daemonRss('bench') / 2 ** 20, 'MiB')
  } finally {
    lvmfs(['umount', mnt, '--force'])
  }
  // RSS serving a 64 GiB VG (sparse PVs; one 64 GiB LV), after touching every LP.
  const big = [sparse(join(work, 'big0.img'), 33 * 2 ** 30), sparse(join(work, 'big1.img'), 33 * 2 ** 30)]
  lvmfs(['pvcreate', ...big])
  lvmfs(['vgcreate', 'big', ...big, '--devices', big.join(',')])
  lvmfs(['lvcreate', 'big', 'huge', '--size', '64G', '--strict', 'n', '--devices', big.join(',')])
  lvmfs(['mount', 'big', mnt, '--devices', big.join(',')])
  try {
    for (let gib = 0; gib < 64; gib++) {
      execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'huge')}`, 'bs=1M', 'count=1', `seek=${gib * 1024}`,
        'oflag=direct', 'conv=notrunc', 'status=none'])
    }
    record('daemon', 'rss-64GiB-vg', daemonRss('big') / 2 ** 20, 'MiB', daemonRss('big') / (150 * 2 ** 20),
      'target 150 MiB')
  } finally {
    lvmfs(['umount', mnt, '--force'])
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

if (values.json) for (const result of results) process.stdout.write(JSON.stringify(result) + '\n')
else {
  process.stdout.write('| target | test | value | ratio | against |\n|---|---|---|---|---|\n')
  for (const r of results.filter((r) => r.ratio !== undefined || r.target === 'raw' || r.target === 'passthrough')) {
    process.stdout.write(`| ${r.target} | ${r.test} | ${r.value} ${r.unit} | ${r.ratio?.toFixed(2) ?? '-'} | ${r.against ?? '-'} |\n`)
  }
}
