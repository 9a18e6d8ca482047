/**
 * Where descriptor (VGDA) and status (VGSA) copies go, the AIX rule over the PVs that are not
 * removed, in descriptor order: 1 PV → 2 copies on it (areas 0 and 1); 2 PVs → 2 on the first
 * and 1 on the second; 3 or more → 1 on each (area 0). Quorum is a majority of these copies,
 * so a 2-PV VG dies with its first PV and survives the loss of the second.
 */
import type { CopyPlace, PvDescriptor } from './model.js'

export function standardPlacement(pvs: readonly PvDescriptor[]): CopyPlace[] {
  const live = pvs.flatMap((pv, pvIndex) => (pv.removed ? [] : [pvIndex]))
  if (live.length === 0) return []
  if (live.length === 1) return [{ pvIndex: live[0]!, area: 0 }, { pvIndex: live[0]!, area: 1 }]
  if (live.length === 2) {
    return [{ pvIndex: live[0]!, area: 0 }, { pvIndex: live[0]!, area: 1 }, { pvIndex: live[1]!, area: 0 }]
  }
  return live.map((pvIndex) => ({ pvIndex, area: 0 as const }))
}

/** More than half: exactly half is not a quorum. */
export function isMajority(count: number, total: number): boolean {
  return total > 0 && count * 2 > total
}

export function placeKey(pvId: string, area: number): string {
  return `${pvId}:${area}`
}
