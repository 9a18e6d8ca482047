import type { Command } from 'commander'
import { lvmfsLoopDevices, removeDeadLinks } from '../../engine/index.js'
import { cleanupMountpoint } from '../../fuse/index.js'

/**
 * `lvmfs cleanup MOUNTPOINT`: detaches the dead mount a killed daemon left behind, removes the
 * names of its block devices the kernel has detached (a killed daemon's devices detach at their
 * last close), and lists those still held open.
 */
export function register(program: Command): void {
  program.command('cleanup')
    .description('detach a dead lvmfs mount (ENOTCONN) left by a killed daemon')
    .argument('<mountpoint>', 'the mount point to clean')
    .option('--force', 'detach even a live mount (its daemon loses its connection)')
    .action((mountpoint: string, options: { force?: boolean }) => {
      const detached = cleanupMountpoint(mountpoint, { force: options.force ?? false })
      process.stdout.write(detached > 0 ? `detached ${detached} mount(s) at ${mountpoint}\n`
        : `nothing mounted at ${mountpoint}\n`)
      for (const link of removeDeadLinks()) process.stdout.write(`removed ${link} (its loop device is detached)\n`)
      for (const device of lvmfsLoopDevices().filter((candidate) => candidate.holders.length > 0)) {
        process.stdout.write(`${device.device} (${device.name}) is still held by ${device.holders.join(', ')}; ` +
          'it detaches at its last close\n')
      }
    })
}
