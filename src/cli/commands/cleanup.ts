import type { Command } from 'commander'
import { cleanupMountpoint } from '../../fuse/index.js'

/** `lvmfs cleanup MOUNTPOINT`: detaches the dead mount a killed daemon left behind. */
export function register(program: Command): void {
  program.command('cleanup')
    .description('detach a dead lvmfs mount (ENOTCONN) left by a killed daemon')
    .argument('<mountpoint>', 'the mount point to clean')
    .option('--force', 'detach even a live mount (its daemon loses its connection)')
    .action((mountpoint: string, options: { force?: boolean }) => {
      const detached = cleanupMountpoint(mountpoint, { force: options.force ?? false })
      process.stdout.write(detached > 0 ? `detached ${detached} mount(s) at ${mountpoint}\n`
        : `nothing mounted at ${mountpoint}\n`)
    })
}
