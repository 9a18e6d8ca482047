import type { Command } from 'commander'
import { thinOf } from '../../lvm/index.js'
import { addDeviceOptions, humanBytes, type DeviceOptions } from '../lvm-cli.js'
import { LV_DEFAULT, LV_FIELDS, LV_SORT, lvRows, type LvRow } from '../report/fields-lv.js'
import { addReportOptions, report, type ReportCliOptions } from '../report/options.js'
import { gather, type Sources } from '../report/sources.js'

/** The LVs named by `VG` or `VG/LV` (every LV without an argument), and the error of a VG that
 * could not be read, if it is among them. */
export async function selectLvs(only: string | undefined, options: DeviceOptions): Promise<{ rows: LvRow[];
  failed?: Error }> {
  const sources: Sources = await gather(options)
  const [vgName, lvName] = only === undefined ? [] : only.split('/')
  const wanted = sources.vgs.filter((vg) => vgName === undefined || vg.name === vgName)
  const rows = wanted.flatMap((vg) => (vg.descriptor === undefined ? []
    : lvRows(vg.name, vg.descriptor, vg.status, vg.active, sources.live)))
    .filter((r) => lvName === undefined || r.lv.name === lvName)
  const failed = wanted.find((vg) => vg.error !== undefined)?.error
  return failed === undefined ? { rows } : { rows, failed }
}

/** `lvmfs lvs [VG[/LV]] [-o fields] [--sort] [--units] [--json]`: logical volumes as LVM2 reports
 * them, with copies, sync, stale PPs, policies and replication state. */
export function register(program: Command): void {
  addReportOptions(addDeviceOptions(program.command('lvs').description('report logical volumes')
    .argument('[vg]', 'only this volume group (or VG/LV)')), LV_FIELDS)
    .action(async (only: string | undefined, options: DeviceOptions & ReportCliOptions) => {
      const out = report('lvs', LV_FIELDS, LV_DEFAULT, LV_SORT, options)
      const { rows, failed } = await selectLvs(only, options)
      out.print(rows, 'lv', (sorted) => ({ lvs: sorted.map(legacyJson) }))
      if (failed) throw failed
    })
}

/** The JSON lvs printed before reports had fields; kept for scripts that read it. */
function legacyJson(r: LvRow) {
  const replica = r.replica
  return { vg: r.vg, lv: r.lv.name, lvId: r.lv.lvId,
    sizeBytes: thinOf(r.lv)?.virtualBytes ?? r.lv.lps.length * r.ppSizeBytes,
    lps: r.lv.lps.length, copies: r.lv.copies, strict: r.lv.strict, schedule: r.lv.schedule, mwc: r.lv.mwc,
    stalePps: r.stalePps, dirty: r.dirty, ext: r.lv.ext, origin: replica?.origin ?? '', replica: replica?.kind ?? '',
    sync: replica?.sync ?? '', mark: replica?.lwm === undefined ? '' : String(replica.lwm),
    lag: replica?.lag === undefined ? '' : `${replica.lag.commits} commits, ` +
      `${humanBytes(replica.lag.bytes)}, ${replica.lag.seconds.toFixed(1)}s` }
}
