import type { Command } from 'commander'
import { assertNoChildDependency } from '../../replication/index.js'
import { removeThinLv, removeThinPool } from '../../engine/index.js'
import { isThinLv, isThinPool } from '../../lvm/index.js'
import { vgsAtHand } from '../io-context.js'
import { withMirror } from '../mirror-cli.js'
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
      const thin = await withVg(vgName, options, async (vg) => {
        // A source of clones, unfinished copies or mirrors cannot go (lsm child dependency).
        assertNoChildDependency(vgsAtHand(vg), vgName, lvName)
        const lv = vg.lvByName(lvName)
        if (lv !== undefined && (isThinLv(lv) || isThinPool(lv))) return true
        await vg.lvRemove(lvName)
        return false
      })
      // A thin LV's device and a pool's open metadata live in the pool, which the mirror engine reaches.
      if (thin) {
        await withMirror(vgName, options, async (engine) => {
          const lv = engine.vg.lvByName(lvName)!
          await (isThinLv(lv) ? removeThinLv(engine, lv) : removeThinPool(engine, lv))
        })
      }
      print(options, { vg: vgName, removed: lvName }, `logical volume "${lvName}" removed from "${vgName}"\n`)
    })
}
