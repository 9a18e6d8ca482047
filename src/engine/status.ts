/** The status report of a mounted VG (lvmfs status): PVs, LVs, MWC, resyncs, I/O counters. */
import type { ThinPoolReport } from './thin-pools.js'
import type { ReplicaStatus } from '../replication/index.js'
import type { BlockDeviceReport } from './block-devices.js'
import type { MountedVg } from './mounted-vg.js'
import type { SharedMountReport } from './shared-mount.js'

export interface ResyncActivity {
  readonly id: number
  readonly what: string
  doneBytes: number
  totalBytes: number
  /** Resyncs: the measured copy rate (bytes of the LV done per second) and the time left at
   * that rate, once known. */
  rateBytesPerSecond?: number
  etaSeconds?: number
}

export interface VgStatusReport {
  readonly vg: string
  readonly state: string
  readonly mountpoint: string
  readonly pid: number
  readonly seq: number
  readonly pvs: Array<{ index: number; pvId: string; path: string; state: string; stalePps: number }>
  readonly lvs: Array<{ name: string; sizeBytes: number; copies: number; mwc: string; schedule: string;
    stalePartitions: number; staleCopies: StaleRun[]; dirty: boolean; openReaders: number; openWriters: number;
    /** Activity log (MWC active): its size in extents and the extents in it now. */
    alExtents: number; activeExtents: number
    /** Write-intent bitmap chunk, and the bytes a resync of the stale copies would copy now. */
    bitmapChunkBytes: number; resyncPendingBytes: number }>
  /** Open write gates; activity-log records written and extents evicted since the mount. */
  readonly mwc: { readonly openGates: number; readonly recordsWritten: number; readonly evictions: number }
  readonly resyncs: readonly ResyncActivity[]
  readonly io: Record<string, number>
  /** Replicas of this VG: origin, type, sync state, job, mark and lag (added by the daemon). */
  readonly replicas?: readonly ReplicaStatus[]
  /** Other VGs the daemon holds online for replication (replica-vgs.ts), and why one is away. */
  readonly replicaVgs?: ReadonlyArray<{ vg: string; state: string; error?: string }>
  /** mount --block-devices only: the loop devices of linear LVs, who holds them, and why an LV
   * that qualifies has none (block-devices.ts). */
  readonly blockDevices?: readonly BlockDeviceReport[]
  readonly blockDeviceProblems?: ReadonlyArray<{ lv: string; problem: string }>
  /** Thin pools: data and metadata use, commit state, and a warning past the low-water mark. */
  readonly thinPools?: readonly ThinPoolReport[]
  /** The FUSE transport serving the mount, and why not io_uring when it was asked for. */
  readonly transport?: { requested: string; active: string; queues: number; reason?: string }
  /** Shared-VG mounts only: the socket/pid name (VG@pid) and the DLM locks held. */
  readonly instance?: string
  readonly shared?: SharedMountReport
}

/** LPs `fromLp`..`toLp` (inclusive) of an LV whose copy `copy`, on PV `pvIndex`, is stale. */
export interface StaleRun {
  readonly copy: number
  readonly pvIndex: number
  readonly fromLp: number
  readonly toLp: number
}

/** The stale copies of an LV (VGSA stale bits), as runs of consecutive LPs per copy and PV. */
function staleRuns(vg: MountedVg['vg'], lps: ReadonlyArray<ReadonlyArray<{ pvIndex: number; pp: number }>>): StaleRun[] {
  const runs: Array<{ copy: number; pvIndex: number; fromLp: number; toLp: number }> = []
  const open = new Map<number, (typeof runs)[number]>()
  lps.forEach((copies, lp) => {
    copies.forEach((ref, copy) => {
      const run = open.get(copy)
      if (!vg.isStale(ref.pvIndex, ref.pp)) {
        open.delete(copy)
      } else if (run !== undefined && run.pvIndex === ref.pvIndex && run.toLp === lp - 1) {
        run.toLp = lp
      } else {
        const started = { copy, pvIndex: ref.pvIndex, fromLp: lp, toLp: lp }
        runs.push(started)
        open.set(copy, started)
      }
    })
  })
  return runs.sort((a, b) => a.copy - b.copy || a.fromLp - b.fromLp)
}

function popcount(bitmap: Uint8Array): number {
  let count = 0
  for (const byte of bitmap) {
    let value = byte
    while (value) { count += value & 1; value >>= 1 }
  }
  return count
}

/** LPs of `lv` with a copy that is stale or on a PV that is not active. */
export function stalePartitionsOf(vg: MountedVg['vg'], lv: (typeof vg.descriptor.lvs)[number]): number {
  return lv.lps.filter((copies) =>
    copies.some((copy) => vg.isStale(copy.pvIndex, copy.pp) || vg.pvState(copy.pvIndex) !== 'active')).length
}

export function statusOf(mounted: MountedVg, resyncs: readonly ResyncActivity[], openGates: number): VgStatusReport {
  const vg = mounted.vg
  const mirror = mounted.engine.mirror
  mirror.collectDirty()
  // What a non-forced resync would copy now: bitmap chunks of tracked LPs, whole stale LPs else.
  const pendingBytes = (lv: (typeof vg.descriptor.lvs)[number]): number => lv.lps.reduce((sum, copies, lp) => {
    if (!copies.some((copy) => vg.isStale(copy.pvIndex, copy.pp))) return sum
    const ranges = mirror.bitmaps.ranges(lv, lp)
    return sum + (ranges === undefined ? vg.ppSizeBytes : ranges.reduce((bytes, range) => bytes + range.lengthBytes, 0))
  }, 0)
  const pvs = vg.descriptor.pvs.map((pv, index) => ({ index, pvId: pv.pvId, path: pv.lastPath,
    state: vg.pvState(index), stalePps: popcount(vg.status.stale[index] ?? new Uint8Array()) }))
  const lvs = vg.descriptor.lvs.map((lv) => {
    const stalePartitions = stalePartitionsOf(vg, lv)
    const counts = mounted.openCounts.get(lv.lvId)
    return { name: lv.name, sizeBytes: mounted.lvSizeBytes(lv), copies: lv.copies, mwc: lv.mwc,
      schedule: lv.schedule, stalePartitions, staleCopies: staleRuns(vg, lv.lps),
      dirty: vg.status.dirtyLvs.includes(lv.lvId), openReaders: counts?.readers ?? 0,
      openWriters: counts?.writers ?? 0, alExtents: mirror.mwc.alExtentsOf(lv),
      activeExtents: mirror.mwc.cachedLtgsOf(lv.lvId),
      bitmapChunkBytes: mirror.bitmaps.chunkBytesOf(lv), resyncPendingBytes: pendingBytes(lv) }
  })
  const io: Record<string, number> = { ...(mounted.stats() ?? {}) }
  Object.assign(io, mounted.engine.mirror.counters)
  return { vg: vg.name, state: vg.state, mountpoint: mounted.mountpoint, pid: process.pid,
    seq: vg.descriptor.seq, pvs, lvs,
    mwc: { openGates, recordsWritten: mirror.mwc.recordsWritten, evictions: mirror.mwc.evictions }, resyncs, io }
}
