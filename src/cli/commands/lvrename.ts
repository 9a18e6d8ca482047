import type { Command } from 'commander'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs lvrename VG OLD NEW` */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvrename')
    .description('rename a logical volume')
    .argument('<vg>', 'volume group name')
    .argument('<old>', 'current name')
    .argument('<new>', 'new name'))
    .action(async (vgName: string, oldName: string, newName: string, options: DeviceOptions) => {
      requireName('volume group', vgName)
      requireName('logical volume', oldName)
      requireName('logical volume', newName)
      await withVg(vgName, options, (vg) => vg.lvRename(oldName, newName))
      print(options, { vg: vgName, from: oldName, to: newName }, `logical volume "${oldName}" renamed to "${newName}"\n`)
    })
}
