/**
 * Child dependencies from the descriptors alone (no engine needed): what lvremove must check
 * before removing an LV (lsm_volume_child_dependency). A volume is a replication source while a
 * clone, an unfinished copy or an attached mirror references it, in its own VG (scanned) or in
 * another VG (recorded in the source's ext).
 */
import { LvmfsError } from '../errors/index.js'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import { keyOf, replicaOf, sourceOf } from './model.js'

/** Whether `lv` is a replica still bound to its source (a clone, an unfinished copy, an attached
 * mirror target): its source cannot be removed, and in a shared VG it is served with its source. */
export function isLinkedReplica(lv: LvDescriptor): boolean {
  const replica = replicaOf(lv)
  if (replica === undefined || replica.state === 'split') return false
  return replica.kind !== 'copy' || replica.state !== 'complete'
}

/** `vg/lv` names of the replicas depending on `lvName`, from `vgs` (every VG at hand). */
export function childDependenciesIn(vgs: readonly VolumeGroup[], vgName: string, lvName: string): string[] {
  const source = vgs.find((vg) => vg.name === vgName)?.lvByName(lvName)
  if (source === undefined) return []
  const names = new Set<string>()
  for (const vg of vgs) {
    for (const lv of vg.descriptor.lvs) {
      const replica = replicaOf(lv)
      const child = replica?.source.vg === vgName && replica.source.lvId === source.lvId
      if (child && isLinkedReplica(lv)) names.add(keyOf(vg.name, lv.name))
    }
  }
  for (const child of sourceOf(source)?.children ?? []) {
    const vg = vgs.find((candidate) => candidate.name === child.vg)
    const lv = vg?.lvByName(child.lv)
    const linked = vg === undefined ? child.split !== true : lv !== undefined && isLinkedReplica(lv)
    if (linked) names.add(keyOf(child.vg, child.lv))
  }
  return [...names].sort()
}

/** Throws LSM_ERR_HAS_CHILD_DEPENDENCY naming the replicas of `lvName` (call before lvRemove). */
export function assertNoChildDependency(vgs: readonly VolumeGroup[], vgName: string, lvName: string): void {
  const names = childDependenciesIn(vgs, vgName, lvName)
  if (names.length === 0) return
  throw new LvmfsError('LSM_ERR_HAS_CHILD_DEPENDENCY', `"${vgName}/${lvName}" is the source of ${names.join(', ')}`, {
    detail: 'Clones, unfinished copies and mirrors depend on their source.',
    hint: 'Remove those replicas first, or split the mirrors.', context: { children: names } })
}
