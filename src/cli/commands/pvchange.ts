import type { Command } from 'commander'
import { LvmfsError, usageError } from '../../errors/index.js'
import type { VolumeGroup } from '../../lvm/index.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** The index of the PV of `vg` named by path (where it is open or was last seen) or PV id. */
export function pvIndexOf(vg: VolumeGroup, pv: string): number {
  const i = vg.descriptor.pvs.findIndex((p, k) => p.pvId === pv || vg.device(k)?.path === pv || p.lastPath === pv)
  if (i < 0) throw new LvmfsError('ENGINE_NOT_FOUND', `"${pv}" is not a PV of "${vg.name}"`, { context: { pv } })
  return i
}

/** `lvmfs pvchange VG PV --remove | --return` (AIX lvm_changepv): a REMOVED PV leaves the copy
 * placement and takes no part in quorum until it is returned; returning it opens its device,
 * checks its label and rewrites its copies. On a mounted VG the daemon does it online. */
export function register(program: Command): void {
  addDeviceOptions(program.command('pvchange')
    .description('remove a physical volume from its volume group temporarily (PVREMOVED), or return it')
    .argument('<vg>', 'volume group name')
    .argument('<pv>', 'PV device path or PV id')
    .option('--remove', 'mark the PV removed: its descriptor copies leave the placement')
    .option('--return', 'return a removed (or missing) PV to the active state'))
    .action(async (vgName: string, pv: string, options: DeviceOptions & { remove?: boolean; return?: boolean }) => {
      requireName('volume group', vgName)
      if ((options.remove === true) === (options.return === true)) throw usageError('give one of --remove or --return')
      const state = options.remove === true ? 'removed' : 'active'
      const result = await withVg(vgName, options, async (vg) => {
        const i = pvIndexOf(vg, pv)
        const before = vg.pvState(i)
        await vg.setPvState(i, state)
        return { pvId: vg.descriptor.pvs[i]!.pvId, before, after: vg.pvState(i),
          copies: vg.descriptor.descriptorCopies.length }
      })
      print(options, { vg: vgName, pv, ...result },
        `physical volume "${pv}" of "${vgName}": ${result.before} -> ${result.after} ` +
        `(${result.copies} descriptor copies)\n`)
    })
}
