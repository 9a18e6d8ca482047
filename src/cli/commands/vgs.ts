import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { stderr } from '../io-context.js'
import { addDeviceOptions, type DeviceOptions } from '../lvm-cli.js'
import {
  allocatedPps, duplicatePvs, missingPvs, totalPps, VG_DEFAULT, VG_FIELDS, VG_SORT, type VgRow,
} from '../report/fields-vg.js'
import { addReportOptions, report, type ReportCliOptions } from '../report/options.js'
import type { VgView } from '../report/sources.js'
import { gather } from '../report/sources.js'

export function vgRowOf(vg: VgView): VgRow {
  return { name: vg.name, vgId: vg.vgId, rc: vg.rc, vvgOut: vg.vvgOut, active: vg.active,
    ...(vg.descriptor === undefined ? {} : { descriptor: vg.descriptor }),
    ...(vg.copies === undefined ? {} : { copies: vg.copies }),
    ...(vg.error === undefined ? {} : { error: vg.error.code }) }
}

/** What a VG that cannot be trusted makes vgs and vgdisplay exit with, after printing it. */
export function vgFailure(vgs: readonly VgView[]): Error | undefined {
  const failed = vgs.find((vg) => vg.error !== undefined)
  if (failed) return failed.error
  const dup = vgs.find((vg) => duplicatePvs(vgRowOf(vg)) > 0)
  if (dup === undefined) return undefined
  return new LvmfsError('LVM_DUPPVID', `volume group "${dup.name}" has PVs whose id appears on several devices`, {
    hint: 'Remove or relabel (pvcreate --force) the copied devices; lvmfs never picks one.' })
}

/** `lvmfs vgs [-o fields] [--sort] [--units] [--json]`: each VG as a read-only vary-on sees it
 * (same quorum rules). Exits 5 when some VG cannot be read trustworthily (no quorum, fork). */
export function register(program: Command): void {
  addReportOptions(addDeviceOptions(program.command('vgs').description('report volume groups')), VG_FIELDS)
    .action(async (options: DeviceOptions & ReportCliOptions) => {
      const out = report('vgs', VG_FIELDS, VG_DEFAULT, VG_SORT, options)
      const { vgs } = await gather(options)
      out.print(vgs.map(vgRowOf), 'vg', (sorted) => ({ vgs: sorted.map(legacyJson) }))
      for (const vg of vgs) for (const bad of vg.copies?.bad ?? []) stderr().write(`  bad copy: ${bad}\n`)
      const failed = vgFailure(vgs)
      if (failed) throw failed
    })
}

/** The JSON vgs printed before reports had fields; kept for scripts that read it. */
function legacyJson(r: VgRow) {
  const total = totalPps(r)
  return { vg: r.name, vgId: r.vgId, rc: r.rc, error: r.error ?? null,
    pvs: r.descriptor?.pvs.length ?? 0, missingPvs: missingPvs(r), lvs: r.descriptor?.lvs.length ?? 0,
    seq: r.descriptor?.seq ?? 0, ppSizeBytes: r.descriptor?.ppSizeBytes ?? 0, totalPps: total,
    freePps: total - allocatedPps(r), copies: r.copies ?? null, vvgOut: r.vvgOut, duplicates: duplicatePvs(r) }
}
