import type { Command } from 'commander'
import { requireName, addDeviceOptions, print } from '../lvm-cli.js'
import {
  addRateOptions, checksumBlockOption, checksumResync, failIfNotSynced, progressBar, rateOption, renderResync,
  withMirror, type MirrorCliOptions,
} from '../mirror-cli.js'

/** `lvmfs syncvg VG [--max-rate SIZE] [--min-rate SIZE] [--checksum [--checksum-block SIZE]]`: resync
 * every stale partition of every LV in the VG (with --checksum, writing only the blocks that differ). */
export function register(program: Command): void {
  addDeviceOptions(addRateOptions(program.command('syncvg').description('resynchronize every stale partition of a volume group')
    .argument('<vg>', 'volume group')
    .option('--checksum', 'compare block hashes of the copies and write only the blocks that differ')
    .option('--checksum-block <size>', 'with --checksum: the block compared and written (4K to 64M)')))
    .action(async (vgName: string, options: MirrorCliOptions) => {
      requireName('volume group', vgName)
      const checksumBlockBytes = checksumBlockOption(options)
      const bar = progressBar({ ...options, vgName })
      const report = await withMirror(vgName, options, async (engine) => {
        try {
          const progress = bar.onProgress ? { onProgress: bar.onProgress } : {}
          const checksum = checksumResync(engine, checksumBlockBytes)
          const narrow = checksum.narrowRanges ? { narrowRanges: checksum.narrowRanges } : {}
          return checksum.report(await engine.resyncer({ ...rateOption(options), ...progress, ...narrow }).syncvg())
        } finally {
          bar.stop()
        }
      })
      print(options, report, renderResync(report))
      failIfNotSynced(report)
    })
}
