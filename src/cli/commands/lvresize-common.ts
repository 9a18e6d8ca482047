import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { assertNoChildDependency } from '../../replication/index.js'
import { thinPoolsOf } from '../../engine/index.js'
import { isThinPool } from '../../lvm/index.js'
import { vgsAtHand } from '../io-context.js'
import { withMirror } from '../mirror-cli.js'
import { addDeviceOptions, parseSizeChange, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** lvextend and lvreduce: `--size [+|-]SIZE`, absolute or relative, rounded to whole PPs. */
export function registerResize(program: Command, verb: 'lvextend' | 'lvreduce'): void {
  const grow = verb === 'lvextend'
  addDeviceOptions(program.command(verb)
    .description(grow ? 'grow a logical volume' : 'shrink a logical volume (data in the removed LPs is lost)')
    .argument('<vg>', 'volume group name')
    .argument('<lv>', 'logical volume name')
    .requiredOption('-L, --size <size>', grow ? 'new size, or +SIZE to add' : 'new size, or -SIZE to remove'))
    .action(async (vgName: string, lvName: string, options: DeviceOptions & { size: string }) => {
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      const change = parseSizeChange(options.size, '--size')
      if ((grow && change.relative < 0) || (!grow && change.relative > 0)) {
        throw new LvmfsError('ENGINE_USAGE', `${verb} cannot take "${options.size}"`)
      }
      const lv = await withVg(vgName, options, async (vg) => {
        const current = vg.lvByName(lvName)
        if (current === undefined) {
          throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${lvName}" not found in "${vgName}"`)
        }
        const have = current.lps.length
        const target = change.relative === 0 ? vg.lpCountForBytes(change.bytes)
          : have + change.relative * vg.lpCountForBytes(change.bytes)
        const delta = grow ? target - have : have - target
        if (delta <= 0) {
          throw new LvmfsError('ENGINE_USAGE', `"${lvName}" has ${have} LPs; ${verb} to ${target} changes nothing or ` +
            'goes the wrong way')
        }
        // Replicas map the source's partitions: shrinking a source would cut them off.
        if (!grow) assertNoChildDependency(vgsAtHand(vg), vgName, lvName)
        return grow ? vg.lvExtend(lvName, delta) : vg.lvReduce(lvName, delta)
      })
      // A thin pool's new partitions become data blocks of its pool.
      if (isThinPool(lv)) {
        await withMirror(vgName, options, (engine) => thinPoolsOf(engine).grown(engine.vg.lvById(lv.lvId)!))
      }
      print(options, { vg: vgName, lv: lvName, lps: lv.lps.length },
        `logical volume "${lvName}" now has ${lv.lps.length} LPs\n`)
    })
}
