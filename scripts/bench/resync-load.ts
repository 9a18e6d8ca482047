/**
 * Resync under application load (bench:e2e): fio 4 KiB random writes (qd8, direct) on a mounted
 * 2-copy LV while `lvmfs syncvg` copies its stale copy (1 GiB by default), all in one run:
 *  - fio alone on the same LV: the unloaded IOPS;
 *  - fio while syncvg runs with the rate controller's defaults (min rate 16 MiB/s): the IOPS
 *    (target >= 0.7 of unloaded) and the resync rate while fio ran (target >= the min rate);
 *  - the same with the controller out of the way (`--min-rate` far above the disks): the old
 *    behaviour, for contrast;
 *  - without load: syncvg with the default fill target (two regions in flight) and with one
 *    region (`--fill-target 4M`), against `dd bs=1M conv=fdatasync` of as many bytes between two
 *    files of the same directory.
 * fio writes an IOPS log (500 ms averages), so the IOPS are those of the seconds the resync
 * actually overlapped; syncvg's --json progress events (doneBytes, timed on arrival) give the
 * resync rate over the same window.
 */
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { dropCaches } from './fio.js'
import { repoRoot } from './servers.js'

const MiB = 1024 * 1024

export interface ResyncLoadSetup {
  /** The CLI, run to completion. */
  readonly lvmfs: (args: string[]) => string
  readonly env: NodeJS.ProcessEnv
  readonly work: string
  readonly vg: string
  /** The LV file in the mount; its first `resyncBytes` are written while `stalePv` is away. */
  readonly file: string
  readonly stalePv: string
  readonly devices: string
  readonly resyncBytes: number
  readonly runtimeSeconds: number
}

export interface ResyncLoadRow {
  readonly label: string
  readonly minRateArgs: readonly string[]
  /** Mean IOPS of fio's 500 ms samples while the resync ran. */
  readonly iopsDuringResync: number
  /** Resync bytes per second (LV bytes done) while fio ran. */
  readonly resyncBytesPerSecondUnderLoad: number
  /** The whole resync, first progress to exit. */
  readonly resyncSeconds: number
  /** Seconds of overlap between fio and the resync the figures above cover. */
  readonly overlapSeconds: number
}

export interface ResyncLoadResult {
  readonly unloadedIops: number
  readonly rows: readonly ResyncLoadRow[]
  /** Without load: resync bytes per second (first progress to exit) by variant, and dd's. */
  readonly unloaded: ReadonlyArray<{ label: string, bytesPerSecond: number }>
  readonly ddBytesPerSecond: number
}

interface Fio {
  readonly startedAt: number
  readonly done: Promise<void>
  /** Ends a time-based run early (fio stops its jobs and writes its logs). */
  stop(): void
  /** Mean IOPS of the samples inside [from, to] (performance.now() times). */
  iopsBetween(from: number, to: number): number
}

function startFio(file: string, sizeBytes: number, seconds: number, logPrefix: string): Fio {
  const startedAt = performance.now()
  const child = spawn('fio', ['--name=load', `--filename=${file}`, `--size=${sizeBytes}`, '--rw=randwrite', '--bs=4k',
    '--iodepth=8', '--ioengine=libaio', '--direct=1', '--time_based', `--runtime=${seconds}`,
    `--write_iops_log=${logPrefix}`, '--log_avg_msec=500', '--output-format=terse'], { stdio: 'ignore' })
  let stopped = false
  const done = new Promise<void>((resolve, reject) => {
    // Stopped early, fio exits non-zero (128) after writing its logs.
    child.once('exit', (code, signal) => code === 0 || stopped ? resolve()
      : reject(new Error(`fio exited with ${code ?? signal}`)))
  })
  return {
    startedAt,
    done,
    stop: () => {
      stopped = true
      if (child.exitCode === null) child.kill('SIGINT')
    },
    iopsBetween(from, to) {
      const lines = readFileSync(`${logPrefix}_iops.1.log`, 'utf8').trim().split('\n')
      const samples = lines.map((line) => line.split(',').map((field) => Number(field.trim())))
        .map(([ms, iops]) => ({ at: startedAt + ms!, iops: iops! }))
        // A sample covers the 500 ms before its time stamp.
        .filter((sample) => sample.at - 500 >= from && sample.at <= to)
      if (samples.length === 0) return Number.NaN
      return samples.reduce((sum, sample) => sum + sample.iops, 0) / samples.length
    },
  }
}

interface Progress { at: number, doneBytes: number }

/** Starts `lvmfs syncvg VG --json`; resolves once it reported its first progress. */
async function startSyncvg(setup: ResyncLoadSetup, extra: readonly string[]):
  Promise<{ events: Progress[], exited: Promise<number>, startedAt: number }> {
  const startedAt = performance.now()
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'syncvg', setup.vg,
    '--json', '--devices', setup.devices, ...extra], { cwd: repoRoot, env: setup.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const events: Progress[] = []
  let buffered = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  let first: (() => void) | undefined
  const started = new Promise<void>((resolve) => { first = resolve })
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      try {
        const event = JSON.parse(line) as { event?: string, doneBytes?: number }
        if (event.event === 'progress' && typeof event.doneBytes === 'number') {
          events.push({ at: performance.now(), doneBytes: event.doneBytes })
          first?.()
        }
      } catch { /* the final report spans lines */ }
    }
  })
  const exited = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => code === 0 ? resolve(performance.now())
      : reject(new Error(`syncvg exited with ${code}: ${stderr}`)))
  })
  await Promise.race([started, exited])
  return { events, exited, startedAt }
}

/** Bytes per second between the first and the last progress event inside [from, to] (events
 * come at region ends, so measuring between two of them has no rounding to a region). */
function rateBetween(events: readonly Progress[], from: number, to: number): number {
  const inside = events.filter((event) => event.at >= from && event.at <= to)
  if (inside.length < 2) return Number.NaN
  const first = inside[0]!
  const last = inside[inside.length - 1]!
  return (last.doneBytes - first.doneBytes) / ((last.at - first.at) / 1000)
}

/** Makes the first `resyncBytes` of the LV's copy on `stalePv` stale (written while it was away). */
function makeStale(setup: ResyncLoadSetup): void {
  setup.lvmfs(['fault', setup.vg, setup.stalePv, '--disappear'])
  execFileSync('dd', ['if=/dev/zero', `of=${setup.file}`, 'bs=1M', `count=${setup.resyncBytes / MiB}`,
    'oflag=direct', 'conv=notrunc', 'status=none'])
  setup.lvmfs(['fault', setup.vg, setup.stalePv, '--clear'])
  setup.lvmfs(['varyonvg', setup.vg, '--no-resync', '--devices', setup.devices])
}

export async function resyncUnderLoad(setup: ResyncLoadSetup): Promise<ResyncLoadResult> {
  const seconds = setup.runtimeSeconds
  dropCaches()
  const alone = startFio(setup.file, setup.resyncBytes, seconds, join(setup.work, 'fio-alone'))
  await alone.done
  const unloadedIops = alone.iopsBetween(alone.startedAt + 1000, performance.now())
  const rows: ResyncLoadRow[] = []
  const variants: Array<{ label: string, args: string[] }> = [
    { label: 'controller (defaults)', args: [] },
    { label: 'uncontrolled (--min-rate 64G)', args: ['--min-rate', '64G'] },
  ]
  for (const variant of variants) {
    makeStale(setup)
    dropCaches()
    const prefix = join(setup.work, `fio-${rows.length}`)
    // fio runs first (the load is there from the resync's first step) and is stopped once the
    // resync has run `seconds` under it, or has finished.
    const fio = startFio(setup.file, setup.resyncBytes, 600, prefix)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const sync = await startSyncvg(setup, variant.args)
    const from = sync.events[0]?.at ?? performance.now()
    let endedAt: number | undefined
    const ended = sync.exited.then((at) => { endedAt = at })
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, seconds * 1000))])
    const to = endedAt ?? performance.now()
    fio.stop()
    await fio.done
    const exitedAt = await sync.exited
    rows.push({ label: variant.label, minRateArgs: variant.args, iopsDuringResync: fio.iopsBetween(from, to),
      resyncBytesPerSecondUnderLoad: rateBetween(sync.events, from, to),
      resyncSeconds: (exitedAt - from) / 1000, overlapSeconds: (to - from) / 1000 })
    rmSync(`${prefix}_iops.1.log`, { force: true })
  }
  rmSync(join(setup.work, 'fio-alone_iops.1.log'), { force: true })
  const unloaded: Array<{ label: string, bytesPerSecond: number }> = []
  const ddFrom = join(setup.work, 'resync-dd-from.img')
  const ddTo = join(setup.work, 'resync-dd-to.img')
  for (const path of [ddFrom, ddTo]) {
    execFileSync('dd', ['if=/dev/urandom', `of=${path}`, 'bs=1M', `count=${setup.resyncBytes / MiB}`, 'conv=fsync',
      'status=none'])
  }
  let ddBytesPerSecond = 0
  for (let run = 0; run < 2; run++) {
    const started = performance.now()
    execFileSync('dd', [`if=${ddFrom}`, `of=${ddTo}`, 'bs=1M', `count=${setup.resyncBytes / MiB}`,
      'conv=fdatasync,notrunc', 'status=none'])
    ddBytesPerSecond = Math.max(ddBytesPerSecond, setup.resyncBytes / ((performance.now() - started) / 1000))
    for (const variant of [{ label: 'fill target 2 regions (default)', args: [] },
      { label: 'fill target 1 region', args: ['--fill-target', '4M'] }]) {
      makeStale(setup)
      const sync = await startSyncvg(setup, variant.args)
      const from = sync.events[0]?.at ?? sync.startedAt
      const exitedAt = await sync.exited
      const bytes = (sync.events.at(-1)?.doneBytes ?? 0) - (sync.events[0]?.doneBytes ?? 0)
      const rate = bytes / ((exitedAt - from) / 1000)
      const known = unloaded.find((entry) => entry.label === variant.label)
      if (known === undefined) unloaded.push({ label: variant.label, bytesPerSecond: rate })
      else known.bytesPerSecond = Math.max(known.bytesPerSecond, rate)
    }
  }
  rmSync(ddFrom, { force: true })
  rmSync(ddTo, { force: true })
  return { unloadedIops, rows, unloaded, ddBytesPerSecond }
}

export function renderResyncLoad(result: ResyncLoadResult, minRateBytes: number): string[] {
  const lines = [`fio 4k randwrite qd8 alone: ${result.unloadedIops.toFixed(0)} IOPS`]
  for (const row of result.rows) {
    lines.push(`${row.label}: fio ${row.iopsDuringResync.toFixed(0)} IOPS ` +
      `(${(row.iopsDuringResync / result.unloadedIops).toFixed(2)} of alone), resync under load ` +
      `${(row.resyncBytesPerSecondUnderLoad / MiB).toFixed(1)} MiB/s ` +
      `(${(row.resyncBytesPerSecondUnderLoad / minRateBytes).toFixed(2)} of the ${minRateBytes / MiB} MiB/s minimum) ` +
      `over ${row.overlapSeconds.toFixed(1)} s; whole resync ${row.resyncSeconds.toFixed(1)} s`)
  }
  for (const entry of result.unloaded) {
    lines.push(`no load, ${entry.label}: resync ${(entry.bytesPerSecond / MiB).toFixed(0)} MiB/s ` +
      `(${(entry.bytesPerSecond / result.ddBytesPerSecond).toFixed(2)} of dd, ` +
      `${(result.ddBytesPerSecond / MiB).toFixed(0)} MiB/s; best of 2)`)
  }
  return lines
}
