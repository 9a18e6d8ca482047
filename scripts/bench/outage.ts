/**
 * A PV outage and its re-add (bench:e2e): what the resync copies against what was written while
 * the PV was away, on a mounted 2-copy LV (issue 12: bytes resynced <= 1.1 x bytes written).
 *
 * For each workload: the PV disappears (`lvmfs fault --disappear`), fio writes `writeBytes`
 * exactly once each (a random map, no block twice) for the outage, the PV comes back
 * (`fault --clear`, `varyonvg --no-resync`), and `syncvg --json` reports the bytes it copied.
 * Workloads:
 *  - `region`: 4 KiB random writes into one 64 MiB region of the LV;
 *  - `scattered`: 64 KiB random writes over the whole LV (64 MiB in all), the case partition
 *    granularity handles worst: it would copy every partition touched.
 * What partition granularity (the VGSA alone, lvmfs before the bitmap) would have copied is
 * reported beside it: stale partitions x PP size, from `lvmfs status` before the resync.
 */
import { execFileSync } from 'node:child_process'

const MiB = 1024 * 1024

export interface OutageSetup {
  readonly lvmfs: (args: string[]) => string
  readonly vg: string
  readonly lvName: string
  /** The LV file in the mount. */
  readonly file: string
  readonly lvBytes: number
  /** The PV that goes away. */
  readonly gonePv: string
  readonly ppBytes: number
  readonly devices: string
  readonly outageSeconds: number
}

export interface OutageRow {
  readonly workload: 'region' | 'scattered'
  readonly writtenBytes: number
  readonly resyncedBytes: number
  /** What a resync by whole partitions would have copied. */
  readonly partitionBytes: number
  readonly resyncSeconds: number
}

function fioArgs(workload: OutageRow['workload'], file: string, lvBytes: number, writeBytes: number): string[] {
  const common = [`--filename=${file}`, '--name=outage', '--ioengine=libaio', '--direct=1', '--iodepth=16',
    '--rw=randwrite', `--io_size=${writeBytes}`, '--randrepeat=0', '--output-format=terse']
  return workload === 'region'
    ? [...common, '--bs=4k', `--offset=${Math.floor(lvBytes / 3 / MiB) * MiB}`, `--size=${writeBytes}`]
    : [...common, '--bs=64k', `--size=${lvBytes}`]
}

export async function outageRows(setup: OutageSetup, writeBytes = 64 * MiB): Promise<OutageRow[]> {
  const rows: OutageRow[] = []
  for (const workload of ['region', 'scattered'] as const) {
    setup.lvmfs(['fault', setup.vg, setup.gonePv, '--disappear'])
    const started = Date.now()
    try {
      execFileSync('fio', fioArgs(workload, setup.file, setup.lvBytes, writeBytes), { stdio: 'ignore' })
      const left = setup.outageSeconds * 1000 - (Date.now() - started)
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left))
    } finally {
      setup.lvmfs(['fault', setup.vg, setup.gonePv, '--clear'])
    }
    // VGSA stale bits (staleCopies), not stalePartitions: the PV still counts as missing here.
    const status = JSON.parse(setup.lvmfs(['status', setup.vg, '--json'])) as {
      lvs: Array<{ name: string, staleCopies: Array<{ fromLp: number, toLp: number }> }> }
    const lv = status.lvs.find((candidate) => candidate.name === setup.lvName)!
    const staleLps = lv.staleCopies.reduce((sum, run) => sum + run.toLp - run.fromLp + 1, 0)
    setup.lvmfs(['varyonvg', setup.vg, '--no-resync', '--devices', setup.devices])
    const resyncStarted = process.hrtime.bigint()
    const report = JSON.parse(setup.lvmfs(['syncvg', setup.vg, '--json', '--devices', setup.devices])
      .trim().split('\n').pop()!) as { copiedBytes: number }
    const resyncSeconds = Number(process.hrtime.bigint() - resyncStarted) / 1e9
    rows.push({ workload, writtenBytes: writeBytes, resyncedBytes: report.copiedBytes,
      partitionBytes: staleLps * setup.ppBytes, resyncSeconds })
  }
  return rows
}

export function renderOutage(rows: readonly OutageRow[], outageSeconds: number): string[] {
  return rows.map((row) => `${outageSeconds} s outage, ${row.workload === 'region'
    ? '4 KiB writes in one 64 MiB region' : '64 KiB writes over the whole LV'}: ` +
    `${(row.writtenBytes / MiB).toFixed(0)} MiB written, ${(row.resyncedBytes / MiB).toFixed(1)} MiB resynced = ` +
    `${(row.resyncedBytes / row.writtenBytes).toFixed(2)} x written (target <= 1.10: ` +
    `${row.resyncedBytes <= 1.1 * row.writtenBytes ? 'met' : 'missed'}); by whole partitions ` +
    `${(row.partitionBytes / MiB).toFixed(0)} MiB = ${(row.partitionBytes / row.writtenBytes).toFixed(2)} x; ` +
    `resync ${row.resyncSeconds.toFixed(1)} s`)
}
