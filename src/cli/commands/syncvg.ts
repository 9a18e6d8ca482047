import type { Command } from 'commander'
import { requireName, addDeviceOptions, print } from '../lvm-cli.js'
import { failIfNotSynced, progressBar, rateOption, renderResync, withMirror, type MirrorCliOptions } from '../mirror-cli.js'

/** `lvmfs syncvg VG [--rate SIZE]`: resync every stale partition of every LV in the VG. */
export function register(program: Command): void {
  addDeviceOptions(program.command('syncvg').description('resynchronize every stale partition of a volume group')
    .argument('<vg>', 'volume group')
    .option('--rate <size>', 'copy at most SIZE per second, e.g. 50M'))
    .action(async (vgName: string, options: MirrorCliOptions) => {
      requireName('volume group', vgName)
      const bar = progressBar({ ...options, vgName })
      const report = await withMirror(vgName, options, async (engine) => {
        try {
          const progress = bar.onProgress ? { onProgress: bar.onProgress } : {}
          return await engine.resyncer({ ...rateOption(options), ...progress }).syncvg()
        } finally {
          bar.stop()
        }
      })
      print(options, report, renderResync(report))
      failIfNotSynced(report)
    })
}
