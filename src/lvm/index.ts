/**
 * lvmfs LVM library: physical volumes, volume groups, logical volumes, vary-on.
 *
 * Entry points (see docs/format.md for bytes, docs/errors/lvm.md for codes):
 *
 *   pvCreate(path, { force? })                     label a device as an lvmfs PV
 *   vgCreate({ name, paths, ppSizeBytes })         new VG; returns its descriptor
 *   varyOnVg({ vgName | vgId, devices, vvgIn?, flags })
 *       -> { rc, rcRef, vvgOut, vg?, error? }      lvm_varyonvg; `vg` is a VolumeGroup when
 *                                                  rc is LVM_SUCCESS or LVM_CHKVVGOUT
 *   varyOffVg(vg)                                  lvm_varyoffvg
 *   scanDevices(paths)                             read-only: labels and VGs found (pvs/vgs)
 *
 * A varied-on `VolumeGroup` (volume-group.ts) exposes:
 *  - `descriptor` (VgDescriptor, model.ts): PVs {pvId, lastPath, ppCount, removed}, LVs {lvId,
 *    name, copies, strict, schedule, mwc, lps[lp][copy] = {pvIndex, pp}, ext}, `ppSizeBytes`,
 *    `descriptorCopies` (placement of VGDA/VGSA copies);
 *  - `status` (VgStatus): per-PV missing flags, per-PV stale-PP bitmaps, passive-MWC dirty LVs;
 *  - per PV: `device(pvIndex)` (open BlockDevice), `ppOffsetBytes(pvIndex, pp)`,
 *    `mwcArea(pvIndex)` {offsetBytes, sizeBytes}, `pvState(pvIndex)`;
 *  - mutations that resolve only when a majority of descriptor copies hold them:
 *    lvCreate/lvExtend/lvReduce/lvRemove/lvRename/lvSetExt, vgExtend/vgReduce,
 *    markStale/clearStale/setLvDirty/setPvState (VGSA records, small and fixed-shape);
 *  - onChange(listener) after each commit, onForceOff(listener) when quorum is lost
 *    (the VG is then 'forcedoff' and every call rejects with LVM_FORCEOFF).
 */
export * from './model.js'
export type { VolumeGroup, VgState, LvCreateOptions, VgChangeEvent } from './volume-group.js'
