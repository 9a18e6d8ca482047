/**
 * The native plan of each volume (VolumeMap) with replica semantics, for the daemon: which
 * partitions serve it, which gates stay closed so the gate hook sees the writes this layer must
 * act on, and which extra copies are synchronous mirror targets.
 */
import type { VolumeExtent, VolumeMap } from '../native/index.js'
import { assert } from '../util/index.js'
import { ownedLp } from './clone.js'
import type { Located, ReplicationContext } from './context.js'
import { replicaOf } from './model.js'
import { splitUnwritten } from './split.js'
import type { SyncMirrors } from './sync-mirror.js'

type FdOf = (vgName: string, pvIndex: number) => number

export class NativeMaps {
  readonly #ctx: ReplicationContext
  readonly #sync: SyncMirrors

  constructor(ctx: ReplicationContext, sync: SyncMirrors) {
    this.#ctx = ctx
    this.#sync = sync
  }

  /** Whether this layer gates the volume's writes itself (copy-on-write of a clone, change
   * tracking of a source, a split replica's first write): its gate hooks must keep running. */
  gatesWrites(vgName: string, lvName: string): boolean {
    const { lv } = this.#ctx.locate(vgName, lvName)
    const replica = replicaOf(lv)
    if (replica !== undefined) return replica.kind === 'clone' || replica.state === 'split'
    return this.#ctx.children(vgName, lv).some((c) => c.replica.state !== 'split') || splitUnwritten(lv) ||
      this.#ctx.detachedAsyncTargets(vgName, lv).length > 0
  }

  /**
   * The native plan for a volume (rebuild it after every VG change and whenever GateControl.remap
   * is called). `fdOf(vgName, pvIndex)` gives the daemon's backing fd of a PV.
   *  - plain/source LV: the mirror map, plus the copies of synchronous mirror targets for the
   *    partitions they hold (writes reach both natively), gated at partition size or smaller
   *    when the source has clones, copies or async mirrors;
   *  - clone: owned chunks on its own partitions, shared chunks on the origin's (gates closed
   *    until the chunk is owned: the hook copies it);
   *  - copy/mirror target: its data partitions (LP 1..), read-only while mirrored.
   */
  volumeMapOf(vgName: string, lvName: string, fdOf: FdOf): VolumeMap {
    const located = this.#ctx.locate(vgName, lvName)
    const { engine, lv } = located
    const pp = engine.vg.ppSizeBytes
    const replica = replicaOf(lv)
    const base = engine.mirror.buildVolumeMap(lv, (pvIndex) => fdOf(vgName, pvIndex))
    if (replica === undefined) {
      const children = this.#ctx.children(vgName, lv).filter((c) => c.replica.state !== 'split')
      if (children.length === 0 && !splitUnwritten(lv) && this.#ctx.detachedAsyncTargets(vgName, lv).length === 0) {
        return base
      }
      const extents = base.extents.map((extent, lp) => {
        const extra = children.filter((c) => c.replica.kind === 'mirror-sync' && this.#sync.holds(c, lp))
          .flatMap((c) => this.#extentOf(c, lp + 1, fdOf).copies)
        return { copies: [...extent.copies, ...extra].slice(0, 3) }
      })
      const gateBytes = base.gateBytes === 0 ? pp : Math.min(base.gateBytes, pp)
      return { ...base, extents, gateBytes }
    }
    const own = (index: number): VolumeExtent => this.#extentOf(located, index, fdOf)
    if (replica.kind === 'clone') {
      const origin = this.#ctx.sourceOfReplica(replica)
      const extents = Array.from({ length: replica.dataLps }, (_, chunk) => {
        const owned = ownedLp(lv, chunk)
        return owned !== undefined ? own(owned) : this.#extentOf(origin, chunk, fdOf)
      })
      return { ...base, sizeBytes: replica.dataLps * pp, extents, gateBytes: pp, readOnly: false }
    }
    const extents = Array.from({ length: replica.dataLps }, (_, lp) => own(lp + 1))
    return { ...base, sizeBytes: replica.dataLps * pp, extents, gateBytes: replica.state === 'split' ? pp : 0,
      readOnly: replica.kind.startsWith('mirror') && replica.state !== 'split' }
  }

  /**
   * For the daemon's copy-error path: which synchronous mirror target (if any) copy `copyIndex`
   * of extent `lp` in volumeMapOf(vg, lv) belongs to. Copies below the LV's own copy count are
   * the mirror engine's business; a failed write on a target copy must fail the application
   * write (EIO: it was not acknowledged by both), never mark anything stale.
   */
  syncTargetOfCopy(vgName: string, lvName: string, lp: number,
    copyIndex: number): { vg: string, lv: string } | undefined {
    const { lv } = this.#ctx.locate(vgName, lvName)
    if (replicaOf(lv) !== undefined || copyIndex < lv.copies) return undefined
    let index = lv.copies
    for (const child of this.#sync.attached(vgName, lv)) {
      if (!this.#sync.holds(child, lp)) continue
      const copies = this.#ctx.fresh(child).lps[lp + 1]?.length ?? 0
      if (copyIndex < index + copies) return { vg: child.engine.vg.name, lv: child.lv.name }
      index += copies
    }
    return undefined
  }

  #extentOf(located: Located, lp: number, fdOf: FdOf): VolumeExtent {
    const vg = located.engine.vg
    const lv = this.#ctx.fresh(located)
    const copies = lv.lps[lp]
    assert(copies !== undefined, `LP ${lp} of ${lv.name} does not exist`)
    return { copies: copies.map((copy) => {
      const stale = vg.pvState(copy.pvIndex) !== 'active' || vg.isStale(copy.pvIndex, copy.pp)
      return stale ? { fd: -1, offsetBytes: 0, stale } :
        { fd: fdOf(vg.name, copy.pvIndex), offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp), stale }
    }) }
  }
}
