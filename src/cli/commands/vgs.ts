import type { Command } from 'commander'
import { stderr } from '../io-context.js'
import { LvmfsError } from '../../errors/index.js'
import { scanDevices, type ScannedVg } from '../../lvm/index.js'
import { addDeviceOptions, deviceList, humanBytes, print, table, type DeviceOptions } from '../lvm-cli.js'

function summary(vg: ScannedVg) {
  const d = vg.result.descriptor
  const total = d?.pvs.reduce((n, p) => n + p.ppCount, 0) ?? 0
  const used = d?.lvs.reduce((n, lv) => n + lv.lps.length * lv.copies, 0) ?? 0
  const missing = vg.result.vvgOut.filter((o) => o.status === 'LVM_PVMISSING' || o.status === 'LVM_NONAME').length
  return { vg: vg.name, vgId: vg.vgId, rc: vg.result.rc, error: vg.result.error?.code ?? null,
    pvs: d?.pvs.length ?? 0, missingPvs: missing, lvs: d?.lvs.length ?? 0, seq: d?.seq ?? 0,
    ppSizeBytes: d?.ppSizeBytes ?? 0, totalPps: total, freePps: total - used,
    copies: vg.result.copies ?? null, vvgOut: vg.result.vvgOut,
    duplicates: vg.result.vvgOut.filter((o) => o.status === 'LVM_DUPPVID').length }
}

/** `lvmfs vgs [--json]`: each VG as a read-only vary-on sees it (same quorum rules). Exits 5 when
 * some VG cannot be read trustworthily (no quorum, fork). */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgs').description('list volume groups'))
    .action(async (options: DeviceOptions) => {
      const { vgs } = await scanDevices(deviceList(options))
      const rows = vgs.map(summary)
      print(options, { vgs: rows }, table(['VG', 'PVs', 'Missing', 'LVs', 'PPSize', 'PPs', 'Free', 'Seq', 'Copies', 'State'],
        rows.map((r) => [r.vg, String(r.pvs), String(r.missingPvs), String(r.lvs), humanBytes(r.ppSizeBytes),
          String(r.totalPps), String(r.freePps), String(r.seq), r.copies ? `${r.copies.present}/${r.copies.total}` : '-',
          r.error ?? (r.duplicates > 0 ? 'duplicate-pv-id' : r.missingPvs > 0 ? 'partial' : 'ok')])))
      for (const vg of vgs) for (const bad of vg.result.copies?.bad ?? []) stderr().write(`  bad copy: ${bad}\n`)
      const failed = vgs.find((vg) => vg.result.error !== undefined)
      if (failed) throw failed.result.error!
      const dup = rows.find((r) => r.duplicates > 0)
      if (dup) {
        throw new LvmfsError('LVM_DUPPVID', `volume group "${dup.vg}" has PVs whose id appears on several devices`, {
          hint: 'Remove or relabel (pvcreate --force) the copied devices; lvmfs never picks one.' })
      }
    })
}
