import type { Command } from 'commander'
import { OnlineVg } from '../../lvm/index.js'
import { addDeviceOptions, print, refuseMounted, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs vgremove VG [--force]`: releases every PV's label (they can join another VG or be
 * pvremove'd). Refuses while LVs exist unless --force, and on a mounted VG (as LVM2 refuses a
 * VG with active LVs). */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgremove')
    .description('remove a volume group, releasing its physical volumes')
    .argument('<vg>', 'volume group name')
    .option('-f, --force', 'remove it even though it holds logical volumes (their data is lost)'))
    .action(async (vgName: string, options: DeviceOptions & { force?: boolean }) => {
      requireName('volume group', vgName)
      refuseMounted(vgName, 'vgremove')
      const removed = await withVg(vgName, options, async (vg) => {
        const { vgId, pvs, lvs } = vg.descriptor
        await (vg as OnlineVg).vgRemove(options.force === true)
        return { vgId, pvs: pvs.map((p) => p.lastPath), lvs: lvs.map((lv) => lv.name) }
      })
      print(options, { vg: vgName, ...removed },
        `volume group "${vgName}" removed; ${removed.pvs.length} PV(s) released\n`)
    })
}
