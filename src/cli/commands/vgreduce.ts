import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs vgreduce VG DEV...`: remove empty PVs (refuses PVs with allocated PPs). */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgreduce')
    .description('remove physical volumes that hold no allocated partitions from a volume group')
    .argument('<vg>', 'volume group name')
    .argument('<pvs...>', 'PV device paths or PV ids'))
    .action(async (vgName: string, pvs: string[], options: DeviceOptions) => {
      requireName('volume group', vgName)
      await withVg(vgName, options, async (vg) => {
        const indexes = pvs.map((pv) => {
          const i = vg.descriptor.pvs.findIndex((p, k) =>
            p.pvId === pv || vg.device(k)?.path === pv || p.lastPath === pv)
          if (i < 0) {
            throw new LvmfsError('ENGINE_NOT_FOUND', `"${pv}" is not a PV of "${vgName}"`, { context: { pv } })
          }
          return vg.descriptor.pvs[i]!.pvId
        })
        for (const pvId of indexes) await vg.vgReduce(vg.descriptor.pvs.findIndex((p) => p.pvId === pvId))
      })
      print(options, { vg: vgName, removed: pvs }, `volume group "${vgName}" reduced by ${pvs.length} PV(s)\n`)
    })
}
