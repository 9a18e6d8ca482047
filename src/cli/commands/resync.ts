import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { addDeviceOptions, print } from '../lvm-cli.js'
import {
  addRateOptions, checksumBlockOption, checksumResync, failIfNotSynced, parseVgLv, progressBar, rateOption,
  renderResync, withMirror, type CliResyncReport, type MirrorCliOptions,
} from '../mirror-cli.js'
import { parseIntegerOption } from '../options.js'

interface ResyncOptions extends MirrorCliOptions {
  readonly lp?: string
  readonly force?: boolean
  readonly pv?: string
}

/**
 * `lvmfs resync VG/LV [--lp N] [--force] [--pv PV] [--max-rate SIZE] [--min-rate SIZE]
 * [--checksum [--checksum-block SIZE]]`:
 * lvm_resynclp for one LP, or every LP of the LV (lvm_resynclv), or the LPs with a stale copy on
 * one PV. Without --force a good copy goes to stale copies only; with --force to every other copy
 * (after a crash of an LV without MWC), which also clears the LV's crash flag. --checksum
 * compares block hashes of the copies first and writes only the blocks that differ.
 */
export function register(program: Command): void {
  addDeviceOptions(addRateOptions(program.command('resync').description('resynchronize the copies of a mirrored logical volume')
    .argument('<vg/lv>', 'volume group and logical volume')
    .option('--lp <n>', 'only this logical partition (lvm_resynclp)')
    .option('--force', 'copy a good copy to every other copy, stale or not')
    .option('--pv <pv>', 'only LPs with a stale copy on this PV (device path, PV id or index)')
    .option('--checksum', 'compare block hashes of the copies and write only the blocks that differ')
    .option('--checksum-block <size>', 'with --checksum: the block compared and written (4K to 64M)')))
    .action(async (target: string, options: ResyncOptions) => {
      const { vgName, lvName } = parseVgLv(target)
      const lp = options.lp === undefined ? undefined : parseIntegerOption(options.lp, '--lp', 0, 2 ** 31)
      if (lp !== undefined && options.pv !== undefined) {
        throw new LvmfsError('ENGINE_USAGE', '--lp and --pv cannot be combined')
      }
      const force = options.force === true
      const checksumBlockBytes = checksumBlockOption(options)
      const bar = progressBar({ ...options, vgName })
      const report = await withMirror(vgName, options, async (engine): Promise<CliResyncReport> => {
        const checksum = checksumResync(engine, checksumBlockBytes)
        const resyncOptions = { ...rateOption(options), ...(bar.onProgress ? { onProgress: bar.onProgress } : {}),
          ...(checksum.narrowRanges ? { narrowRanges: checksum.narrowRanges } : {}) }
        const resyncer = engine.resyncer(resyncOptions)
        try {
          if (lp !== undefined) {
            const result = await resyncer.resynclp(lvName, lp, force)
            return checksum.report({ lps: [result], copiedBytes: result.copiedBytes, failed: [] })
          }
          if (options.pv !== undefined) {
            return checksum.report(await resyncer.resyncLvOnPv(lvName, resolvePv(engine.vg.descriptor.pvs, options.pv),
              force))
          }
          return checksum.report(force ? await engine.forcedResync(lvName, resyncOptions)
            : await resyncer.resynclv(lvName, false))
        } finally {
          bar.stop()
        }
      })
      print(options, report, renderResync(report))
      failIfNotSynced(report)
    })
}

export function resolvePv(pvs: ReadonlyArray<{ pvId: string, lastPath: string }>, text: string): number {
  const byName = pvs.findIndex((pv) => pv.lastPath === text || pv.pvId === text)
  if (byName >= 0) return byName
  if (/^\d+$/.test(text) && Number(text) < pvs.length) return Number(text)
  throw new LvmfsError('ENGINE_NOT_FOUND', `PV "${text}" is not in this volume group`, {
    detail: `Members: ${pvs.map((pv, index) => `${index}=${pv.lastPath}`).join(', ')}.` })
}
