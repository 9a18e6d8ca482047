import type { Command } from 'commander'
import { addDeviceOptions, print, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv } from '../mirror-cli.js'
import { withReplication } from './replication-common.js'

interface PrimrecOptions extends DeviceOptions {
  readonly full?: boolean
}

/**
 * `lvmfs primrec VG/LV [--full]`: reconcile an asynchronous mirror target outside the
 * propagator: copy the chunks changed since its low-water mark (every chunk with --full, for a
 * mark of questionable accuracy), then raise the mark with chlwm. On a split target it
 * reattaches the pair unless both sides took writes (LWM_GENERATION_CONFLICT).
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('primrec').description('reconcile an asynchronous mirror target with its source')
    .argument('<vg/lv>', 'the asynchronous mirror target')
    .option('--full', 'compare and copy everything, not only changes since the mark'))
    .action(async (target: string, options: PrimrecOptions) => {
      const { vgName, lvName } = parseVgLv(target)
      const report = await withReplication([vgName], options,
        (repl) => repl.primrec(vgName, lvName, { full: options.full === true }))
      print(options, report, `copied ${report.copiedChunks} chunk(s); low-water mark ${report.previousLwm} -> ${report.lwm}\n`)
    })
}
