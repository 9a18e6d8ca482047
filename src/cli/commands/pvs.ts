import type { Command } from 'commander'
import { scanDevices } from '../../lvm/index.js'
import { addDeviceOptions, deviceList, humanBytes, print, table, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs pvs [--json]`: every scanned device with its label and VG membership. */
export function register(program: Command): void {
  addDeviceOptions(program.command('pvs').description('list physical volumes'))
    .action(async (options: DeviceOptions) => {
      const { devices, vgs } = await scanDevices(deviceList(options))
      const counts = new Map<string, number>()
      for (const d of devices) if (d.label) counts.set(d.label.pvId, (counts.get(d.label.pvId) ?? 0) + 1)
      const rows = devices.filter((d) => d.label !== undefined).map((d) => {
        const label = d.label!
        const vg = vgs.find((v) => v.vgId === label.vgId)
        const pvIndex = vg?.result.descriptor?.pvs.findIndex((p) => p.pvId === label.pvId) ?? -1
        const out = vg?.result.vvgOut.find((o) => o.name === d.path)
        const allocated = pvIndex < 0 ? 0 : (vg!.result.descriptor!.lvs.flatMap((lv) => lv.lps.flat())
          .filter((ref) => ref.pvIndex === pvIndex).length)
        const duplicate = (counts.get(label.pvId) ?? 0) > 1
        return { path: d.path, pvId: label.pvId, vg: vg?.name ?? '', status: duplicate ? 'LVM_DUPPVID'
          : out?.status ?? (vg ? 'unknown' : 'no VG'), ppSizeBytes: label.ppSizeLog2 ? 2 ** label.ppSizeLog2 : 0,
        ppCount: label.ppCount, freePps: label.ppCount - allocated, sizeBytes: label.deviceSizeBytes }
      })
      print(options, { pvs: rows, others: devices.filter((d) => !d.label).map((d) => ({ path: d.path,
        problem: d.problem })) }, table(['PV', 'VG', 'Status', 'PSize', 'PPs', 'Free', 'PV id'],
        rows.map((r) => [r.path, r.vg, r.status, humanBytes(r.sizeBytes), String(r.ppCount), String(r.freePps),
          r.pvId])))
    })
}
