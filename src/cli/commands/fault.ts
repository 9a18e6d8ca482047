import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { callControl } from '../../engine/control-protocol.js'
import { socketPath } from '../../engine/runtime-paths.js'
import { findMounted } from '../daemon-cli.js'
import { print } from '../lvm-cli.js'

const MODES = ['fail-writes', 'fail-reads', 'disappear', 'clear'] as const

/**
 * `lvmfs fault VG PV --fail-writes|--fail-reads|--disappear|--clear`: rehearse a disk failure on
 * a live mount. The fault applies to the PV's metadata I/O and to the native data path alike.
 */
export function register(program: Command): void {
  program.command('fault')
    .description('inject or clear a fault on a physical volume of a mounted volume group (drills, tests)')
    .argument('<vg>', 'mounted volume group')
    .argument('<pv>', 'PV path or PV id')
    .option('--fail-writes', 'every write to the PV fails with EIO')
    .option('--fail-reads', 'every read from the PV fails with EIO')
    .option('--disappear', 'every read and write fails, as if the disk was pulled')
    .option('--clear', 'remove the fault (then lvmfs varyonvg VG brings a MISSING PV back)')
    .option('--json', 'print JSON')
    .action(async (vgName: string, pv: string, options: Record<string, boolean | undefined>) => {
      const chosen = MODES.filter((mode) => options[mode.replace(/-(.)/g, (_m, c: string) => c.toUpperCase())] === true)
      if (chosen.length !== 1) {
        throw new LvmfsError('ENGINE_USAGE', 'choose exactly one of --fail-writes, --fail-reads, --disappear, --clear')
      }
      await findMounted(vgName)
      const result = await callControl(socketPath(vgName), 'fault', { pv, mode: chosen[0] }) as { path: string }
      print(options, { vg: vgName, pv: result.path, mode: chosen[0] }, `${result.path}: ${chosen[0]}\n`)
    })
}
