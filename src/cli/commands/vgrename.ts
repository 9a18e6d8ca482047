import type { Command } from 'commander'
import { alreadyExists } from '../../errors/index.js'
import { OnlineVg, scanDevices, validateVgName } from '../../lvm/index.js'
import {
  addDeviceOptions, deviceList, print, refuseMounted, requireName, withVg, type DeviceOptions,
} from '../lvm-cli.js'

/** `lvmfs vgrename OLD NEW`: one descriptor commit. Refused on a mounted VG: its daemon, pid
 * file and socket are found by the VG's name. */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgrename')
    .description('rename a volume group')
    .argument('<old>', 'current name')
    .argument('<new>', 'new name'))
    .action(async (oldName: string, newName: string, options: DeviceOptions) => {
      requireName('volume group', oldName)
      validateVgName(newName)
      refuseMounted(oldName, 'vgrename')
      const { vgs } = await scanDevices(deviceList(options))
      if (vgs.some((vg) => vg.name === newName)) throw alreadyExists('volume group', newName, 'the scanned devices')
      const d = await withVg(oldName, options, (vg) => (vg as OnlineVg).vgRename(newName))
      print(options, { from: oldName, to: newName, vgId: d.vgId, seq: d.seq },
        `volume group "${oldName}" renamed to "${newName}"\n`)
    })
}
