import type { Command } from 'commander'
import { usageError } from '../../errors/index.js'
import { pvRemove } from '../../lvm/index.js'
import { print } from '../lvm-cli.js'

/** `lvmfs pvremove DEV...`: wipes the label of PVs that belong to no VG. A PV whose label names
 * a VG is refused, naming the VG (vgreduce or vgremove it first). */
export function register(program: Command): void {
  program.command('pvremove')
    .description('wipe the lvmfs label of physical volumes that are in no volume group')
    .argument('<devices...>', 'PV devices')
    .option('--json', 'print JSON')
    .action(async (devices: string[], options: { json?: boolean }) => {
      if (new Set(devices).size !== devices.length) throw usageError('a device is given twice')
      const removed: Array<{ path: string; pvId: string }> = []
      for (const path of devices) removed.push({ path, pvId: (await pvRemove(path)).pvId })
      print(options, { removed }, removed.map((r) => `label on "${r.path}" wiped (PV ${r.pvId})\n`).join(''))
    })
}
