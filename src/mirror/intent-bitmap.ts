/**
 * Write-intent bitmaps: which chunks (default 64 KiB) of an LP may differ between its copies
 * since one of them went stale, so a resync of a returning copy copies those chunks, not the
 * whole partition (md's write-intent bitmap, DRBD's bitmap).
 *
 * A chunk is marked when a write or discard into it did not reach every copy (a copy stale, on
 * an absent PV, or failed), before the write completes: by the in-process engine directly, and
 * by native code in its own bits, which the daemon's collector moves here before every
 * activity-log record (MirrorVg.collectDirty).
 *
 * Persistence is lazy, as DRBD's: the bitmaps of an LP travel in the activity-log records of
 * the PVs holding its copies (format/mwc-log.ts). A mirrored write is always inside an extent of
 * the activity log while it runs, and every record is written after the bits of every write
 * that completed before it were marked; so the newest record of a PV lists, for each divergent
 * chunk, either the chunk or its extent. Recovery (restore) therefore ORs the extents of the
 * log into the bitmaps. An LV without the log (MWC passive/off) that crashed gets its LPs
 * untracked: its bits may have been ahead of the last record.
 *
 * Trust: an LP is *tracked* when its bits are known to cover every stale copy: from the moment
 * its first copy goes stale while it had none, or from a record that carried its bitmap. An LP
 * with a stale copy that is not tracked (stale before bitmaps existed, a new copy, a bitmap that
 * did not fit a record, an unreadable log) resyncs whole. Bits are never dropped while a copy is
 * stale; they are cleared once every copy of the LP is fresh again.
 */
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import { WHOLE_LV, type DirtyChunks, type MwcRecord } from '../format/index.js'
import type { LpRange } from './mirror-vg.js'

export const DEFAULT_BITMAP_CHUNK_BYTES = 64 * 1024

interface LvBits {
  chunkBytes: number
  /** Bit c: chunk c of the LV (chunk = chunkBytes of LV bytes). */
  bits: Uint8Array
}

export class IntentBitmaps {
  readonly #vg: VolumeGroup
  readonly #lvs = new Map<number, LvBits>()
  /** lvId -> LPs whose bits cover every stale copy. */
  readonly #tracked = new Map<number, Set<number>>()

  constructor(vg: VolumeGroup) {
    this.#vg = vg
  }

  chunkBytesOf(lv: LvDescriptor): number {
    return Math.min(lv.bitmapChunkBytes ?? DEFAULT_BITMAP_CHUNK_BYTES, this.#vg.ppSizeBytes)
  }

  #bitsOf(lv: LvDescriptor): LvBits {
    const chunkBytes = this.chunkBytesOf(lv)
    const chunks = Math.ceil((lv.lps.length * this.#vg.ppSizeBytes) / chunkBytes)
    let entry = this.#lvs.get(lv.lvId)
    if (entry === undefined || entry.chunkBytes !== chunkBytes || entry.bits.length * 8 < chunks) {
      const next: LvBits = { chunkBytes, bits: new Uint8Array(Math.ceil(chunks / 8)) }
      // The chunk changed or the LV grew: every old mark covers the new chunks it overlaps.
      const old = entry
      if (old !== undefined) {
        for (const chunk of setBits(old.bits)) markBytes(next, chunk * old.chunkBytes, old.chunkBytes)
      }
      this.#lvs.set(lv.lvId, entry = next)
    }
    return entry
  }

  /** Marks [offsetBytes, +lengthBytes) of the LV: some copy did not take a write there. */
  mark(lv: LvDescriptor, offsetBytes: number, lengthBytes: number): void {
    if (lengthBytes > 0) markBytes(this.#bitsOf(lv), offsetBytes, lengthBytes)
  }

  /** Marks chunks given in another chunk size (native code's, taken by the collector). */
  markChunks(lv: LvDescriptor, chunkBytes: number, chunks: Iterable<number>): void {
    const entry = this.#bitsOf(lv)
    for (const chunk of chunks) markBytes(entry, chunk * chunkBytes, chunkBytes)
  }

  isTracked(lvId: number, lp: number): boolean {
    return this.#tracked.get(lvId)?.has(lp) ?? false
  }

  #track(lvId: number, lp: number): void {
    let lps = this.#tracked.get(lvId)
    if (lps === undefined) this.#tracked.set(lvId, lps = new Set())
    lps.add(lp)
  }

  /** Called before copies are marked stale: an LP that had no stale copy starts tracking (its
   * bits already hold every write that skipped the copy so far). Returns the LPs that did. */
  beforeMarkStale(changes: ReadonlyArray<{ pvIndex: number, pp: number }>): Array<{ lv: LvDescriptor, lp: number }> {
    const started: Array<{ lv: LvDescriptor, lp: number }> = []
    const changed = new Set(changes.map((change) => `${change.pvIndex}:${change.pp}`))
    for (const lv of this.#vg.descriptor.lvs) {
      if (lv.copies < 2) continue
      lv.lps.forEach((copies, lp) => {
        if (!copies.some((copy) => changed.has(`${copy.pvIndex}:${copy.pp}`))) return
        if (copies.some((copy) => this.#vg.isStale(copy.pvIndex, copy.pp))) return
        this.#track(lv.lvId, lp)
        started.push({ lv, lp })
      })
    }
    return started
  }

  /** Drops the bits and trust of LPs whose copies are all fresh again (after a VGSA change). */
  settle(): void {
    for (const [lvId, lps] of this.#tracked) {
      const lv = this.#vg.lvById(lvId)
      for (const lp of [...lps]) {
        const copies = lv?.lps[lp]
        if (copies !== undefined && copies.some((copy) => this.#vg.isStale(copy.pvIndex, copy.pp))) continue
        lps.delete(lp)
        if (lv !== undefined) this.#clearLp(lv, lp)
      }
      if (lps.size === 0) this.#tracked.delete(lvId)
    }
  }

  #clearLp(lv: LvDescriptor, lp: number): void {
    const entry = this.#lvs.get(lv.lvId)
    if (entry === undefined) return
    const perLp = this.#vg.ppSizeBytes / entry.chunkBytes
    for (let chunk = lp * perLp; chunk < (lp + 1) * perLp; chunk++) entry.bits[chunk >> 3]! &= ~(1 << (chunk & 7))
  }

  /** What a resync of the stale copies of an LP must copy: undefined (the whole LP) unless
   * the LP is tracked. */
  ranges(lv: LvDescriptor, lp: number): LpRange[] | undefined {
    if (!this.isTracked(lv.lvId, lp)) return undefined
    const entry = this.#bitsOf(lv)
    const perLp = this.#vg.ppSizeBytes / entry.chunkBytes
    const ranges: LpRange[] = []
    for (let index = 0; index < perLp; index++) {
      const chunk = lp * perLp + index
      if ((entry.bits[chunk >> 3]! & (1 << (chunk & 7))) === 0) continue
      const last = ranges[ranges.length - 1]
      const offsetInLpBytes = index * entry.chunkBytes
      if (last !== undefined && last.offsetInLpBytes + last.lengthBytes === offsetInLpBytes) {
        ranges[ranges.length - 1] = { offsetInLpBytes: last.offsetInLpBytes,
          lengthBytes: last.lengthBytes + entry.chunkBytes }
      } else {
        ranges.push({ offsetInLpBytes, lengthBytes: entry.chunkBytes })
      }
    }
    return ranges
  }

  /** The bitmaps a record for `pvIndex` carries: every tracked LP with a copy there. */
  dirtyOf(pvIndex: number): DirtyChunks[] {
    const out: DirtyChunks[] = []
    for (const [lvId, lps] of this.#tracked) {
      const lv = this.#vg.lvById(lvId)
      if (lv === undefined) continue
      const entry = this.#bitsOf(lv)
      const perLp = this.#vg.ppSizeBytes / entry.chunkBytes
      for (const lp of lps) {
        if (!(lv.lps[lp]?.some((copy) => copy.pvIndex === pvIndex) ?? false)) continue
        out.push({ lvId, lp, chunkBytesLog2: Math.log2(entry.chunkBytes), bits: lpBits(entry.bits, lp * perLp, perLp) })
      }
    }
    return out
  }

  /**
   * Vary-on. For each LP with a stale copy, the newest record among the PVs holding its copies
   * decides (each of them is a complete snapshot for the LP's extents when it was written, and
   * the newest one knows the most; an older record on a PV that was missing is history): the LP
   * is tracked when that record carries its bitmap, whose bits are restored, plus every chunk
   * of the LP's extents that record's log listed (a write in flight at the crash). A whole-LV
   * marker, or an LV in `untrustedLvs` (a crashed LV without the log, an unreadable log on one
   * of its PVs), leaves the LP untracked: it resyncs whole.
   */
  restore(records: ReadonlyArray<{ pvIndex: number, record: MwcRecord }>, ltgBytes: number,
    untrustedLvs: ReadonlySet<number>): void {
    const ppBytes = this.#vg.ppSizeBytes
    const indexed = records.map(({ pvIndex, record }) => ({
      pvIndex, seq: record.seq,
      dirty: new Map(record.dirty.map((entry) => [`${entry.lvId}:${entry.lp}`, entry])),
      extents: record.entries,
    }))
    for (const lv of this.#vg.descriptor.lvs) {
      if (lv.copies < 2 || untrustedLvs.has(lv.lvId)) continue
      lv.lps.forEach((copies, lp) => {
        if (!copies.some((copy) => this.#vg.isStale(copy.pvIndex, copy.pp))) return
        let best: (typeof indexed)[number] | undefined
        for (const candidate of indexed) {
          if (!copies.some((copy) => copy.pvIndex === candidate.pvIndex)) continue
          if (best === undefined || candidate.seq > best.seq) best = candidate
        }
        const entry = best?.dirty.get(`${lv.lvId}:${lp}`)
        if (best === undefined || entry === undefined || best.dirty.has(`${lv.lvId}:${WHOLE_LV}`)) return
        const chunkBytes = 2 ** entry.chunkBytesLog2
        for (const chunk of setBits(entry.bits)) this.mark(lv, lp * ppBytes + chunk * chunkBytes, chunkBytes)
        for (const extent of best.extents) {
          if (extent.lvId !== lv.lvId || Math.floor((extent.ltgIndex * ltgBytes) / ppBytes) !== lp) continue
          this.mark(lv, extent.ltgIndex * ltgBytes, ltgBytes)
        }
        this.#track(lv.lvId, lp)
      })
    }
  }
}

function markBytes(entry: LvBits, offsetBytes: number, lengthBytes: number): void {
  const first = Math.floor(offsetBytes / entry.chunkBytes)
  const last = Math.floor((offsetBytes + lengthBytes - 1) / entry.chunkBytes)
  for (let chunk = first; chunk <= last && chunk < entry.bits.length * 8; chunk++) {
    entry.bits[chunk >> 3]! |= 1 << (chunk & 7)
  }
}

function* setBits(bits: Uint8Array): Generator<number> {
  for (let byte = 0; byte < bits.length; byte++) {
    if (bits[byte] === 0) continue
    for (let bit = 0; bit < 8; bit++) if ((bits[byte]! & (1 << bit)) !== 0) yield byte * 8 + bit
  }
}

/** `count` bits of `bits` starting at bit `first`, as their own LSB-first array. */
function lpBits(bits: Uint8Array, first: number, count: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(count / 8))
  for (let index = 0; index < count; index++) {
    const chunk = first + index
    if ((bits[chunk >> 3]! & (1 << (chunk & 7))) !== 0) out[index >> 3]! |= 1 << (index & 7)
  }
  return out
}
