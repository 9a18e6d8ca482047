import { MultiBar, type SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { setTimeout as sleep } from 'node:timers/promises'
import type { VgStatusReport } from '../../engine/index.js'
import { findMounted, socketVgNames, statusOfVg } from '../daemon-cli.js'
import { stderr, stdout, type OutputStream } from '../io-context.js'
import { humanBytes, print, table } from '../lvm-cli.js'
import { humanDuration, humanRate } from '../mirror-cli.js'
import { parseIntegerOption } from '../options.js'
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
    renderTransport(status) +
    `\n${pvs}\n${lvs}\nMWC open regions: ${status.mwc.openGates}, activity-log records ${status.mwc.recordsWritten}, ` +
    `evictions ${status.mwc.evictions}\n` +
    (resyncs ? `running:\n${resyncs}` : 'running: none\n') +
    `I/O: ${io['readOps'] ?? 0} reads (${humanBytes(io['readBytes'] ?? 0)}), ${io['writeOps'] ?? 0} writes ` +
    `(${humanBytes(io['writeBytes'] ?? 0)}), ${io['fsyncOps'] ?? 0} fsyncs, ${io['copyErrors'] ?? 0} copy errors, ` +
    `${io['staleMarked'] ?? 0} partitions marked stale\n` +
    (status.replicas && status.replicas.length > 0 ? `\nreplicas:\n${renderReplicas(status.replicas)}` : '') +
    (status.replicaVgs === undefined ? '' : `replica VGs: ${status.replicaVgs.map((r) =>
      `${r.vg} (${r.state}${r.error === undefined ? '' : `: ${r.error}`})`).join(', ')}\n`) +
    renderThinPools(status) +
    renderBlockDevices(status)
}

/** Thin pools: use of data and metadata, and the low-water warning. */
function renderThinPools(status: VgStatusReport): string {
  const pools = status.thinPools ?? []
  if (pools.length === 0) return ''
  const rows = pools.map((pool) => [pool.lv, humanBytes(pool.chunkBytes),
    `${humanBytes(pool.dataUsedBlocks * pool.chunkBytes)} / ${humanBytes(pool.dataBlocks * pool.chunkBytes)} (${pool.dataPercent}%)`,
    `${pool.metadataPercent}%`, String(pool.devices.length), String(pool.transaction), pool.uncommitted ? 'yes' : 'no'])
  const warnings = pools.filter((pool) => pool.warning !== undefined).map((pool) => `  warning: ${pool.warning}\n`)
  return `\nthin pools:\n${table(['Pool', 'Block', 'Data used', 'Meta used', 'Thin LVs', 'Transaction', 'Uncommitted'], rows)}` +
    warnings.join('')
}

function renderTransport(status: VgStatusReport): string {
  const transport = status.transport
  if (transport === undefined || transport.requested === 'dev') return ''
  return transport.active === 'uring' ? `transport: FUSE over io_uring, ${transport.queues} queues\n`
    : `transport: /dev/fuse (io_uring asked for: ${transport.reason ?? 'refused'})\n`
}

/** mount --block-devices: each device, who holds it, and what its I/O bypasses. */
function renderBlockDevices(status: VgStatusReport): string {
  if (status.blockDevices === undefined) return ''
  const rows = status.blockDevices.map((device) => [device.lv, device.device, device.link, humanBytes(device.sizeBytes),
    device.readOnly ? 'r' : 'rw', device.holders.length === 0 ? '-' : device.holders.join('; '), device.note ?? ''])
  const problems = (status.blockDeviceProblems ?? []).map((problem) => `  ${problem.lv}: no block device: ${problem.problem}\n`)
  return '\nblock devices (their I/O bypasses lvmfs: not in the I/O counters, metrics or fault drills, and not ' +
    'stopped by a force-off):\n' +
    (rows.length === 0 ? '  none\n' : table(['LV', 'Device', 'Name', 'Size', 'Perm', 'Held by', 'Note'], rows)) +
    problems.join('')
}

async function statusesOf(target: string | undefined): Promise<VgStatusReport[]> {
  if (target !== undefined) return [await findMounted(target)]
  const statuses: VgStatusReport[] = []
  for (const name of socketVgNames()) {
    try { statuses.push(await statusOfVg(name)) } catch { /* stale socket */ }
  }
  return statuses
}

/** Something running that --watch shows: a resync (syncvg, scrub) or a replication copy job. */
interface Running {
  readonly key: string
  readonly label: string
  readonly done: number
  readonly total: number
  /** Bytes: resyncs; percent: jobs. */
  readonly unit: 'bytes' | 'percent'
  readonly rate?: number
  readonly eta?: number
}

function runningOf(statuses: readonly VgStatusReport[], firstSeen: Map<string, { at: number; done: number }>,
  now: number): Running[] {
  const running: Running[] = []
  for (const status of statuses) {
    for (const resync of status.resyncs) {
      running.push({ key: `${status.vg}:resync:${resync.id}`, label: `${status.vg}: ${resync.what}`,
        done: resync.doneBytes, total: resync.totalBytes, unit: 'bytes',
        ...(resync.rateBytesPerSecond === undefined ? {} : { rate: resync.rateBytesPerSecond }),
        ...(resync.etaSeconds === undefined ? {} : { eta: resync.etaSeconds }) })
    }
    for (const replica of status.replicas ?? []) {
      if (replica.state !== 'in-progress' || replica.jobId === undefined) continue
      const key = `${status.vg}:job:${replica.jobId}`
      const done = replica.percent ?? 0
      // Jobs report a percentage only: their ETA is the pace since --watch first saw them.
      const first = firstSeen.get(key) ?? { at: now, done }
      firstSeen.set(key, first)
      const pace = now > first.at && done > first.done ? (done - first.done) / ((now - first.at) / 1000) : undefined
      running.push({ key, label: `${status.vg}/${replica.lv}: ${replica.kind} job ${replica.jobId}`, done, total: 100,
        unit: 'percent', ...(pace === undefined ? {} : { eta: (100 - done) / pace }) })
    }
  }
  return running
}

function progressText(item: Running): string {
  const percent = item.total > 0 ? Math.floor((item.done * 100) / item.total) : 0
  return item.unit === 'percent' ? `${percent}%` : `${humanBytes(item.done)} of ${humanBytes(item.total)} (${percent}%)`
}

/** A bar per running item on a terminal; a line per item and refresh otherwise (scripts, logs). */
function watchView(json: boolean): { show(running: readonly Running[]): void; stop(): void } {
  const terminal = stderr()
  if (json || terminal.isTTY !== true) {
    return {
      show: (running) => {
        if (json) {
          stdout().write(JSON.stringify({ time: new Date().toISOString(), running }) + '\n')
          return
        }
        stdout().write(running.length === 0 ? 'idle\n' : running.map((item) => `${item.label}: ${progressText(item)}` +
          (item.rate === undefined ? '' : `, ${humanRate(item.rate)}`) + `, ETA ${humanDuration(item.eta)}\n`).join(''))
      },
      stop: () => {},
    }
  }
  const bars = new MultiBar({ stream: terminal as OutputStream as NodeJS.WritableStream, hideCursor: true,
    clearOnComplete: false, format: '{bar} {progress} | {rate} | ETA {eta_text} | {label}' })
  const shown = new Map<string, SingleBar>()
  return {
    show: (running) => {
      for (const [key, bar] of shown) {
        if (!running.some((item) => item.key === key)) {
          bars.remove(bar)
          shown.delete(key)
        }
      }
      for (const item of running) {
        const payload = { label: item.label, progress: progressText(item),
          rate: item.unit === 'bytes' ? humanRate(item.rate) : '-', eta_text: humanDuration(item.eta) }
        const bar = shown.get(item.key) ?? bars.create(item.total, 0, payload)
        shown.set(item.key, bar)
        bar.setTotal(Math.max(item.total, item.done))
        bar.update(item.done, payload)
      }
    },
    stop: () => bars.stop(),
  }
}

/** `lvmfs status --watch`: refreshes until Ctrl-C, or with --until-idle until nothing runs. */
async function watch(target: string | undefined, options: { json?: boolean; untilIdle?: boolean;
  interval: string }): Promise<void> {
  const intervalMs = parseIntegerOption(options.interval, '--interval', 1, 3600) * 1000
  const view = watchView(options.json === true)
  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  process.once('SIGINT', onSignal)
  const firstSeen = new Map<string, { at: number; done: number }>()
  try {
    while (!stop.signal.aborted) {
      const running = runningOf(await statusesOf(target), firstSeen, Date.now())
      view.show(running)
      if (options.untilIdle === true && running.length === 0) break
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined)
    }
  } finally {
    process.off('SIGINT', onSignal)
    view.stop()
  }
}

/** `lvmfs status [VG|MOUNTPOINT] [--json] [--watch [--until-idle] [--interval S]]`: the state of
 * one or every mounted VG, or a live view of what runs in them. */
export function register(program: Command): void {
  program.command('status')
    .description('show PV states, stale partitions, MWC, running resyncs and I/O counters of mounted VGs')
    .argument('[target]', 'volume group name or mount point (default: every mounted VG)')
    .option('--json', 'print JSON (with --watch: one line per refresh)')
    .option('--watch', 'a live view of running resyncs and copy jobs, with progress and ETA')
    .option('--until-idle', 'with --watch: exit once nothing is running')
    .option('--interval <seconds>', 'with --watch: seconds between refreshes', '1')
    .action(async (target: string | undefined, options: { json?: boolean; watch?: boolean; untilIdle?: boolean;
      interval: string }) => {
      if (options.watch === true) return await watch(target, options)
      const statuses = await statusesOf(target)
      print(options, target === undefined ? statuses : statuses[0],
        statuses.length === 0 ? 'no mounted volume groups\n' : statuses.map(render).join('\n'))
    })
}
