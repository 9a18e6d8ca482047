import type { Command } from 'commander'
import { addDeviceOptions, humanBytes, print } from '../lvm-cli.js'
import { parseVgLv, withMirror, type MirrorCliOptions } from '../mirror-cli.js'

interface ScrubCliOptions extends MirrorCliOptions {
  readonly repair?: boolean
}

/**
 * `lvmfs scrub VG/LV [--repair]`: compare the fresh copies region by region and list the
 * regions that differ; --repair rewrites them (majority of 3, else the primary copy).
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('scrub').description('compare (and repair) the copies of a mirrored logical volume')
    .argument('<vg/lv>', 'volume group and logical volume')
    .option('--repair', 'make differing regions equal (majority of three copies, else the primary)'))
    .action(async (target: string, options: ScrubCliOptions) => {
      const { vgName, lvName } = parseVgLv(target)
      const report = await withMirror(vgName, options,
        (engine) => engine.scrub(lvName, { repair: options.repair === true }))
      const lines = report.mismatches.map((m) =>
        `LP ${m.lp} bytes ${m.lvOffsetBytes}..${m.lvOffsetBytes + m.lengthBytes - 1}: copies ` +
        m.groups.map((group) => `[${group.join(',')}]`).join(' differ from ') +
        (m.repairedFrom === undefined ? '' : `; repaired ${(m.repairedCopies ?? []).join(',')} from copy ${m.repairedFrom}`))
      lines.push(`checked ${report.regionsChecked} region(s) (${humanBytes(report.bytesChecked)}), ` +
        `${report.mismatches.length} mismatching` +
        (options.repair === true ? `, repaired ${humanBytes(report.repairedBytes)}` : ''))
      if (report.skippedLps.length > 0) lines.push(`skipped ${report.skippedLps.length} LP(s) with fewer than two fresh copies`)
      print(options, report, lines.join('\n') + '\n')
    })
}
