import type { Command } from 'commander'
import { encodeBackup, writeFileDurably } from '../../lvm/index.js'
import { addDeviceOptions, cliBackup, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs vgcfgbackup VG [-f FILE]`: writes the VG's current descriptor to the backup directory
 * now (every commit does so too), or to FILE. On a mounted VG the daemon writes it. */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgcfgbackup')
    .description("back up a volume group's descriptor (vgcfgrestore puts it back)")
    .argument('<vg>', 'volume group name')
    .option('-f, --file <file>', 'write the backup to this file instead of the backup directory'))
    .action(async (vgName: string, options: DeviceOptions & { file?: string }) => {
      requireName('volume group', vgName)
      const descriptor = await withVg(vgName, options, (vg) => Promise.resolve(vg.descriptor))
      let path: string
      if (options.file === undefined) {
        path = await cliBackup(options).write(descriptor)
      } else {
        path = options.file
        await writeFileDurably(path, encodeBackup(descriptor))
      }
      print(options, { vg: vgName, vgId: descriptor.vgId, seq: descriptor.seq, path },
        `volume group "${vgName}" (seq ${descriptor.seq}) backed up to ${path}\n`)
    })
}
