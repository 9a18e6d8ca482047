/**
 * lvmfs LVM library: physical volumes, volume groups, logical volumes, vary-on.
 *
 * Entry points (see docs/format.md for bytes, docs/errors/lvm.md for codes):
 *
 *   pvCreate(path, { force?, layout?, opener? })   label a device as an lvmfs PV
 *   vgCreate({ name, paths, ppSizeBytes })          new VG; returns its descriptor
 *   varyOnVg({ vgName | vgId, devices, vvgIn?, flags, opener?, readOnly? })
 *       -> { rc, rcRef, vvgOut, vg?, error? }       lvm_varyonvg; `vg` is a VolumeGroup when
 *                                                   rc is LVM_SUCCESS or LVM_CHKVVGOUT
 *   varyOffVg(vg)                                   lvm_varyoffvg
 *   scanDevices(paths)                              read-only: labels and VGs (pvs/vgs/lvs)
 *
 * A varied-on `VolumeGroup` (volume-group.ts) exposes:
 *  - `descriptor` (VgDescriptor, model.ts): PVs {pvId, lastPath, ppCount, removed}, LVs {lvId,
 *    name, copies, strict, schedule, mwc, lps[lp][copy] = {pvIndex, pp}, ext}, `ppSizeBytes`,
 *    `descriptorCopies` (placement of the VGDA/VGSA copies);
 *  - `status` (VgStatus): per-PV missing flags, per-PV stale-PP bitmaps, passive-MWC dirty LVs;
 *  - per PV: `device(pvIndex)` (open BlockDevice), `ppOffsetBytes(pvIndex, pp)`,
 *    `mwcArea(pvIndex)` {offsetBytes, sizeBytes}, `pvState(pvIndex)`, `isStale(pvIndex, pp)`;
 *  - mutations that resolve only when a majority of descriptor copies hold them (serialised):
 *    lvCreate/lvExtend/lvReduce/lvSwapLps/lvRemove/lvRename/lvSetExt, vgExtend/vgReduce,
 *    markStale/clearStale/setLvDirty/setPvState (VGSA records: small, fixed-shape);
 *  - onChange(listener) after each commit, onForceOff(listener) when quorum is lost
 *    (the VG is then 'forcedoff'; every call rejects with LVM_FORCEOFF; the daemon fails I/O
 *    with EIO);
 *  - flags `noOpenLvs` (refuse LV opens with EBUSY) and `autoResync` (the mirror engine should
 *    resync stale PPs now).
 * Descriptor backups (backup.ts): give varyOnVg/vgCreate a `DescriptorBackup` and it receives
 * every committed descriptor; `restoreVgDescriptor` (restore.ts) commits one back (vgcfgrestore).
 * Shared VGs (`vgcreate --shared`, shared-vg.ts): `varyOnVg({ ..., shared: true })` opens PVs
 * without the exclusive claim; `SharedVgLock` takes the DLM's VG lock and installs the OnlineVg
 * commit guard (`setCommitGuard`); `reloadOnlineVg` re-reads the newest committed copies.
 * Tests and tools inject devices with `opener` (MemoryDevice, FaultyDevice).
 */
export * from './model.js'
export type { VolumeGroup, VgState, LvCreateOptions, LvChangeOptions, VgChangeEvent } from './volume-group.js'
export { varyOnVg, varyOffVg, rcRef, type VaryOnRequest, type VaryOnResult } from './varyon.js'
export { pvCreate, pvRemove, vgCreate, validatePpSize, validateVgName, defaultOpener, type PvCreateOptions,
  type VgCreateOptions } from './pv-ops.js'
export { FileDescriptorBackup, DEFAULT_BACKUP_DIR, encodeBackup, decodeBackup, readBackupFile, resolveBackupDir,
  writeFileDurably, type BackupEntry, type DescriptorBackup } from './backup.js'
export { restoreVgDescriptor, type RestoreRequest } from './restore.js'
export { scanDevices, scanLabels, vgIdsByName, type ScannedDevice, type ScannedVg } from './scan.js'
export { commitStats, OnlineVg, type CommitGuard } from './online-vg.js'
export { PvSet, type DeviceOpener, type PvRuntime } from './pv-set.js'
export { OnlineVgRegistry } from './vg-registry.js'
export { SharedVgLock, reloadOnlineVg, encodeSeqs, decodeSeqs, type SharedSeqs, type SharedVgLockOptions }
  from './shared-vg.js'
export { standardPlacement, isMajority } from './placement.js'
export { selectCopy, type CopyReading, type Selection } from './quorum.js'
export { descriptorProblems } from './descriptor.js'
export { allocateLps } from './allocator.js'
export { moveTarget } from './copies-changes.js'
export { isThinLv, isThinPool, refuseThin, thinDependents, thinLvExt, thinOf, thinPoolExt, thinPoolOf, type ThinLvExt, type ThinPoolExt } from './thin-ext.js'
