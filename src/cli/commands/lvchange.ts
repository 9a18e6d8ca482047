import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import type { MwcPolicy } from '../../lvm/index.js'
import { onlineVg } from '../io-context.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv } from '../mirror-cli.js'
import { choice, logOptions } from './lvcreate.js'

interface Options extends DeviceOptions {
  mwc?: string
  alExtents?: string
  bitmapChunk?: string
  activate?: string
  permission?: string
}

/** `lvmfs lvchange VG/LV [--mwc active|passive|off] [--al-extents N] [--bitmap-chunk SIZE]
 * [--activate y|n] [--permission r|rw]`: on a mounted VG the daemon applies it online (its open
 * gates are closed so the next writes follow the new policy; a deactivated LV's file goes, a
 * read-only one's writes fail with EROFS). */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvchange')
    .description("change a logical volume's mirror write consistency, activity log, bitmap chunk, activation " +
      'or permission')
    .argument('<vg/lv>', 'the logical volume')
    .option('--mwc <active|passive|off>', 'mirror write consistency policy')
    .option('--al-extents <n>', 'activity-log size in extents (MWC active)')
    .option('--bitmap-chunk <size>', 'write-intent bitmap chunk, a power of two from 4K to the PP size')
    .option('-a, --activate <y|n>', 'serve the LV (y) or not (n) when the VG is mounted')
    .option('-p, --permission <r|rw>', 'serve the LV read-only (r) or read-write (rw)'))
    .action(async (path: string, options: Options) => {
      const { vgName, lvName } = parseVgLv(path)
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      const mwc = options.mwc === undefined ? undefined : choice<MwcPolicy>(options.mwc, '--mwc', ['active', 'passive', 'off'])
      const activate = options.activate === undefined ? undefined : choice(options.activate, '--activate', ['y', 'n'])
      const permission = options.permission === undefined ? undefined
        : choice(options.permission, '--permission', ['r', 'rw'])
      const lv = await withVg(vgName, options, (vg) => {
        const current = vg.lvByName(lvName)
        const open = current === undefined ? false : onlineVg(vgName)?.isLvOpen?.(current.lvId) === true
        if (activate === 'n' && open && current?.inactive !== true) {
          throw new LvmfsError('LVM_LVOPEN', `logical volume "${vgName}/${lvName}" is open`, {
            hint: 'Close its file in the mount, then deactivate it.', context: { vg: vgName, lv: lvName } })
        }
        return vg.lvChange(lvName, { ...(mwc === undefined ? {} : { mwc }), ...logOptions(options),
          ...(activate === undefined ? {} : { activate: activate === 'y' }), ...(permission === undefined ? {} : { permission }) })
      })
      print(options, { vg: vgName, lv: lvName, mwc: lv.mwc, alExtents: lv.alExtents ?? null,
        bitmapChunkBytes: lv.bitmapChunkBytes ?? null, active: lv.inactive !== true,
        permission: lv.readOnly === true ? 'r' : 'rw' },
      `logical volume "${vgName}/${lvName}" changed: mwc ${lv.mwc}` +
        `${lv.alExtents === undefined ? '' : `, al-extents ${lv.alExtents}`}` +
        `${lv.bitmapChunkBytes === undefined ? '' : `, bitmap chunk ${lv.bitmapChunkBytes}`}` +
        `${lv.inactive === true ? ', inactive' : ''}${lv.readOnly === true ? ', read-only' : ''}\n`)
    })
}
