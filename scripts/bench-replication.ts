/**
 * Replication benchmark, in-process (no FUSE), on PV files in --dir (default the OS temp dir):
 *
 *   origin 1 MiB sequential write with 0, 1 and 4 clones          target (1 clone) >= 70% of 0
 *     (first pass: every chunk is copied on write; second pass: chunks already owned)
 *   copy-on-write step vs one descriptor commit                    the COW/ROW decision input
 *   clone creation for a 1 GiB and a 64 GiB sparse LV             target < 50 ms at any size
 *   copy job of --copy bytes vs `dd bs=1M conv=fdatasync`         target >= 80% of dd
 *   async mirror lag under a random 4 KiB write load, then the time for the lag to return to 0
 *     once the load stops                                          target <= two intervals
 *
 * Every write figure ends with a flush (fdatasync) inside the timed section.
 *
 *   npm run bench:replication [-- --json] [--size 64M] [--copy 256M] [--dir PATH]
 *                             [--only clones|cow|create|copy|async|async-fio]
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseSizeBytes } from '../src/cli/options.js'
import { pvCreate, vgCreate, varyOnVg, type VolumeGroup } from '../src/lvm/index.js'
import { MirrorEngine } from '../src/mirror/index.js'
import { ReplicationEngine } from '../src/replication/index.js'
import { asyncLagMounted } from './bench/async-mounted.js'

const MiB = 1024 * 1024
const { values: options } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  size: { type: 'string' },
  copy: { type: 'string' },
  dir: { type: 'string' },
  only: { type: 'string' },
} })
const json = options.json
const sizeBytes = parseSizeBytes(options.size ?? '64M', '--size')
const copyBytes = parseSizeBytes(options.copy ?? '256M', '--copy')
const root = mkdtempSync(join(options.dir ?? tmpdir(), 'lvmfs-bench-repl-'))
const results: Record<string, number | string> = {}
let vgCounter = 0

function log(line: string): void {
  if (!json) process.stdout.write(line + '\n')
}

interface Env {
  readonly vg: VolumeGroup
  readonly engine: MirrorEngine
  readonly repl: ReplicationEngine
  readonly paths: string[]
  close(): Promise<void>
}

async function makeEnv(pvBytes: number, ppSizeBytes = 4 * MiB, intervalMs?: number): Promise<Env> {
  const name = `bvg${vgCounter++}`
  const path = join(root, `${name}.img`)
  writeFileSync(path, '')
  truncateSync(path, pvBytes)
  await pvCreate(path, {})
  await vgCreate({ name, paths: [path], ppSizeBytes })
  const result = await varyOnVg({ vgName: name, devices: [path], flags: {} })
  const vg = result.vg
  if (vg === undefined) throw result.error ?? new Error('vary-on failed')
  const engine = await MirrorEngine.start(vg)
  const repl = new ReplicationEngine([engine], intervalMs === undefined ? {} : { defaultIntervalMs: intervalMs })
  return {
    vg, engine, repl, paths: [path],
    close: async () => {
      await repl.stop()
      await engine.stop()
      await vg.varyOff()
      rmSync(path, { force: true })
    },
  }
}

async function writePass(env: Env, lv: string, bytes: number): Promise<number> {
  const block = Buffer.alloc(MiB, 0x5a)
  const started = process.hrtime.bigint()
  for (let offset = 0; offset < bytes; offset += MiB) await env.repl.write(env.vg.name, lv, block, offset)
  await env.repl.flush(env.vg.name, lv)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return bytes / MiB / seconds
}

async function cloneWrites(): Promise<void> {
  const rates: Record<number, [number, number]> = {}
  for (const clones of [0, 1, 4]) {
    const env = await makeEnv(sizeBytes * (clones + 2) + 256 * MiB)
    await env.vg.lvCreate({ name: 'o', lpCount: env.vg.lpCountForBytes(sizeBytes) })
    await writePass(env, 'o', sizeBytes)
    for (let index = 0; index < clones; index++) await env.repl.replicate({ vg: env.vg.name, lv: 'o', name: `c${index}`, type: 'clone' })
    rates[clones] = [await writePass(env, 'o', sizeBytes), await writePass(env, 'o', sizeBytes)]
    await env.close()
    log(`origin 1 MiB write, ${clones} clone(s): first pass ${rates[clones][0].toFixed(0)} MiB/s, ` +
      `second pass ${rates[clones][1].toFixed(0)} MiB/s`)
  }
  results['origin_write_mib_s_0_clones'] = round(rates[0]![0])
  results['origin_write_mib_s_1_clone_first_pass'] = round(rates[1]![0])
  results['origin_write_mib_s_1_clone_second_pass'] = round(rates[1]![1])
  results['origin_write_mib_s_4_clones_first_pass'] = round(rates[4]![0])
  results['ratio_1_clone_first_pass'] = round(rates[1]![0] / rates[0]![0], 2)
  results['ratio_1_clone_second_pass'] = round(rates[1]![1] / rates[0]![1], 2)
  log(`  1 clone vs none: first pass ${pct(rates[1]![0] / rates[0]![0])}, second pass ${pct(rates[1]![1] / rates[0]![1])} ` +
    '(target >= 70%)')
}

async function cowVersusCommit(): Promise<void> {
  const env = await makeEnv(512 * MiB)
  await env.vg.lvCreate({ name: 'o', lpCount: 32 })
  await env.repl.replicate({ vg: env.vg.name, lv: 'o', name: 'c', type: 'clone' })
  const small = Buffer.alloc(4096, 1)
  let started = process.hrtime.bigint()
  for (let chunk = 0; chunk < 16; chunk++) await env.repl.write(env.vg.name, 'o', small, chunk * env.vg.ppSizeBytes)
  const cowMs = Number(process.hrtime.bigint() - started) / 1e6 / 16
  started = process.hrtime.bigint()
  for (let index = 0; index < 16; index++) await env.vg.lvSetExt('o', { ...env.vg.lvByName('o')!.ext, bench: index })
  const commitMs = Number(process.hrtime.bigint() - started) / 1e6 / 16
  results['cow_first_write_ms'] = round(cowMs, 2)
  results['descriptor_commit_ms'] = round(commitMs, 2)
  log(`copy-on-write of one ${env.vg.ppSizeBytes / MiB} MiB chunk (4 KiB origin write): ${cowMs.toFixed(1)} ms; ` +
    `one descriptor commit: ${commitMs.toFixed(1)} ms`)
  await env.close()
}

async function cloneCreation(): Promise<void> {
  for (const gib of [1, 64]) {
    const env = await makeEnv((gib + 1) * 1024 * MiB, 64 * MiB)
    await env.vg.lvCreate({ name: 'o', lpCount: env.vg.lpCountForBytes(gib * 1024 * MiB) })
    const started = process.hrtime.bigint()
    await env.repl.replicate({ vg: env.vg.name, lv: 'o', name: 'c', type: 'clone' })
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    results[`clone_create_ms_${gib}g`] = round(ms, 1)
    log(`clone creation, ${gib} GiB sparse origin: ${ms.toFixed(1)} ms (target < 50 ms)`)
    await env.close()
  }
}

async function copyVersusDd(): Promise<void> {
  const env = await makeEnv(copyBytes * 2 + 256 * MiB)
  await env.vg.lvCreate({ name: 's', lpCount: env.vg.lpCountForBytes(copyBytes) })
  await writePass(env, 's', copyBytes)
  const started = process.hrtime.bigint()
  const result = await env.repl.replicate({ vg: env.vg.name, lv: 's', name: 'k', type: 'copy' })
  const createdMs = Number(process.hrtime.bigint() - started) / 1e6
  if (result.status === 'LSM_ERR_JOB_STARTED') await env.repl.waitJob(result.jobId)
  const copySeconds = Number(process.hrtime.bigint() - started) / 1e9
  log(`  (target creation ${createdMs.toFixed(0)} ms of ${(copySeconds * 1000).toFixed(0)} ms)`)
  // dd reads the same (page-cache hot) bytes and writes them to a new file, as the copy job
  // writes a never-written region of the PV file.
  const target = join(root, 'dd.out')
  const dd = spawnSync('dd', [`if=${env.paths[0]}`, 'of=/dev/null', 'bs=1M', `count=${copyBytes / MiB}`, 'status=none'])
  const ddStarted = process.hrtime.bigint()
  spawnSync('dd', [`if=${env.paths[0]}`, `of=${target}`, 'bs=1M', `count=${copyBytes / MiB}`, 'conv=fdatasync',
    'status=none'])
  const ddSeconds = Number(process.hrtime.bigint() - ddStarted) / 1e9
  rmSync(target, { force: true })
  const copyRate = copyBytes / MiB / copySeconds
  const ddRate = copyBytes / MiB / ddSeconds
  results['copy_mib_s'] = round(copyRate)
  results['dd_mib_s'] = round(ddRate)
  results['copy_vs_dd'] = round(copyRate / ddRate, 2)
  log(`copy job ${copyBytes / MiB} MiB: ${copyRate.toFixed(0)} MiB/s; dd: ${ddRate.toFixed(0)} MiB/s ` +
    `(${pct(copyRate / ddRate)}, target >= 80%)${dd.status === 0 ? '' : ' (dd warm-up failed)'}`)
  await env.close()
}

async function asyncLag(): Promise<void> {
  const intervalMs = 500
  const env = await makeEnv(512 * MiB, 4 * MiB, intervalMs)
  await env.vg.lvCreate({ name: 's', lpCount: 16 })
  const result = await env.repl.replicate({ vg: env.vg.name, lv: 's', name: 'm', type: 'mirror-async', intervalMs })
  if (result.status === 'LSM_ERR_JOB_STARTED') await env.repl.waitJob(result.jobId)
  const block = Buffer.alloc(4096, 3)
  const size = 16 * env.vg.ppSizeBytes
  let maxCommits = 0
  let maxSeconds = 0
  let writes = 0
  const loadUntil = Date.now() + 3000
  while (Date.now() < loadUntil) {
    await env.repl.write(env.vg.name, 's', block, 4096 * Math.floor(Math.random() * (size / 4096)))
    writes++
    if (writes % 50 === 0) {
      const lag = await env.repl.lag(env.vg.name, 'm')
      maxCommits = Math.max(maxCommits, lag.commits)
      maxSeconds = Math.max(maxSeconds, lag.seconds)
    }
  }
  const stopped = Date.now()
  let caughtUpMs = -1
  while (Date.now() - stopped < 10 * intervalMs) {
    if ((await env.repl.lag(env.vg.name, 'm')).commits === 0) {
      caughtUpMs = Date.now() - stopped
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  results['async_writes'] = writes
  results['async_lag_commits_max'] = maxCommits
  results['async_lag_seconds_max'] = round(maxSeconds, 2)
  results['async_catch_up_ms'] = caughtUpMs
  log(`async mirror, ${intervalMs} ms interval, ${writes} random 4 KiB writes in 3 s: lag max ${maxCommits} commits, ` +
    `${maxSeconds.toFixed(2)} s; back to 0 ${caughtUpMs} ms after the load stopped (target <= ${2 * intervalMs} ms)`)
  await env.close()
}

async function asyncLagUnderFio(): Promise<void> {
  const intervalMs = 500
  const lag = await asyncLagMounted(root, intervalMs, 5)
  results['fio_no_mirror_iops'] = lag.baselineIops
  results['fio_async_iops'] = lag.fioIops
  results['fio_async_vs_no_mirror'] = round(lag.fioIops / lag.baselineIops, 2)
  results['fio_async_lag_commits_max'] = lag.maxCommits
  results['fio_async_lag_seconds_max'] = round(lag.maxSeconds, 2)
  results['fio_async_catch_up_ms'] = lag.catchUpMs
  log(`async mirror through the mount, ${intervalMs} ms interval, fio 4 KiB random writes qd16 for 5 s at ` +
    `${lag.fioIops} IOPS (${pct(lag.fioIops / lag.baselineIops)} of ${lag.baselineIops} without the mirror): lag max ${lag.maxCommits} commits, ${lag.maxSeconds.toFixed(2)} s; back to 0 ` +
    `${lag.catchUpMs} ms after fio stopped (target <= ${2 * intervalMs} ms)`)
}

function round(value: number, digits = 0): number {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`
}

const only = options.only
const parts: Record<string, () => Promise<void>> = { clones: cloneWrites, cow: cowVersusCommit, create: cloneCreation,
  copy: copyVersusDd, async: asyncLag, 'async-fio': asyncLagUnderFio }
try {
  for (const [name, part] of Object.entries(parts)) if (only === undefined || only === name) await part()
  if (json) process.stdout.write(JSON.stringify(results) + '\n')
} finally {
  rmSync(root, { recursive: true, force: true })
}
