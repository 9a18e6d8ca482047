import type { Command } from 'commander'
import { scanDevices, type LvDescriptor } from '../../lvm/index.js'
import { replicaOf, type ReplicaStatus } from '../../replication/index.js'
import { onlineVg } from '../io-context.js'
import { addDeviceOptions, deviceList, humanBytes, print, table, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs lvs [VG] [--json]`: logical volumes with size, copies, policies and stale PP counts. */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvs').description('list logical volumes')
    .argument('[vg]', 'only this volume group'))
    .action(async (only: string | undefined, options: DeviceOptions) => {
      const { vgs } = await scanDevices(deviceList(options))
      // Mark and lag exist only in the daemon serving the VG (forwarded lvs runs there).
      const live = new Map<string, ReplicaStatus>()
      for (const vg of vgs) {
        for (const status of await onlineVg(vg.name)?.replication?.statuses(vg.name) ?? []) {
          live.set(`${status.vg}/${status.lv}`, status)
        }
      }
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
            dirty: status?.dirtyLvs.includes(lv.lvId) ?? false, ext: lv.ext, ...replicaColumns(vg.name, lv, live) }
        })
      })
      print(options, { lvs: rows }, table(['VG', 'LV', 'Id', 'Size', 'LPs', 'Copies', 'Strict', 'Sched', 'MWC', 'Stale',
        'Origin', 'Replica', 'Sync', 'Mark', 'Lag'],
      rows.map((r) => [r.vg, r.lv, String(r.lvId), humanBytes(r.sizeBytes), String(r.lps), String(r.copies), r.strict,
        r.schedule, r.mwc, String(r.stalePps), r.origin, r.replica, r.sync, r.mark, r.lag])))
      const failed = vgs.find((vg) => vg.result.error !== undefined && (only === undefined || vg.name === only))
      if (failed) throw failed.result.error!
    })
}

/** Origin, replica type and sync state come from the LV's replication metadata; mark and lag
 * from the daemon's replication engine when the VG is mounted. */
function replicaColumns(vgName: string, lv: LvDescriptor, live: ReadonlyMap<string, ReplicaStatus>):
  { origin: string; replica: string; sync: string; mark: string; lag: string } {
  const replica = replicaOf(lv)
  const status = live.get(`${vgName}/${lv.name}`)
  if (replica === undefined) return { origin: '', replica: '', sync: '', mark: '', lag: '' }
  return { origin: status?.origin ?? `${replica.source.vg}/${replica.source.lv}`, replica: replica.kind,
    sync: status?.syncState ?? replica.state, mark: status?.lwm === undefined ? '' : String(status.lwm),
    lag: status?.lag === undefined ? '' : `${status.lag.commits} commits, ${humanBytes(status.lag.bytes)}, ${status.lag.seconds.toFixed(1)}s` }
}
