/**
 * The mirrored-write rows of bench:e2e: a 2-copy LV (MWC off, and MWC active) against the physical
 * limit and against the linear LV of the same mount.
 *
 * Both PVs are sparse files on one disk, so every byte written to a 2-copy LV is written twice to
 * that disk: the physical limit is half of the same fio workload on the raw backing file (raw/2).
 * The linear LV is the reference for the FUSE userspace ceiling: on a 2-core VM a FUSE server tops
 * out near 20k 4 KiB IOPS, which can be below raw/2 (see /work/shared/design/perf-anchors.md).
 */
import { STANDARD_WORKLOADS, type Workload } from './fio.js'

/** A 2-copy LV variant: MWC off or active with the default activity log (copies written at
 * once, schedule p); for contrast, MWC active with a 96-extent log (the MWC cache lvmfs had before
 * the activity log) and MWC off with the copies written one after the other (schedule s). */
export type Mwc = 'off' | 'active' | 'active-al96' | 'off-in-order'
export const MWC_MODES: readonly Mwc[] = ['off', 'active', 'active-al96', 'off-in-order']

/** lvcreate options of a variant. */
export function mirrorCreateArgs(mwc: Mwc): string[] {
  if (mwc === 'off-in-order') return ['--mwc', 'off', '--schedule', 's']
  if (mwc === 'active-al96') return ['--mwc', 'active', '--al-extents', '96', '--schedule', 'p']
  return ['--mwc', mwc, '--schedule', 'p']
}

function describe(mwc: Mwc): string {
  if (mwc === 'off-in-order') return 'mwc=off schedule=s (copies in order)'
  if (mwc === 'active-al96') return 'mwc=active al-extents=96 (the old MWC cache)'
  return mwc === 'active' ? 'mwc=active (al-extents 1237)' : `mwc=${mwc}`
}

export interface MirrorWorkload {
  readonly workload: Workload
  /** The least fraction of raw/2 a 2-copy LV should reach, per MWC mode; absent: no target. */
  readonly goals: Readonly<Partial<Record<Mwc, number>>>
}

function standard(name: string): Workload {
  const workload = STANDARD_WORKLOADS.find((candidate) => candidate.name === name)
  if (workload === undefined) throw new Error(`no standard workload "${name}"`)
  return workload
}

/**
 * Targets (issue 12): MWC off and MWC active with the default activity log, 1 MiB sequential
 * >= 0.9 and 4 KiB random >= 0.8 of raw/2. The 96-extent log has none: it shows what the
 * activity log replaced.
 */
export const MIRROR_WORKLOADS: readonly MirrorWorkload[] = [
  { workload: standard('seq-write-1M-qd8'), goals: { off: 0.9, active: 0.9 } },
  { workload: standard('rand-write-4k-qd32'), goals: { off: 0.8, active: 0.8 } },
]

/** The LV names in the benchmark VG and the `target` of their result rows. */
export const mirrorLvName = (mwc: Mwc): string => `mir-${mwc}`
export const mirrorTarget = (mwc: Mwc): string => `2-copy-lv-mwc-${mwc}`

/** One workload's figures, all measured in the same run. */
export interface MirrorFigures {
  readonly raw: number
  readonly linear: number
  readonly twoCopy: Readonly<Record<Mwc, number>>
}

export interface MirrorRow {
  readonly target: string
  readonly test: string
  readonly value: number
  readonly unit: string
  readonly ratio: number
  readonly against: string
  readonly goal?: number
  readonly met?: boolean
  /** The 2-copy figure over the linear LV's. */
  readonly ratioToLinear?: number
  /** The human-readable line, e.g. `2-copy mwc=off seq-write-1M-qd8: 580 MB/s = 0.93 of raw/2 ...`. */
  readonly line: string
}

export function mirrorRows({ workload, goals }: MirrorWorkload, figures: MirrorFigures): MirrorRow[] {
  const { name: test, unit } = workload
  const limit = figures.raw / 2
  const rows: MirrorRow[] = [{
    target: 'linear-lv', test, value: figures.linear, unit, ratio: figures.linear / limit, against: 'raw/2',
    line: `linear (1-copy, FUSE ceiling reference) ${test}: ${figures.linear.toFixed(0)} ${unit} = ` +
      `${(figures.linear / limit).toFixed(2)} of raw/2 (raw ${figures.raw.toFixed(0)} ${unit}, ` +
      `raw/2 ${limit.toFixed(0)} ${unit})`,
  }]
  for (const mwc of MWC_MODES) {
    const value = figures.twoCopy[mwc]
    const ratio = value / limit
    const goal = goals[mwc]
    const verdict = goal === undefined ? 'no target' : `target ${goal.toFixed(2)}: ${ratio >= goal ? 'met' : 'missed'}`
    rows.push({
      target: mirrorTarget(mwc), test, value, unit, ratio, against: 'raw/2',
      ...(goal === undefined ? {} : { goal, met: ratio >= goal }),
      ratioToLinear: value / figures.linear,
      line: `2-copy ${describe(mwc)} ${test}: ${value.toFixed(0)} ${unit} = ${ratio.toFixed(2)} of raw/2 (${verdict}); ` +
        `${(value / figures.linear).toFixed(2)} of linear`,
    })
  }
  return rows
}
