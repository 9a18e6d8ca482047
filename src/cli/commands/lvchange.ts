import type { Command } from 'commander'
import type { MwcPolicy } from '../../lvm/index.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv } from '../mirror-cli.js'
import { choice, logOptions } from './lvcreate.js'

interface Options extends DeviceOptions {
  mwc?: string
  alExtents?: string
  bitmapChunk?: string
}

/** `lvmfs lvchange VG/LV [--mwc active|passive|off] [--al-extents N] [--bitmap-chunk SIZE]`: on a
 * mounted VG the daemon applies it online (its open gates are closed so the next writes follow
 * the new policy). */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvchange')
    .description("change a logical volume's mirror write consistency, activity log or bitmap chunk")
    .argument('<vg/lv>', 'the logical volume')
    .option('--mwc <active|passive|off>', 'mirror write consistency policy')
    .option('--al-extents <n>', 'activity-log size in extents (MWC active)')
    .option('--bitmap-chunk <size>', 'write-intent bitmap chunk, a power of two from 4K to the PP size'))
    .action(async (path: string, options: Options) => {
      const { vgName, lvName } = parseVgLv(path)
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      const mwc = options.mwc === undefined ? undefined : choice<MwcPolicy>(options.mwc, '--mwc', ['active', 'passive', 'off'])
      const lv = await withVg(vgName, options, (vg) => vg.lvChange(lvName, { ...(mwc === undefined ? {} : { mwc }),
        ...logOptions(options) }))
      print(options, { vg: vgName, lv: lvName, mwc: lv.mwc, alExtents: lv.alExtents ?? null,
        bitmapChunkBytes: lv.bitmapChunkBytes ?? null },
      `logical volume "${vgName}/${lvName}" changed: mwc ${lv.mwc}` +
        `${lv.alExtents === undefined ? '' : `, al-extents ${lv.alExtents}`}` +
        `${lv.bitmapChunkBytes === undefined ? '' : `, bitmap chunk ${lv.bitmapChunkBytes}`}\n`)
    })
}
