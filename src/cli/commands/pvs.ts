import type { Command } from 'commander'
import { addDeviceOptions, type DeviceOptions } from '../lvm-cli.js'
import { PV_DEFAULT, PV_FIELDS, PV_SORT, pvRows, type PvRow } from '../report/fields-pv.js'
import { addReportOptions, report, type ReportCliOptions } from '../report/options.js'
import { gather, type Sources } from '../report/sources.js'

export function pvRowsOf(sources: Sources): PvRow[] {
  return pvRows(sources.devices, sources.vgs.map((vg) => ({ name: vg.name, vgId: vg.vgId, vvgOut: vg.vvgOut,
    ...(vg.descriptor === undefined ? {} : { descriptor: vg.descriptor }),
    ...(vg.status === undefined ? {} : { status: vg.status }),
    ...(vg.pvState === undefined ? {} : { pvState: vg.pvState }) })))
}

/** `lvmfs pvs [-o fields] [--sort] [--units] [--json]`: every labelled device with its VG
 * membership, and the member PVs no scanned device carries. */
export function register(program: Command): void {
  addReportOptions(addDeviceOptions(program.command('pvs').description('report physical volumes')), PV_FIELDS)
    .action(async (options: DeviceOptions & ReportCliOptions) => {
      const out = report('pvs', PV_FIELDS, PV_DEFAULT, PV_SORT, options)
      const sources = await gather(options)
      out.print(pvRowsOf(sources), 'pv', (sorted) => ({
        pvs: sorted.map((r) => ({ path: r.path, pvId: r.pvId, vg: r.vg, status: r.status,
          ppSizeBytes: r.ppSizeBytes, ppCount: r.ppCount, freePps: r.ppCount - r.allocatedPps,
          sizeBytes: r.deviceSizeBytes })),
        others: sources.devices.filter((d) => !d.label).map((d) => ({ path: d.path, problem: d.problem })) }))
    })
}
