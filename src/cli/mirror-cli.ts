/**
 * Shared plumbing of the mirror verbs (resync, syncvg, scrub): parse VG/LV, vary the VG on in
 * this process, run mirror recovery (MWC replay) through MirrorEngine.start, run the operation
 * with a progress bar on a terminal, then write a clean MWC record and vary the VG off.
 */
import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { LvmfsError } from '../errors/index.js'
import {
  DEFAULT_MIN_RATE_BYTES_PER_SECOND, MirrorEngine, ChecksumNarrower, DEFAULT_CHECKSUM_BLOCK_BYTES,
  type ResyncProgress, type ResyncReport,
} from '../mirror/index.js'
import { onlineVg, stderr, stdout, type OutputStream, type ResyncRate } from './io-context.js'
import { humanBytes, requireName, withVg, type DeviceOptions } from './lvm-cli.js'
import { parseSizeBytes } from './options.js'

export interface MirrorCliOptions extends DeviceOptions {
  readonly rate?: string
  readonly minRate?: string
  readonly maxRate?: string
  readonly fillTarget?: string
  readonly checksum?: boolean
  readonly checksumBlock?: string
}

/** A resync report; with --checksum also the target bytes compared (copiedBytes: written). */
export type CliResyncReport = ResyncReport & { readonly comparedBytes?: number }

export function parseVgLv(text: string): { vgName: string, lvName: string } {
  const parts = text.split('/')
  if (parts.length !== 2) {
    throw new LvmfsError('ENGINE_USAGE', `expected VG/LV, got "${text}"`, { hint: 'Example: lvmfs resync vg0/data' })
  }
  requireName('volume group', parts[0]!)
  requireName('logical volume', parts[1]!)
  return { vgName: parts[0]!, lvName: parts[1]! }
}

export async function withMirror<T>(vgName: string, options: DeviceOptions,
  fn: (engine: MirrorEngine) => Promise<T>): Promise<T> {
  // Inside the daemon serving the VG: its engine already ran recovery and keeps running.
  const online = onlineVg(vgName)
  if (online !== undefined) return await fn(online.engine)
  return await withVg(vgName, options, async (vg) => {
    const engine = await MirrorEngine.start(vg)
    for (const ltg of engine.recovery.ltgs) {
      stderr().write(`lvmfs: MWC recovery: ${ltg.lv} LTG ${ltg.ltgIndex} copied from copy ${String(ltg.source)}\n`)
    }
    for (const name of engine.recovery.needsForcedResync) {
      stderr().write(`lvmfs: warning: LV "${name}" (MWC off) crashed while open; run lvmfs resync ` +
        `${vgName}/${name} --force\n`)
    }
    try {
      return await fn(engine)
    } finally {
      await engine.stop()
    }
  })
}

/** The online VG when this command runs inside the daemon serving the VG named in argv. */
function onlineVgOf(options: DeviceOptions & { vgName?: string }): ReturnType<typeof onlineVg> {
  return options.vgName === undefined ? undefined : onlineVg(options.vgName)
}

/** A progress callback drawing a bar on stderr when it is a terminal and --json is not set. */
export function progressBar(options: DeviceOptions & { vgName?: string }):
  { onProgress?: (p: ResyncProgress) => void, stop: () => void } {
  const online = onlineVgOf(options)
  if (options.json === true) {
    // --json: progress events, one JSON object a line, before the final report.
    return { onProgress: (p) => {
      online?.progress(p.doneBytes, p.totalBytes, rateOf(p))
      stdout().write(JSON.stringify({ event: 'progress', doneBytes: p.doneBytes, totalBytes: p.totalBytes,
        ...rateOf(p) }) + '\n')
    }, stop: () => {} }
  }
  if (stderr().isTTY !== true) {
    if (online === undefined) return { stop: () => {} }
    return { onProgress: (p) => online.progress(p.doneBytes, p.totalBytes, rateOf(p)), stop: () => {} }
  }
  const bar = new SingleBar({ stream: stderr() as OutputStream as NodeJS.WritableStream,
    format: '{bar} {percentage}% | {done} of {total} | {rate} | ETA {eta_text}' })
  let started = false
  return {
    onProgress: (p) => {
      online?.progress(p.doneBytes, p.totalBytes, rateOf(p))
      const payload = { done: humanBytes(p.doneBytes), total: humanBytes(p.totalBytes),
        rate: humanRate(p.rateBytesPerSecond), eta_text: humanDuration(p.etaSeconds) }
      if (!started) {
        bar.start(p.totalBytes, 0, payload)
        started = true
      }
      bar.setTotal(Math.max(p.totalBytes, p.doneBytes))
      bar.update(p.doneBytes, payload)
    },
    stop: () => { if (started) bar.stop() },
  }
}

/** The rate and ETA of a progress event, for lvmfs status and --json (absent until measured). */
export function rateOf(p: ResyncProgress): ResyncRate {
  return { ...(p.rateBytesPerSecond === undefined ? {} : { rateBytesPerSecond: Math.round(p.rateBytesPerSecond) }),
    ...(p.etaSeconds === undefined ? {} : { etaSeconds: Math.round(p.etaSeconds) }) }
}

export function humanRate(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined ? '-/s' : `${(bytesPerSecond / (1024 * 1024)).toFixed(1)}M/s`
}

/** Seconds as [h:]mm:ss, '-' when unknown. */
export function humanDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-'
  const total = Math.round(seconds)
  const hours = Math.floor(total / 3600)
  const rest = `${String(Math.floor(total / 60) % 60).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`
  return hours > 0 ? `${hours}:${rest}` : rest
}

/** `--rate SIZE` (the maximum, as before), `--max-rate SIZE` and `--min-rate SIZE`. */
export function addRateOptions(command: Command): Command {
  return command
    .option('--rate <size>', 'copy at most SIZE per second, e.g. 50M (same as --max-rate)')
    .option('--max-rate <size>', 'copy at most SIZE per second (default: unlimited)')
    .option('--min-rate <size>', `while applications do I/O, slow down to SIZE per second, not below (default: ${
      DEFAULT_MIN_RATE_BYTES_PER_SECOND / (1024 * 1024)}M)`)
    .option('--fill-target <size>', 'keep at most SIZE of copies in flight (default: two regions)')
}

/** The rate controller's bounds from --rate/--max-rate/--min-rate, and --fill-target. */
export function rateOption(options: MirrorCliOptions):
  { maxRateBytesPerSecond?: number, minRateBytesPerSecond?: number, fillTargetBytes?: number } {
  if (options.rate !== undefined && options.maxRate !== undefined) {
    throw new LvmfsError('ENGINE_USAGE', '--rate and --max-rate name the same bound; give one of them')
  }
  const maxText = options.maxRate ?? options.rate
  const max = maxText === undefined ? undefined
    : parseSizeBytes(maxText, options.maxRate !== undefined ? '--max-rate' : '--rate')
  const min = options.minRate === undefined ? undefined : parseSizeBytes(options.minRate, '--min-rate')
  const fill = options.fillTarget === undefined ? undefined : parseSizeBytes(options.fillTarget, '--fill-target')
  for (const [value, name] of [[max, '--max-rate'], [min, '--min-rate'], [fill, '--fill-target']] as const) {
    if (value !== undefined && value <= 0) throw new LvmfsError('ENGINE_USAGE', `${name} must be above 0`)
  }
  if (min !== undefined && max !== undefined && min > max) {
    throw new LvmfsError('ENGINE_USAGE', `--min-rate ${options.minRate} is above the maximum rate ${maxText}`)
  }
  return { ...(max === undefined ? {} : { maxRateBytesPerSecond: max }),
    ...(min === undefined ? {} : { minRateBytesPerSecond: min }),
    ...(fill === undefined ? {} : { fillTargetBytes: fill }) }
}

/** `--checksum [--checksum-block SIZE]`: the block size compared and written, or undefined. */
export function checksumBlockOption(options: MirrorCliOptions): number | undefined {
  if (options.checksumBlock !== undefined && options.checksum !== true) {
    throw new LvmfsError('ENGINE_USAGE', '--checksum-block needs --checksum')
  }
  if (options.checksum !== true) return undefined
  if (options.checksumBlock === undefined) return DEFAULT_CHECKSUM_BLOCK_BYTES
  const bytes = parseSizeBytes(options.checksumBlock, '--checksum-block')
  if (bytes % 4096 !== 0 || bytes > 64 * 1024 * 1024) {
    throw new LvmfsError('ENGINE_USAGE', `invalid --checksum-block "${options.checksumBlock}"`, {
      detail: 'The block compared and written must be a multiple of 4K, at most 64M.' })
  }
  return bytes
}

/** The narrowRanges hook of a checksum resync (undefined without --checksum) and the report it
 * completes with the bytes compared. */
export function checksumResync(engine: MirrorEngine, blockBytes: number | undefined): {
  narrowRanges?: ChecksumNarrower['narrowRanges'], report: (report: ResyncReport) => CliResyncReport } {
  if (blockBytes === undefined) return { report: (report) => report }
  const checksum = new ChecksumNarrower(engine.mirror, { blockBytes })
  return { narrowRanges: checksum.narrowRanges,
    report: (report) => ({ ...report, comparedBytes: checksum.totals().comparedBytes }) }
}

/** Text summary of a resync; throws LVM_NOTSYNCED when some LP could not be synced. */
export function renderResync(report: CliResyncReport): string {
  const lines = report.lps.filter((lp) => lp.source !== undefined).map((lp) =>
    `${lp.lv} LP ${lp.lp}: copy ${String(lp.source)} -> ${lp.targets.join(',')} ` +
    `(${humanBytes(lp.copiedBytes)}${lp.resumedFromBytes > 0 ? `, resumed at ${humanBytes(lp.resumedFromBytes)}` : ''})`)
  lines.push(`resynced ${report.lps.filter((lp) => lp.source !== undefined).length} LP(s), ` +
    `copied ${humanBytes(report.copiedBytes)}` +
    (report.comparedBytes === undefined ? '' : ` (checksum: compared ${humanBytes(report.comparedBytes)})`))
  return lines.join('\n') + '\n'
}

export function failIfNotSynced(report: ResyncReport): void {
  if (report.failed.length === 0) return
  const first = report.failed[0]!
  throw new LvmfsError('LVM_NOTSYNCED', `${report.failed.length} logical partition(s) not resynced`, {
    detail: `First: LV "${first.lv}" LP ${first.lp} (${first.code}).`,
    hint: 'An LP needs one fresh copy on an active PV; bring the missing PVs back and retry.',
    context: { failed: report.failed } })
}
