import type { Command } from 'commander'
import { scanDevices } from '../../lvm/index.js'
import { addDeviceOptions, deviceList, humanBytes, print, table, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs lvs [VG] [--json]`: logical volumes with size, copies, policies and stale PP counts. */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvs').description('list logical volumes')
    .argument('[vg]', 'only this volume group'))
    .action(async (only: string | undefined, options: DeviceOptions) => {
      const { vgs } = await scanDevices(deviceList(options))
      const rows = vgs.filter((vg) => only === undefined || vg.name === only).flatMap((vg) => {
        const d = vg.result.descriptor
        const status = vg.result.status
        if (d === undefined) return []
        return d.lvs.map((lv) => {
          const stale = status === undefined ? 0 : lv.lps.flat().filter((r) =>
            ((status.stale[r.pvIndex]?.[r.pp >> 3] ?? 0) & (1 << (r.pp & 7))) !== 0).length
          return { vg: vg.name, lv: lv.name, lvId: lv.lvId, sizeBytes: lv.lps.length * d.ppSizeBytes,
            lps: lv.lps.length,
            copies: lv.copies, strict: lv.strict, schedule: lv.schedule, mwc: lv.mwc, stalePps: stale,
            dirty: status?.dirtyLvs.includes(lv.lvId) ?? false, ext: lv.ext }
        })
      })
      print(options, { lvs: rows }, table(['VG', 'LV', 'Id', 'Size', 'LPs', 'Copies', 'Strict', 'Sched', 'MWC', 'Stale'],
        rows.map((r) => [r.vg, r.lv, String(r.lvId), humanBytes(r.sizeBytes), String(r.lps), String(r.copies), r.strict,
          r.schedule, r.mwc, String(r.stalePps)])))
      const failed = vgs.find((vg) => vg.result.error !== undefined && (only === undefined || vg.name === only))
      if (failed) throw failed.result.error!
    })
}
