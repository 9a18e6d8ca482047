/**
 * Which descriptor copy is the truth, and is there a quorum. Pure: no I/O, no clocks.
 *
 * Rule (AIX quorum with lvmfs's commit protocol):
 *  1. Only valid copies count: checksums, header/trailer stamps, self-location and VG id all
 *     check out (decided by the codecs before this function).
 *  2. The candidate is the valid copy with the highest seq. If several different copies share
 *     that seq (a fork: an uncommitted minority write and a later commit that could not see
 *     it), the one held by a majority of its own placement wins; if none does → 'fork'.
 *  3. Quorum ⇔ more than half of the candidate's placement positions hold a valid copy
 *     (of any seq). Exactly half is not a quorum.
 * Why "newest of a readable majority" is safe: every commit reaches a majority of the
 * placement before it is acknowledged, and any two majorities intersect, so a readable
 * majority always contains the last acknowledged commit or something newer.
 */
import { isMajority, placeKey } from './placement.js'

export interface CopyReading {
  readonly pvId: string
  readonly area: 0 | 1
  /** The valid copy at this position, or null (absent, torn, corrupt, foreign...). */
  readonly copy: { readonly seq: number; readonly crc: number } | null
}

export type Selection =
  | { readonly kind: 'novgdas' }
  | { readonly kind: 'fork'; readonly seq: number; readonly crcs: readonly number[] }
  | { readonly kind: 'chosen'; readonly seq: number; readonly crc: number; readonly present: number;
      readonly total: number; readonly quorum: boolean; readonly maxSeq: number }

/** `placementOf(seq, crc)` gives the positions (pvId, area) of that descriptor's copies. */
export function selectCopy(readings: readonly CopyReading[],
  placementOf: (seq: number, crc: number) => ReadonlyArray<{ pvId: string; area: number }>): Selection {
  const valid = readings.filter((r) => r.copy !== null)
  if (valid.length === 0) return { kind: 'novgdas' }
  const maxSeq = Math.max(...valid.map((r) => r.copy!.seq))
  const crcs = [...new Set(valid.filter((r) => r.copy!.seq === maxSeq).map((r) => r.copy!.crc))]
  const byPosition = new Map(valid.map((r) => [placeKey(r.pvId, r.area), r.copy!]))
  let crc = crcs[0]!
  if (crcs.length > 1) {
    const winners = crcs.filter((candidate) => {
      const places = placementOf(maxSeq, candidate)
      const holding = places.filter((p) => {
        const copy = byPosition.get(placeKey(p.pvId, p.area))
        return copy !== undefined && copy.seq === maxSeq && copy.crc === candidate
      }).length
      return isMajority(holding, places.length)
    })
    if (winners.length !== 1) return { kind: 'fork', seq: maxSeq, crcs }
    crc = winners[0]!
  }
  const places = placementOf(maxSeq, crc)
  const present = places.filter((p) => byPosition.has(placeKey(p.pvId, p.area))).length
  return { kind: 'chosen', seq: maxSeq, crc, present, total: places.length,
    quorum: isMajority(present, places.length), maxSeq }
}
