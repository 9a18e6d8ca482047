import type { Command } from 'commander'
import { PV_STATUS, varyOnVg } from '../../lvm/index.js'
import { onlineVg, stderr, vgRegistry } from '../io-context.js'
import { addDeviceOptions, addVaryOnOptions, deviceList, errorOf, print, requireName, requireVgExists, table,
  varyOnFlagsOf, type DeviceOptions, type VaryOnCliOptions } from '../lvm-cli.js'

interface Options extends DeviceOptions, VaryOnCliOptions {}

/**
 * `lvmfs varyonvg VG [--force] [--no-resync] [--missing-ok] [--noname-ok] [--no-open]`.
 * Runs lvm_varyonvg (recovery, MISSING flags, forced removal are persisted) and prints vvg_out.
 * vvg_in is every scanned device whose label names the VG; a member not found is NONAME.
 * --force implies --missing-ok and --noname-ok (override needs misspv_von).
 */
export function register(program: Command): void {
  addDeviceOptions(addVaryOnOptions(program.command('varyonvg')
    .description('vary a volume group on: check quorum, recover descriptors, report every PV')
    .argument('<vg>', 'volume group name')))
    .action(async (vgName: string, options: Options) => {
      requireName('volume group', vgName)
      const devices = deviceList(options)
      await requireVgExists(vgName, devices)
      const force = options.force === true
      if (force) stderr().write('warning: --force may adopt an older descriptor; missing PVs become REMOVED\n')
      const result = await varyOnVg({ vgName, devices, flags: varyOnFlagsOf(options), registry: vgRegistry() })
      // A vary-on of the VG a daemon serves brings MISSING PVs back; the VG stays online.
      if (onlineVg(vgName) === undefined) await result.vg?.varyOff()
      const rows = result.vvgOut.map((o) => [o.pvId, o.name ?? '-', o.status, String(PV_STATUS[o.status])])
      print(options, { vg: vgName, rc: result.rc, rcRef: result.rcRef, vvgOut: result.vvgOut,
        error: result.error?.toJSON() ?? null },
      table(['PV id', 'Name', 'Status', 'Code'], rows) + `rc ${result.rc} (${result.rcRef ?? '-'})\n`)
      if (result.vg === undefined) throw errorOf(result)
    })
}
