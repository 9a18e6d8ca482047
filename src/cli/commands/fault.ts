import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { callControl, socketPath, type FaultReport } from '../../engine/index.js'
import { findMounted } from '../daemon-cli.js'
import { print } from '../lvm-cli.js'
import { parseIndexList, parseOffsetBytes, parseSizeBytes } from '../options.js'

const MODES = ['fail-writes', 'fail-reads', 'disappear', 'fail-fsync', 'clear'] as const

interface Options {
  failWrites?: boolean
  failReads?: boolean
  disappear?: boolean
  failFsync?: boolean
  clear?: boolean
  offset?: string
  length?: string
  lv?: string
  lp?: string
  json?: boolean
}

function camel(mode: string): keyof Options {
  return mode.replace(/-(.)/g, (_m, c: string) => c.toUpperCase()) as keyof Options
}

/** The control request's target fields, checked: a PV byte range, or an LV's LPs. */
function targetOf(mode: typeof MODES[number], options: Options): Record<string, unknown> {
  const ranged = options.offset !== undefined || options.length !== undefined
  const byLv = options.lv !== undefined || options.lp !== undefined
  if (ranged && byLv) {
    throw new LvmfsError('ENGINE_USAGE', `${options.lv !== undefined ? '--lv' : '--lp'} cannot be combined with ` +
      `${options.offset !== undefined ? '--offset' : '--length'}`, {
      hint: 'Name the range either as PV bytes (--offset, --length) or as LPs of an LV (--lv, --lp).' })
  }
  if ((ranged || byLv) && (mode === 'clear' || mode === 'fail-fsync')) {
    const option = options.offset !== undefined ? '--offset' : options.length !== undefined ? '--length'
      : options.lv !== undefined ? '--lv' : '--lp'
    throw new LvmfsError('ENGINE_USAGE', `${option} does not apply to --${mode}`, {
      detail: mode === 'clear' ? '--clear removes every fault of the PV.'
        : '--fail-fsync fails every fsync of the PV\'s data, whatever the range.' })
  }
  if (ranged) {
    if (options.offset === undefined) {
      throw new LvmfsError('ENGINE_USAGE', '--length needs --offset', { hint: 'Give the start of the range with --offset BYTES.' })
    }
    return { offsetBytes: parseOffsetBytes(options.offset, '--offset'),
      ...(options.length === undefined ? {} : { lengthBytes: parseSizeBytes(options.length, '--length') }) }
  }
  if (byLv) {
    if (options.lv === undefined) {
      throw new LvmfsError('ENGINE_USAGE', '--lp needs --lv', { hint: 'Name the logical volume the LPs belong to.' })
    }
    return { lv: options.lv, ...(options.lp === undefined ? {} : { lps: parseIndexList(options.lp, '--lp') }) }
  }
  return {}
}

function rangesText(report: FaultReport): string {
  if (report.mode === 'clear') return ''
  return ` on ${report.ranges.map((r) => `bytes ${r.offsetBytes}-${r.offsetBytes + r.lengthBytes - 1}`).join(', ')}`
}

/**
 * `lvmfs fault VG PV --fail-writes|--fail-reads|--disappear|--fail-fsync|--clear
 * [--offset BYTES [--length BYTES] | --lv LV [--lp N[,N|N-M]...]]`: rehearse a disk failure on a
 * live mount, on the whole PV or on part of it. The fault applies to the PV's metadata I/O and
 * to the native data path alike; --fail-fsync affects the native data path's fsync only.
 */
export function register(program: Command): void {
  program.command('fault')
    .description('inject or clear a fault on a physical volume of a mounted volume group (drills, tests); ' +
      'faults add up until --clear')
    .argument('<vg>', 'mounted volume group')
    .argument('<pv>', 'PV path or PV id')
    .option('--fail-writes', 'writes (and fallocates) to the PV, or to the range, fail with EIO')
    .option('--fail-reads', 'reads from the PV, or from the range, fail with EIO')
    .option('--disappear', 'reads and writes fail, as if the disk was pulled')
    .option('--fail-fsync', 'every fsync of volume data on the PV fails with EIO (native data path only: ' +
      'metadata commits still sync; takes no range)')
    .option('--clear', 'remove every fault of the PV (then lvmfs varyonvg VG brings a MISSING PV back)')
    .option('--offset <bytes>', 'fault only from this byte offset of the PV file or device (K, M, G suffixes)')
    .option('--length <bytes>', 'with --offset: length of the range (default: to the end of the PV)')
    .option('--lv <lv>', 'fault only the PPs this LV has on the PV')
    .option('--lp <list>', 'with --lv: only the PPs of these LPs, e.g. 5 or 5,9,12-15 (default: every LP)')
    .option('--json', 'print JSON')
    .action(async (vgName: string, pv: string, options: Options) => {
      const chosen = MODES.filter((mode) => options[camel(mode)] === true)
      if (chosen.length !== 1) {
        throw new LvmfsError('ENGINE_USAGE',
          'choose exactly one of --fail-writes, --fail-reads, --disappear, --fail-fsync, --clear')
      }
      const mode = chosen[0]!
      const target = targetOf(mode, options)
      await findMounted(vgName)
      const report = await callControl(socketPath(vgName), 'fault', { pv, mode, ...target }) as FaultReport
      print(options, { vg: vgName, pv: report.path, mode, ranges: report.ranges },
        `${report.path}: ${mode}${rangesText(report)}\n`)
    })
}
