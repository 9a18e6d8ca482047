import type { Command } from 'commander'
import { callControl, socketPath } from '../../engine/index.js'
import { findMounted } from '../daemon-cli.js'
import { print } from '../lvm-cli.js'

/** `lvmfs umount MOUNTPOINT|VG [--force]`: flush, unmount, vary off (refused while an LV is open). */
export function register(program: Command): void {
  program.command('umount')
    .description('flush, unmount and vary off a mounted volume group')
    .argument('<target>', 'mount point or volume group name')
    .option('--force', 'unmount even while logical volumes are open (lazy detach)')
    .option('--json', 'print JSON')
    .action(async (target: string, options: { force?: boolean; json?: boolean }) => {
      const status = await findMounted(target)
      await callControl(socketPath(status.instance ?? status.vg), 'umount', { force: options.force === true })
      print(options, { vg: status.vg, mountpoint: status.mountpoint, unmounted: true },
        `volume group "${status.vg}" unmounted from ${status.mountpoint} and varied off\n`)
    })
}
