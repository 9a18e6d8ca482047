import type { Command } from 'commander'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs vgextend VG DEV...`: add PVs (blank, all-zero devices are pvcreate'd). */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgextend')
    .description('add physical volumes to a volume group')
    .argument('<vg>', 'volume group name')
    .argument('<devices...>', 'PVs, or blank (all-zero) devices, to add'))
    .action(async (vgName: string, devices: string[], options: DeviceOptions) => {
      requireName('volume group', vgName)
      await withVg(vgName, options, (vg) => vg.vgExtend(devices))
      print(options, { vg: vgName, added: devices }, `volume group "${vgName}" extended by ${devices.length} PV(s)\n`)
    })
}
