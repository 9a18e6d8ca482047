import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { addDeviceOptions, print, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv } from '../mirror-cli.js'
import { withReplication } from './replication-common.js'

function count(text: string, what: string): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new LvmfsError('LWM_EINVAL', `invalid ${what} "${text}"`, { detail: 'Expected a non-negative integer.' })
  }
  return value
}

/**
 * `lvmfs chlwm VG/LV SITE LWM`: chlwm(2) of AIX/370. On the local site (the copy VG/LV names)
 * sets the low-water mark to max(LWM, current) and prints the previous mark; for another site
 * prints that site's mark and changes nothing. Site 1 is the source of the asynchronous mirror.
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('chlwm').description('update the low-water mark of a replicated volume copy')
    .argument('<vg/lv>', 'the replicated volume (async mirror source or target)')
    .argument('<site>', 'site number (1 = source)')
    .argument('<lwm>', 'commit count'))
    .action(async (target: string, siteText: string, lwmText: string, options: DeviceOptions) => {
      const { vgName, lvName } = parseVgLv(target)
      const site = count(siteText, 'site')
      const lwm = count(lwmText, 'low-water mark')
      const previous = await withReplication([vgName], options, (repl) => repl.chlwm(vgName, lvName, site, lwm))
      print(options, { vg: vgName, lv: lvName, site, previous }, `${previous}\n`)
    })
}
