/**
 * Prometheus metrics of a mounted VG (`lvmfs mount --metrics HOST:PORT`). Nothing is counted
 * here: every scrape reads what the native data path, the status report and the replication
 * engine already keep, so serving metrics adds no work to I/O.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client'
import { LvmfsError } from '../errors/index.js'
import type { NativeOpStats, NativeVolumeStats } from '../fuse/index.js'
import type { MountedVg } from './mounted-vg.js'
import { statusOf } from './status.js'

const OPS = ['read', 'write', 'fsync', 'fallocate'] as const
const PV_STATES = ['active', 'missing', 'removed'] as const

type Labels<T extends string> = Partial<Record<T, string | number>>
type NativeHistogramObject = MetricObjectWithValues<MetricValueWithName<'vg' | 'lv' | 'op'>>
/** prom-client's typings make `type` a numeric enum; its registry writes the string it holds. */
const HISTOGRAM = 'histogram' as unknown as NativeHistogramObject['type']

const LATENCY_HELP = 'Latency of LV requests served natively, from the read off /dev/fuse to the reply ' +
  '(gate waits included)'

/**
 * The native latency buckets as a Prometheus histogram. They are counted natively (log2 of µs),
 * so this histogram observes nothing: a scrape copies the buckets, made cumulative.
 */
class NativeLatencyHistogram extends Histogram<'vg' | 'lv' | 'op'> {
  constructor(registry: Registry, private readonly read: () => Array<{ labels: Labels<'vg' | 'lv' | 'op'>;
    stats: NativeOpStats }>) {
    super({ name: 'lvmfs_lv_io_latency_seconds', help: LATENCY_HELP, labelNames: ['vg', 'lv', 'op'],
      registers: [registry] })
  }

  override async get(): Promise<NativeHistogramObject> {
    return await Promise.resolve(this.snapshot())
  }

  /** What prom-client's registry reads to write the text format (it prefers this to get()). */
  async getForPromString(): Promise<NativeHistogramObject> {
    return await Promise.resolve(this.snapshot())
  }

  private snapshot(): NativeHistogramObject {
    const name = 'lvmfs_lv_io_latency_seconds'
    const values: Array<MetricValueWithName<'vg' | 'lv' | 'op'>> = []
    for (const { labels, stats } of this.read()) {
      let cumulative = 0
      stats.buckets.forEach((count, bucket) => {
        cumulative += count
        const le = bucket === stats.buckets.length - 1 ? '+Inf' : 2 ** bucket / 1e6
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le } as Labels<'vg' | 'lv' | 'op'>,
          value: cumulative })
      })
      values.push({ metricName: `${name}_sum`, labels, value: stats.latencyNs / 1e9 })
      values.push({ metricName: `${name}_count`, labels, value: stats.ops })
    }
    return { name, help: LATENCY_HELP, type: HISTOGRAM, values, aggregator: 'sum', collect: () => {} }
  }
}

/** A counter or gauge whose values are read at scrape time. */
function collected<T extends string>(kind: typeof Counter | typeof Gauge, registry: Registry, name: string,
  help: string, labelNames: readonly T[], read: () => ReadonlyArray<readonly [Labels<T>, number]>): void {
  if (kind === Counter) {
    new Counter<T>({ name, help, labelNames, registers: [registry], collect() {
      this.reset()
      for (const [labels, value] of read()) this.inc(labels, value)
    } })
    return
  }
  new Gauge<T>({ name, help, labelNames, registers: [registry], collect() {
    this.reset()
    for (const [labels, value] of read()) this.set(labels, value)
  } })
}

/** The registry of one mounted VG: its own, never prom-client's global one. */
export function metricsRegistry(mounted: MountedVg): Registry {
  const registry = new Registry()
  const vg = (): string => mounted.vg.name
  const volumes = (): Array<{ lv: string; stats: NativeVolumeStats }> => mounted.lvs().flatMap((lv) => {
    const stats = mounted.volumeStats(lv)
    return stats === undefined ? [] : [{ lv: lv.name, stats }]
  })
  const perLv = (value: (stats: NativeVolumeStats) => number) => (): Array<[Labels<'vg' | 'lv'>, number]> =>
    volumes().map(({ lv, stats }) => [{ vg: vg(), lv }, value(stats)])
  collected(Counter, registry, 'lvmfs_lv_reads_total', 'READ requests answered', ['vg', 'lv'],
    perLv((stats) => stats.read.ops))
  collected(Counter, registry, 'lvmfs_lv_writes_total', 'WRITE requests answered', ['vg', 'lv'],
    perLv((stats) => stats.write.ops))
  collected(Counter, registry, 'lvmfs_lv_read_bytes_total', 'Bytes read', ['vg', 'lv'],
    perLv((stats) => stats.read.bytes))
  collected(Counter, registry, 'lvmfs_lv_write_bytes_total', 'Bytes written', ['vg', 'lv'],
    perLv((stats) => stats.write.bytes))
  collected(Counter, registry, 'lvmfs_lv_fsyncs_total', 'FSYNC requests answered', ['vg', 'lv'],
    perLv((stats) => stats.fsync.ops))
  collected(Counter, registry, 'lvmfs_lv_io_errors_total', 'Requests answered with an error', ['vg', 'lv', 'op'],
    () => volumes().flatMap(({ lv, stats }) => OPS.map((op) => [{ vg: vg(), lv, op }, stats[op].errors] as const)))
  new NativeLatencyHistogram(registry, () => volumes().flatMap(({ lv, stats }) =>
    OPS.map((op) => ({ labels: { vg: vg(), lv, op }, stats: stats[op] }))))

  // One status report per scrape, shared by the metrics read from it: a scrape starts every
  // collect in one turn of the event loop.
  let report: ReturnType<typeof statusOf> | undefined
  const status = (): ReturnType<typeof statusOf> => {
    if (report === undefined) {
      report = statusOf(mounted, [...mounted.activities.values()], mounted.openGates)
      setImmediate(() => { report = undefined })
    }
    return report
  }
  collected(Gauge, registry, 'lvmfs_lv_stale_partitions', 'LPs with a stale copy or a copy on a PV not active',
    ['vg', 'lv'], () => status().lvs.map((lv) => [{ vg: vg(), lv: lv.name }, lv.stalePartitions]))
  collected(Gauge, registry, 'lvmfs_lv_resync_pending_bytes', 'Bytes a resync of the stale copies would copy now',
    ['vg', 'lv'], () => status().lvs.map((lv) => [{ vg: vg(), lv: lv.name }, lv.resyncPendingBytes]))
  collected(Gauge, registry, 'lvmfs_pv_state', 'PV state: 1 for the state the PV is in, 0 for the others',
    ['vg', 'pv', 'state'], () => status().pvs.flatMap((pv) =>
      PV_STATES.map((state) => [{ vg: vg(), pv: pv.path, state }, pv.state === state ? 1 : 0] as const)))
  collected(Gauge, registry, 'lvmfs_pv_stale_partitions', 'Stale PPs on the PV', ['vg', 'pv'],
    () => status().pvs.map((pv) => [{ vg: vg(), pv: pv.path }, pv.stalePps]))
  collected(Counter, registry, 'lvmfs_pv_io_errors_total', 'Failed copy I/Os of the data path on the PV', ['vg', 'pv'],
    () => status().pvs.map((pv) => [{ vg: vg(), pv: pv.path }, mounted.pvIoErrors.get(pv.pvId) ?? 0]))
  collected(Gauge, registry, 'lvmfs_vg_online', '1 while the VG is varied on and serving, 0 once forced off',
    ['vg'], () => [[{ vg: vg() }, mounted.vg.state === 'online' ? 1 : 0]])

  const resyncs = (value: (resync: ReturnType<typeof statusOf>['resyncs'][number]) => number | undefined) =>
    (): Array<[Labels<'vg' | 'id' | 'what'>, number]> => status().resyncs.flatMap((resync) => {
      const measured = value(resync)
      return measured === undefined ? [] : [[{ vg: vg(), id: resync.id, what: resync.what }, measured]]
    })
  collected(Gauge, registry, 'lvmfs_resync_done_bytes', 'Bytes a running resync, syncvg or scrub has done',
    ['vg', 'id', 'what'], resyncs((resync) => resync.doneBytes))
  collected(Gauge, registry, 'lvmfs_resync_total_bytes', 'Bytes a running resync, syncvg or scrub will do',
    ['vg', 'id', 'what'], resyncs((resync) => resync.totalBytes))
  collected(Gauge, registry, 'lvmfs_resync_rate_bytes_per_second', 'Measured copy rate of a running resync',
    ['vg', 'id', 'what'], resyncs((resync) => resync.rateBytesPerSecond))

  // Replica lag reads superblocks: once per scrape, in the async collect of the first lag gauge.
  let lags: Array<{ labels: Labels<'vg' | 'lv' | 'origin'>; commits: number; bytes: number; seconds: number }> = []
  const lagGauge = (name: string, help: string, value: (lag: (typeof lags)[number]) => number,
    refresh: boolean): void => {
    new Gauge<'vg' | 'lv' | 'origin'>({ name, help, labelNames: ['vg', 'lv', 'origin'], registers: [registry],
      async collect() {
        if (refresh) {
          const replicas = mounted.vg.state === 'online'
            ? await mounted.replication.statuses(mounted.vg.name).catch(() => []) : []
          lags = replicas.flatMap((replica) => replica.lag === undefined ? [] : [{
            labels: { vg: replica.vg, lv: replica.lv, origin: replica.origin }, ...replica.lag }])
        }
        this.reset()
        for (const lag of lags) this.set(lag.labels, value(lag))
      } })
  }
  lagGauge('lvmfs_replica_lag_commits', 'Commits of the origin an async mirror has not applied', (lag) => lag.commits,
    true)
  lagGauge('lvmfs_replica_lag_bytes', 'Bytes of the origin an async mirror has not applied', (lag) => lag.bytes, false)
  lagGauge('lvmfs_replica_lag_seconds', 'Age of the oldest commit an async mirror has not applied',
    (lag) => lag.seconds, false)
  return registry
}

/** `HOST:PORT` of --metrics, checked so a typo is a usage error before the daemon starts. */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text)
  const port = match === null ? NaN : Number(match[2])
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new LvmfsError('ENGINE_USAGE', `invalid --metrics "${text}"`, { detail: 'Expected HOST:PORT, e.g. ' +
      '127.0.0.1:9633 (port 0: any free port).' })
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

/** Serves `registry` as Prometheus text on GET /metrics. */
export class MetricsServer {
  private constructor(private readonly server: Server) {}

  static async listen(registry: Registry, address: string): Promise<MetricsServer> {
    const { host, port } = parseMetricsAddress(address)
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '/').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n')
        return
      }
      registry.metrics().then((text) => {
        response.writeHead(200, { 'content-type': registry.contentType }).end(text)
      }, (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`)
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new LvmfsError('ENGINE_USAGE', `--metrics ${address}: ${error.message}`,
        { cause: error })))
      server.listen(port, host, () => resolve())
    })
    return new MetricsServer(server)
  }

  /** Where it listens (the port chosen when 0 was asked). */
  get address(): { host: string; port: number } {
    const info = this.server.address() as AddressInfo
    return { host: info.address, port: info.port }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
