import type { Command } from 'commander'
import { assertNoChildDependency } from '../../replication/index.js'
import { vgsAtHand } from '../io-context.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs lvremove VG LV` */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvremove')
    .description('remove a logical volume')
    .argument('<vg>', 'volume group name')
    .argument('<lv>', 'logical volume name'))
    .action(async (vgName: string, lvName: string, options: DeviceOptions) => {
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      await withVg(vgName, options, async (vg) => {
        // A source of clones, unfinished copies or mirrors cannot go (lsm child dependency).
        assertNoChildDependency(vgsAtHand(vg), vgName, lvName)
        await vg.lvRemove(lvName)
      })
      print(options, { vg: vgName, removed: lvName }, `logical volume "${lvName}" removed from "${vgName}"\n`)
    })
}
