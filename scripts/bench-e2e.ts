/**
 * bench:e2e — the mounted volume group against its baselines, in one run:
 *  - fio (1 MiB sequential, 4 KiB random qd32, direct) and a buffered dd on a linear LV and a
 *    2-copy LV with MWC active in the mount, against the raw backing file and the passthrough example;
 *  - mirrored writes against the physical limit: fio 1 MiB sequential and 4 KiB random writes on a
 *    2-copy LV with MWC off and on the MWC-active one, as ratios of raw/2 (both PVs are sparse files on
 *    the same disk, so each byte is written twice to it) and of the linear LV (the FUSE userspace
 *    ceiling), see scripts/bench/mirror-limit.ts;
 *  - resync of 1 GiB of a 2-copy LV while fio writes to it: fio's IOPS against fio alone and the
 *    resync rate against its minimum, with the rate controller and without (scripts/bench/resync-load.ts);
 *  - daemon RSS serving a 64 GiB VG.
 * Targets: linear >= 90% of passthrough; 2-copy MWC off >= 0.9 of raw/2 on 1 MiB sequential writes and
 * >= 0.8 on 4 KiB random writes; 2-copy MWC active >= 0.85 of raw/2 on sequential writes (issue 5);
 * 4 KiB random within 15% of passthrough; RSS < 150 MiB.
 * Every LV is written once (unmeasured) before its workloads, as the raw file is.
 * Usage: npm run bench:e2e -- [--json] [--runtime 15] [--size-mb 2048] [--only mirror|resync|outage] [--dir /var/tmp]
 *   --only mirror: only the mirrored-write rows (raw, linear and both 2-copy LVs, two workloads each,
 *   measured back to back per workload); no passthrough, resync or RSS.
 *   --only resync: only the resync-under-load rows.
 *   --only outage: only the PV outage rows (bytes resynced after a 10 s outage against bytes written).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { fillFile, runWorkload, STANDARD_WORKLOADS, type Workload } from './bench/fio.js'
import { MIRROR_WORKLOADS, mirrorCreateArgs, mirrorLvName, mirrorRows, mirrorTarget, MWC_MODES, type MirrorFigures,
  type MirrorRow, type Mwc } from './bench/mirror-limit.js'
import { outageRows, renderOutage } from './bench/outage.js'
import { renderResyncLoad, resyncUnderLoad } from './bench/resync-load.js'
import { repoRoot, startLvmfsPassthrough } from './bench/servers.js'
import { DEFAULT_MIN_RATE_BYTES_PER_SECOND } from '../src/mirror/resync-rate.js'

const { values } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  runtime: { type: 'string', default: '15' },
  'size-mb': { type: 'string', default: '2048' },
  dir: { type: 'string', default: '/var/tmp' },
  only: { type: 'string' },
} })
function usage(message: string): never {
  process.stderr.write(`bench:e2e: ${message}\n` +
    'usage: npm run bench:e2e -- [--json] [--runtime S] [--size-mb N] [--only mirror|resync|outage] [--dir DIR]\n')
  process.exit(2)
}
if (values.only !== undefined && !['mirror', 'resync', 'outage'].includes(values.only)) {
  usage(`--only takes "mirror", "resync" or "outage", not "${values.only}"`)
}
const mirrorOnly = values.only === 'mirror'
const resyncOnly = values.only === 'resync'
const outageOnly = values.only === 'outage'
const runtimeSeconds = Number(values.runtime)
if (!Number.isInteger(runtimeSeconds) || runtimeSeconds < 1) usage('--runtime takes whole seconds >= 1')
const sizeMb = Number(values['size-mb'])
if (!Number.isInteger(sizeMb) || sizeMb < 64) usage('--size-mb takes a whole number >= 64')
const sizeBytes = sizeMb * 2 ** 20

// A signal does not interrupt the synchronous fio and CLI runs: it is noted here and acted on at
// the next checkpoint (after each fio run), so the finally blocks below still unmount and delete.
// A terminal's Ctrl-C also reaches fio itself, which stops early. A second signal kills outright.
let interrupted: NodeJS.Signals | undefined
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { interrupted = signal })
async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  if (interrupted !== undefined) throw new Error(`interrupted by ${interrupted}`)
}

const work = mkdtempSync(join(values.dir, 'lvmfs-bench-e2e-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log') }

function lvmfs(args: string[]): string {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
    { cwd: repoRoot, env, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`lvmfs ${args.join(' ')}: ${result.stderr || `status ${result.status}`}`)
  return result.stdout
}

function sparse(path: string, bytes: number): string {
  writeFileSync(path, '')
  truncateSync(path, bytes)
  return path
}

interface Result {
  target: string; test: string; value: number; unit: string; ratio?: number; against?: string
  goal?: number; met?: boolean; ratioToLinear?: number
}
const results: Result[] = []
const mirrorLines: string[] = []
const resyncLines: string[] = []
const outageLines: string[] = []
function record(target: string, test: string, value: number, unit: string, ratio?: number, against?: string): void {
  results.push({ target, test, value: Math.round(value), unit, ...(ratio === undefined ? {} : { ratio, against }) })
  if (!values.json) process.stderr.write(`${target} ${test}: ${value.toFixed(0)} ${unit}\n`)
}
function recordMirror({ target, test, value, unit, line, ...ratios }: MirrorRow): void {
  results.push({ target, test, value: Math.round(value), unit, ...ratios })
  mirrorLines.push(line)
  if (!values.json) process.stderr.write(`${line}\n`)
}

async function measure(target: string, file: string, workload: Workload): Promise<number> {
  const value = runWorkload(file, sizeBytes, workload, runtimeSeconds)
  await checkpoint()
  record(target, workload.name, value, workload.unit)
  return value
}

async function runAll(target: string, file: string, workloads: readonly Workload[]): Promise<Map<string, number>> {
  const row = new Map<string, number>()
  for (const workload of workloads) row.set(workload.name, await measure(target, file, workload))
  return row
}

function daemonRss(vg: string): number {
  const pid = Number(readFileSync(join(work, 'run', `${vg}.pid`), 'utf8').trim())
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const mnt = join(work, 'mnt')

/**
 * Unmounts what `lvmfs mount VG` left at `mnt`, whatever state it is in: the CLI's forced umount,
 * else the daemon (ours, by its pid file) is ended and the mount detached. Never throws.
 */
async function unmount(vg: string): Promise<void> {
  const pidFile = join(work, 'run', `${vg}.pid`)
  if (!existsSync(pidFile) && mountsAt(mnt).length === 0) return
  try {
    lvmfs(['umount', mnt, '--force'])
    return
  } catch (error) {
    process.stderr.write(`bench:e2e: ${(error as Error).message.trim()}; stopping the daemon by its pid\n`)
  }
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    const alive = (): boolean => existsSync(`/proc/${pid}`)
    if (pid > 0 && alive()) {
      process.kill(pid, 'SIGTERM')
      for (let i = 0; i < 100 && alive(); i++) await sleep(100)
      if (alive()) process.kill(pid, 'SIGKILL')
    }
  } catch { /* no pid file, or already gone */ }
  try {
    if (mountsAt(mnt).length > 0) cleanupMountpoint(mnt, { force: true })
  } catch (error) {
    process.stderr.write(`bench:e2e: cannot detach ${mnt}: ${(error as Error).message}\n`)
  }
}

/** Mounts VG at `mnt`, runs `body`, and unmounts even when the mount or the body fails. */
async function withMount<T>(vg: string, devices: string, body: () => Promise<T>): Promise<T> {
  try {
    lvmfs(['mount', vg, mnt, '--devices', devices])
    return await body()
  } finally {
    await unmount(vg)
  }
}

let failed = false
try {
  // The raw file: the baseline, written in full first (O_DIRECT, as the daemon accesses its PVs).
  const raw = join(work, 'raw.img')
  execFileSync('dd', ['if=/dev/zero', `of=${raw}`, 'bs=1M', `count=${sizeMb}`, 'conv=fsync', 'status=none'])
  let rawRow = new Map<string, number>()
  let passRow = new Map<string, number>()
  if (!mirrorOnly && !resyncOnly && !outageOnly) {
    rawRow = await runAll('raw', raw, STANDARD_WORKLOADS)
    const passthrough = await startLvmfsPassthrough(raw, join(work, 'mnt-passthrough'))
    try { passRow = await runAll('passthrough', passthrough.file, STANDARD_WORKLOADS) } finally { await passthrough.stop() }
  }

  // The VG: two PVs on the same disk; a linear LV, a 2-copy LV with MWC off and one with MWC
  // active, all of the same size (each PV holds one copy of both mirrors, and possibly all of the linear LV).
  const pvBytes = sizeBytes * (MWC_MODES.length + 1) + (256 << 20)
  const pvs = [sparse(join(work, 'pv0.img'), pvBytes), sparse(join(work, 'pv1.img'), pvBytes)]
  const devices = pvs.join(',')
  lvmfs(['pvcreate', ...pvs])
  lvmfs(['vgcreate', 'bench', ...pvs, '--devices', devices])
  lvmfs(['lvcreate', 'bench', 'lin', '--size', `${sizeMb}M`, '--devices', devices])
  for (const mwc of MWC_MODES) {
    lvmfs(['lvcreate', 'bench', mirrorLvName(mwc), '--size', `${sizeMb}M`, '--copies', '2', ...mirrorCreateArgs(mwc),
      '--devices', devices])
  }
  mkdirSync(mnt)
  const lvFile = (mwc: Mwc): string => join(mnt, mirrorLvName(mwc))
  const resyncLoad = async (): Promise<void> => {
    // Resync of 1 GiB of stale copies (of the MWC-active LV) while fio writes to the LV.
    const result = await resyncUnderLoad({ lvmfs, env, work, vg: 'bench', file: lvFile('active'), stalePv: pvs[1]!,
      devices, resyncBytes: Math.min(sizeBytes, 1 << 30), runtimeSeconds })
    await checkpoint()
    record('fio-alone', 'rand-write-4k-qd8', result.unloadedIops, 'IOPS')
    for (const row of result.rows) {
      record(`fio-during-resync ${row.label}`, 'rand-write-4k-qd8', row.iopsDuringResync, 'IOPS',
        row.iopsDuringResync / result.unloadedIops, 'fio alone (target 0.7 with the controller)')
      record(`resync-under-fio ${row.label}`, 'resync-1G', row.resyncBytesPerSecondUnderLoad / 2 ** 20, 'MiB/s',
        row.resyncBytesPerSecondUnderLoad / DEFAULT_MIN_RATE_BYTES_PER_SECOND, 'the default min rate (target 1)')
    }
    for (const entry of result.unloaded) {
      record(`resync-no-load ${entry.label}`, 'resync-1G', entry.bytesPerSecond / 2 ** 20, 'MiB/s',
        entry.bytesPerSecond / result.ddBytesPerSecond, 'dd copy of the same bytes')
    }
    resyncLines.push(...renderResyncLoad(result, DEFAULT_MIN_RATE_BYTES_PER_SECOND))
  }
  const outage = async (): Promise<void> => {
    const outageSeconds = 10
    const rows = await outageRows({ lvmfs, vg: 'bench', lvName: mirrorLvName('active'), file: lvFile('active'),
      lvBytes: sizeBytes, gonePv: pvs[1]!, ppBytes: 4 * 2 ** 20, devices, outageSeconds })
    for (const row of rows) {
      record(`outage-${row.workload}`, 'resynced-over-written', row.resyncedBytes / 2 ** 20, 'MiB',
        row.resyncedBytes / row.writtenBytes, 'bytes written during the outage (target <= 1.10)')
    }
    outageLines.push(...renderOutage(rows, outageSeconds))
  }
  await withMount('bench', devices, async () => {
    if (outageOnly) {
      fillFile(lvFile('active'), sizeBytes)
      await outage()
      return
    }
    if (resyncOnly) {
      fillFile(lvFile('active'), sizeBytes)
      await resyncLoad()
      return
    }
    for (const file of [join(mnt, 'lin'), ...MWC_MODES.map(lvFile)]) {
      fillFile(file, sizeBytes)
      await checkpoint()
    }
    if (mirrorOnly) {
      // Per workload, back to back: raw, linear, 2-copy MWC off, 2-copy MWC active.
      for (const mirror of MIRROR_WORKLOADS) {
        const { workload } = mirror
        const figures: MirrorFigures = {
          raw: await measure('raw', raw, workload),
          linear: await measure('linear-lv', join(mnt, 'lin'), workload),
          twoCopy: {
            off: await measure(mirrorTarget('off'), lvFile('off'), workload),
            active: await measure(mirrorTarget('active'), lvFile('active'), workload),
            'active-al96': await measure(mirrorTarget('active-al96'), lvFile('active-al96'), workload),
            'off-in-order': await measure(mirrorTarget('off-in-order'), lvFile('off-in-order'), workload),
          },
        }
        for (const row of mirrorRows(mirror, figures)) recordMirror(row)
      }
      return
    }
    const linRow = await runAll('linear-lv', join(mnt, 'lin'), STANDARD_WORKLOADS)
    const activeRow = await runAll(mirrorTarget('active'), lvFile('active'), STANDARD_WORKLOADS)
    const offRow = await runAll(mirrorTarget('off'), lvFile('off'), MIRROR_WORKLOADS.map((m) => m.workload))
    const inOrderRow = await runAll(mirrorTarget('off-in-order'), lvFile('off-in-order'),
      MIRROR_WORKLOADS.map((m) => m.workload))
    const al96Row = await runAll(mirrorTarget('active-al96'), lvFile('active-al96'),
      MIRROR_WORKLOADS.map((m) => m.workload))
    const mirrorNames = new Set(MIRROR_WORKLOADS.map((m) => m.workload.name))
    for (const workload of STANDARD_WORKLOADS) {
      const name = workload.name
      record('linear-lv', name, linRow.get(name)!, workload.unit, linRow.get(name)! / passRow.get(name)!, 'passthrough')
      if (mirrorNames.has(name)) continue // in the mirrored-write rows below
      const isWrite = name.includes('write') || name.startsWith('dd')
      const limit = isWrite ? rawRow.get(name)! / 2 : passRow.get(name)!
      record(mirrorTarget('active'), name, activeRow.get(name)!, workload.unit, activeRow.get(name)! / limit,
        isWrite ? 'physical limit (raw/2)' : 'passthrough')
    }
    for (const mirror of MIRROR_WORKLOADS) {
      const name = mirror.workload.name
      for (const row of mirrorRows(mirror, { raw: rawRow.get(name)!, linear: linRow.get(name)!,
        twoCopy: { off: offRow.get(name)!, active: activeRow.get(name)!, 'active-al96': al96Row.get(name)!,
          'off-in-order': inOrderRow.get(name)! } })) {
        recordMirror(row)
      }
    }

    await resyncLoad()
    await outage()
    record('daemon', 'rss-after-io', daemonRss('bench') / 2 ** 20, 'MiB')
  })
  if (!mirrorOnly && !resyncOnly && !outageOnly) {
    // RSS serving a 64 GiB VG (sparse PVs; one 64 GiB LV), after touching every LP.
    const big = [sparse(join(work, 'big0.img'), 33 * 2 ** 30), sparse(join(work, 'big1.img'), 33 * 2 ** 30)]
    lvmfs(['pvcreate', ...big])
    lvmfs(['vgcreate', 'big', ...big, '--devices', big.join(',')])
    lvmfs(['lvcreate', 'big', 'huge', '--size', '64G', '--strict', 'n', '--devices', big.join(',')])
    await withMount('big', big.join(','), async () => {
      for (let gib = 0; gib < 64; gib++) {
        execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'huge')}`, 'bs=1M', 'count=1', `seek=${gib * 1024}`,
          'oflag=direct', 'conv=notrunc', 'status=none'])
      }
      record('daemon', 'rss-64GiB-vg', daemonRss('big') / 2 ** 20, 'MiB', daemonRss('big') / (150 * 2 ** 20),
        'target 150 MiB')
    })
  }
} catch (error) {
  failed = true
  process.stderr.write(`bench:e2e failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
} finally {
  // Never recurse into a mount that could not be detached: leave the directory and say where.
  const stillMounted = [mnt, join(work, 'mnt-passthrough')].filter((path) => mountsAt(path).length > 0)
  if (stillMounted.length > 0) process.stderr.write(`bench:e2e: still mounted, ${work} kept: ${stillMounted.join(' ')}\n`)
  else rmSync(work, { recursive: true, force: true })
}

if (values.json) for (const result of results) process.stdout.write(JSON.stringify(result) + '\n')
else {
  const tableRows = results.filter((r) => r.against !== 'raw/2' &&
    (r.ratio !== undefined || (!mirrorOnly && (r.target === 'raw' || r.target === 'passthrough'))))
  if (tableRows.length > 0) {
    process.stdout.write('| target | test | value | ratio | against |\n|---|---|---|---|---|\n')
    for (const r of tableRows) {
      process.stdout.write(`| ${r.target} | ${r.test} | ${r.value} ${r.unit} | ${r.ratio?.toFixed(2) ?? '-'} | ${r.against ?? '-'} |\n`)
    }
  }
  if (outageLines.length > 0) {
    process.stdout.write(`\nPV outage and re-add, LV of ${sizeMb} MiB:\n${outageLines.map((line) => `  ${line}\n`).join('')}`)
  }
  if (resyncLines.length > 0) {
    process.stdout.write(`\nResync of ${Math.min(sizeMb, 1024)} MiB under fio (${runtimeSeconds} s each):\n` +
      resyncLines.map((line) => `  ${line}\n`).join(''))
  }
  if (mirrorLines.length > 0) {
    process.stdout.write(`\nMirrored writes against the physical limit (raw/2: both copies on one disk), ` +
      `fio ${runtimeSeconds} s, LVs of ${sizeMb} MiB:\n${mirrorLines.map((line) => `  ${line}\n`).join('')}`)
  }
}
process.exitCode = interrupted !== undefined ? 130 : failed ? 1 : 0
