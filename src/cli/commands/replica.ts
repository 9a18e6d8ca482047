import type { Command } from 'commander'
import type { ReplicaStatus } from '../../replication/index.js'
import { addDeviceOptions, humanBytes, print, requireName, table, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv } from '../mirror-cli.js'
import { withReplication } from './replication-common.js'

export function renderReplicas(rows: readonly ReplicaStatus[]): string {
  if (rows.length === 0) return 'no replicas\n'
  // Rows from several VGs (status shows targets on another site's VG too) name the VG.
  const mixed = new Set(rows.map((r) => r.vg)).size > 1
  return table(['LV', 'Origin', 'Type', 'Sync', 'Job', 'Mark', 'Lag (commits)', 'Lag', 'Behind'], rows.map((r) => [
    mixed ? `${r.vg}/${r.lv}` : r.lv, r.origin, r.kind, r.syncState, r.jobId ?? '', r.lwm === undefined ? '' : String(r.lwm),
    r.lag === undefined ? '' : String(r.lag.commits), r.lag === undefined ? '' : humanBytes(r.lag.bytes),
    r.lag === undefined ? '' : `${r.lag.seconds.toFixed(1)}s`]))
}

/**
 * `lvmfs replica split VG/LV`: a mirror target (or a complete copy) becomes an independent,
 * writable volume. `lvmfs replica list VG`: origin, type, sync state, mark and lag of every
 * replica in the VG.
 */
export function register(program: Command): void {
  const replica = program.command('replica').description('manage replicas (clones, copies, mirrors)')
  addDeviceOptions(replica.command('split').description('make a mirror target or complete copy an independent volume')
    .argument('<vg/lv>', 'the replica'))
    .action(async (target: string, options: DeviceOptions) => {
      const { vgName, lvName } = parseVgLv(target)
      await withReplication([vgName], options, (repl) => repl.split(vgName, lvName))
      print(options, { vg: vgName, lv: lvName, state: 'split' }, `${vgName}/${lvName} is now an independent volume\n`)
    })
  addDeviceOptions(replica.command('list').description('origin, type, sync state, mark and lag of the replicas of a VG')
    .argument('<vg>', 'volume group'))
    .action(async (vgName: string, options: DeviceOptions) => {
      requireName('volume group', vgName)
      const rows = await withReplication([vgName], options, (repl) => repl.statuses(vgName))
      print(options, rows, renderReplicas(rows))
    })
}
