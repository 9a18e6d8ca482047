import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { checkThinPool, repairThinPool } from '../../engine/index.js'
import { onlineVg } from '../io-context.js'
import { addDeviceOptions, print, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv, withMirror } from '../mirror-cli.js'

/**
 * `lvmfs thin-check VG/POOL [--repair]`: verifies the pool's metadata on disk (LVM2's
 * thin_check). On a mounted VG the daemon commits first, so what is checked is what a crash now
 * would open. Exit 0 when clean; problems are listed and exit 5 (THIN_CORRUPT). --repair
 * (unmounted only, as thin_repair) rebuilds the metadata from what can be read (thin-repair.ts).
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('thin-check')
    .description('verify a thin pool\'s metadata: checksums, tree structure, no double mapping, sharing')
    .argument('<vg/pool>', 'the thin pool LV')
    .option('--repair', 'rebuild the metadata from what can be read (the VG must not be mounted)'))
    .action(async (path: string, options: DeviceOptions & { repair?: boolean }) => {
      const { vgName, lvName } = parseVgLv(path)
      if (options.repair === true) {
        if (onlineVg(vgName) !== undefined) {
          throw new LvmfsError('ENGINE_BUSY', `volume group "${vgName}" is mounted: unmount it to repair "${lvName}"`, {
            hint: `lvmfs umount VG, then lvmfs thin-check ${vgName}/${lvName} --repair.` })
        }
        const repaired = await withMirror(vgName, options, (engine) => repairThinPool(engine, lvName))
        print(options, repaired, `thin pool "${vgName}/${lvName}" rebuilt as transaction ${repaired.transaction}: ` +
          `${repaired.devices} thin devices, ${repaired.keptMappings} mappings kept, ${repaired.unreadableNodes} ` +
          `unreadable nodes (their mappings read zero now), ${repaired.droppedMappings} bad mappings dropped, ` +
          `${repaired.resetTimes} shared blocks made copy-on-write\n`)
        return
      }
      const report = await withMirror(vgName, options, (engine) => checkThinPool(engine, lvName))
      const lines = [`thin pool "${vgName}/${lvName}": transaction ${report.transaction} (superblock slot ${report.slot}), ` +
        `${report.devices} thin devices, ${report.mappedBlocks} mapped blocks (${report.sharedBlocks} shared), ` +
        `${report.metadataBlocksUsed} metadata blocks`]
      for (const id of report.orphans) lines.push(`  note: thin device ${id} is named by no LV (its blocks stay allocated)`)
      for (const problem of report.problems) {
        lines.push(`  block ${problem.block}${problem.thinId === undefined ? '' : ` (thin ${problem.thinId})`}: ${problem.message}`)
      }
      lines.push(report.problems.length === 0 ? 'no problems found' : `${report.problems.length} problems found`)
      print(options, report, `${lines.join('\n')}\n`)
      if (report.problems.length > 0) {
        throw new LvmfsError('THIN_CORRUPT', `thin pool "${vgName}/${lvName}" has ${report.problems.length} metadata problems`, {
          context: { problems: report.problems } })
      }
    })
}
