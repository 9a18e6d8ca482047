import type { Command } from 'commander'
import { pvCreate } from '../../lvm/index.js'
import { parseSizeBytes } from '../options.js'
import { print } from '../lvm-cli.js'

/** `lvmfs pvcreate DEV... [--force] [--metadata-size SIZE]`: label devices as lvmfs PVs. */
export function register(program: Command): void {
  program.command('pvcreate')
    .description('initialise devices as physical volumes (refuses labelled devices without --force)')
    .argument('<devices...>', 'block devices or regular files')
    .option('-f, --force', 'relabel a device that already carries an lvmfs label (destroys it)')
    .option('--metadata-size <size>', 'size of each descriptor (VGDA) slot, default 512K')
    .option('--json', 'print JSON')
    .action(async (devices: string[], options: { force?: boolean; metadataSize?: string; json?: boolean }) => {
      const vgdaSlotBytes = options.metadataSize === undefined ? undefined
        : parseSizeBytes(options.metadataSize, '--metadata-size')
      if (vgdaSlotBytes !== undefined && (vgdaSlotBytes % 4096 !== 0 || vgdaSlotBytes > 2 ** 31)) {
        const { LvmfsError } = await import('../../errors/index.js')
        throw new LvmfsError('ENGINE_USAGE', `invalid --metadata-size ${options.metadataSize}`, {
          detail: 'Expected a multiple of 4K below 2G.' })
      }
      const created = []
      for (const device of devices) {
        const label = await pvCreate(device, { force: options.force === true,
          ...(vgdaSlotBytes === undefined ? {} : { layout: { vgdaSlotBytes } }) })
        created.push({ device, pvId: label.pvId })
      }
      print(options, { created }, created.map((c) => `physical volume "${c.device}" created (id ${c.pvId})\n`).join(''))
    })
}
