import type { Command } from 'commander'
import type { VgStatusReport } from '../../engine/status.js'
import { findMounted, socketVgNames, statusOfVg } from '../daemon-cli.js'
import { humanBytes, print, table } from '../lvm-cli.js'
import { humanDuration, humanRate } from '../mirror-cli.js'
import { renderReplicas } from './replica.js'

function render(status: VgStatusReport): string {
  const pvs = table(['#', 'PV', 'State', 'Stale PPs'], status.pvs.map((pv) =>
    [String(pv.index), pv.path, pv.state, String(pv.stalePps)]))
  const lvs = table(['LV', 'Size', 'Copies', 'MWC', 'AL used/size', 'Stale LPs', 'To resync', 'Dirty', 'Open r/w'],
    status.lvs.map((lv) => [lv.name, humanBytes(lv.sizeBytes), String(lv.copies), lv.mwc,
      lv.copies > 1 && lv.mwc === 'active' ? `${lv.activeExtents}/${lv.alExtents}` : '-', String(lv.stalePartitions),
      lv.stalePartitions > 0 ? humanBytes(lv.resyncPendingBytes) : '-', lv.dirty ? 'yes' : 'no',
      `${lv.openReaders}/${lv.openWriters}`]))
  const resyncs = status.resyncs.map((r) =>
    `  ${r.what}: ${humanBytes(r.doneBytes)} of ${humanBytes(r.totalBytes)}` +
    (r.rateBytesPerSecond === undefined ? '' : `, ${humanRate(r.rateBytesPerSecond)}, ETA ${humanDuration(r.etaSeconds)}`) +
    '\n').join('')
  const io = status.io
  return `volume group ${status.vg} (${status.state}, seq ${status.seq}) at ${status.mountpoint}, pid ${status.pid}\n` +
    `\n${pvs}\n${lvs}\nMWC open regions: ${status.mwc.openGates}, activity-log records ${status.mwc.recordsWritten}, ` +
    `evictions ${status.mwc.evictions}\n` +
    (resyncs ? `running:\n${resyncs}` : 'running: none\n') +
    `I/O: ${io['readOps'] ?? 0} reads (${humanBytes(io['readBytes'] ?? 0)}), ${io['writeOps'] ?? 0} writes ` +
    `(${humanBytes(io['writeBytes'] ?? 0)}), ${io['fsyncOps'] ?? 0} fsyncs, ${io['copyErrors'] ?? 0} copy errors, ` +
    `${io['staleMarked'] ?? 0} partitions marked stale\n` +
    (status.replicas && status.replicas.length > 0 ? `\nreplicas:\n${renderReplicas(status.replicas)}` : '')
}

/** `lvmfs status [VG|MOUNTPOINT] [--json]`: the state of one or every mounted VG. */
export function register(program: Command): void {
  program.command('status')
    .description('show PV states, stale partitions, MWC, running resyncs and I/O counters of mounted VGs')
    .argument('[target]', 'volume group name or mount point (default: every mounted VG)')
    .option('--json', 'print JSON')
    .action(async (target: string | undefined, options: { json?: boolean }) => {
      const statuses: VgStatusReport[] = []
      if (target !== undefined) statuses.push(await findMounted(target))
      else {
        for (const name of socketVgNames()) {
          try { statuses.push(await statusOfVg(name)) } catch { /* stale socket */ }
        }
      }
      print(options, target === undefined ? statuses : statuses[0],
        statuses.length === 0 ? 'no mounted volume groups\n' : statuses.map(render).join('\n'))
    })
}
