/**
 * Thin pool and thin LV operations on an online VG, for the CLI (in the daemon or alone). Each
 * orders its two commits — the pool's metadata and the VG descriptor — so that a crash between
 * them leaves at worst a thin device no LV names (space thin-check reports), never an LV whose
 * thin device is missing.
 */
import { LvmfsError, alreadyExists } from '../errors/index.js'
import {
  isThinLv, thinDependents, thinLvExt, thinOf, thinPoolExt, thinPoolOf, type LvCreateOptions, type LvDescriptor,
} from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import { ThinPool, thinCheck, thinRepair, type ThinCheckReport, type ThinPoolFormat, type ThinRepairReport } from '../thin/index.js'
import { thinPoolsOf } from './thin-pools.js'

export interface CreatePoolRequest extends Omit<LvCreateOptions, 'ext'> {
  readonly format: ThinPoolFormat
  readonly autoextendThreshold: number
  readonly autoextendPercent: number
  readonly fullQueueSeconds: number
}

/** The longest a write may wait for space: below the 30 s after which a held request fails. */
export const MAX_FULL_QUEUE_SECONDS = 25

function refuseShared(engine: MirrorEngine): void {
  if (engine.vg.descriptor.shared === true) {
    throw new LvmfsError('ENGINE_USAGE', `volume group "${engine.vg.name}" is shared: thin pools are not supported there yet`, {
      detail: 'Each daemon would keep its own uncommitted pool metadata.', context: { vg: engine.vg.name } })
  }
}

function lvNamed(engine: MirrorEngine, name: string): LvDescriptor {
  const lv = engine.vg.lvByName(name)
  if (lv === undefined) {
    throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${name}" not found in "${engine.vg.name}"`, { context: { lv: name } })
  }
  return lv
}

export async function createThinPool(engine: MirrorEngine, request: CreatePoolRequest): Promise<LvDescriptor> {
  refuseShared(engine)
  const { format, autoextendThreshold, autoextendPercent, fullQueueSeconds, ...lvOptions } = request
  const lv = await engine.vg.lvCreate({ ...lvOptions, ext: thinPoolExt({ chunkBytes: format.chunkBytes,
    metadataBytes: format.metadataBytes, autoextendThreshold, autoextendPercent, fullQueueSeconds }) })
  const handle = engine.open(lv.name)
  try {
    const pool = await ThinPool.format({ sizeBytes: handle.sizeBytes, read: (t, o) => handle.read(t, o),
      write: (d, o) => handle.write(d, o), flush: () => handle.flush() }, format)
    thinPoolsOf(engine).adopt(lv, pool, handle)
  } catch (error) {
    await handle.close().catch(() => undefined)
    await engine.vg.lvRemove(lv.name).catch(() => undefined)
    throw error
  }
  return lv
}

export async function createThinLv(engine: MirrorEngine, name: string, poolName: string,
  virtualBytes: number): Promise<LvDescriptor> {
  refuseShared(engine)
  const poolLv = lvNamed(engine, poolName)
  if (thinPoolOf(poolLv) === undefined) {
    throw new LvmfsError('ENGINE_USAGE', `"${poolName}" is not a thin pool`, { hint: 'Create one with lvcreate VG POOL --thinpool --size SIZE.' })
  }
  if (engine.vg.lvByName(name) !== undefined) {
    throw alreadyExists('logical volume', name, engine.vg.name)
  }
  const pool = await thinPoolsOf(engine).pool(poolLv)
  const thinId = await pool.createThin(virtualBytes)
  const rounded = pool.virtualBytes(thinId)
  return engine.vg.lvCreate({ name, lpCount: 0,
    ext: thinLvExt({ poolLvId: poolLv.lvId, thinId, virtualBytes: rounded }) })
}

export async function snapshotThinLv(engine: MirrorEngine, name: string, originName: string): Promise<LvDescriptor> {
  refuseShared(engine)
  const origin = lvNamed(engine, originName)
  const thin = thinOf(origin)
  if (thin === undefined) {
    throw new LvmfsError('ENGINE_USAGE', `"${originName}" is not a thin LV`, {
      hint: 'Snapshots of thick LVs are clones: lvmfs replicate VG/LV --type clone --name NAME.' })
  }
  if (engine.vg.lvByName(name) !== undefined) {
    throw alreadyExists('logical volume', name, engine.vg.name)
  }
  const { pool } = await thinPoolsOf(engine).poolOfThin(origin)
  const thinId = await pool.snapshot(thin.thinId)
  return engine.vg.lvCreate({ name, lpCount: 0,
    ext: thinLvExt({ poolLvId: thin.poolLvId, thinId, virtualBytes: thin.virtualBytes, originLvId: origin.lvId }) })
}

/** ReplicationOptions.thinClone: lsm_volume_replicate CLONE of a thin LV. */
export function snapshotForReplication(
  engine: MirrorEngine, name: string, origin: LvDescriptor,
): Promise<LvDescriptor> {
  return snapshotThinLv(engine, name, origin.name)
}

/** lvremove of a thin LV: the descriptor first, then its thin device. */
export async function removeThinLv(engine: MirrorEngine, lv: LvDescriptor): Promise<void> {
  const thin = thinOf(lv)
  if (thin === undefined) throw new LvmfsError('ENGINE_USAGE', `"${lv.name}" is not a thin LV`)
  const { pool } = await thinPoolsOf(engine).poolOfThin(lv)
  await engine.vg.lvRemove(lv.name)
  if (pool.hasDevice(thin.thinId)) await pool.deleteThin(thin.thinId)
}

/** lvremove of a thin pool with no thin LVs: its handle closes before its PPs go. */
export async function removeThinPool(engine: MirrorEngine, lv: LvDescriptor): Promise<void> {
  const dependents = thinDependents(engine.vg.descriptor, lv)
  if (dependents.length > 0) {
    throw new LvmfsError('THIN_HAS_SNAPSHOTS', `thin pool "${lv.name}" still has thin LVs`, {
      detail: `${dependents.map((x) => x.name).join(', ')} use it.`, hint: 'Remove them first.' })
  }
  await thinPoolsOf(engine).close(lv.lvId)
  await engine.vg.lvRemove(lv.name)
}

/**
 * lvconvert --merge VG/SNAP: the origin takes the snapshot's content and the snapshot goes. The
 * descriptor drops the snapshot first (a crash then leaves the merge undone and its device
 * unnamed), then the pool merges in one commit.
 */
export async function mergeThinSnapshot(engine: MirrorEngine, snapshot: LvDescriptor,
  isOpen: (lvId: number) => boolean): Promise<LvDescriptor> {
  const thin = thinOf(snapshot)
  if (thin?.originLvId === undefined) {
    throw new LvmfsError('ENGINE_USAGE', `"${snapshot.name}" is not a thin snapshot`, { hint: 'Name a snapshot made with lvcreate --snapshot.' })
  }
  const origin = engine.vg.lvById(thin.originLvId)
  if (origin === undefined || !isThinLv(origin)) {
    throw new LvmfsError('ENGINE_NOT_FOUND', `the origin of "${snapshot.name}" is gone`)
  }
  const dependents = thinDependents(engine.vg.descriptor, snapshot)
  if (dependents.length > 0) {
    throw new LvmfsError('THIN_HAS_SNAPSHOTS', `"${snapshot.name}" has snapshots of its own`, {
      detail: `${dependents.map((x) => x.name).join(', ')} depend on it.`, hint: 'Remove them first.' })
  }
  for (const lv of [origin, snapshot]) {
    if (isOpen(lv.lvId)) {
      throw new LvmfsError('LVM_LVOPEN', `logical volume "${lv.name}" is open`, { hint: 'Close it (umount the file system on it) and merge again.' })
    }
  }
  const { pool } = await thinPoolsOf(engine).poolOfThin(origin)
  await engine.vg.lvRemove(snapshot.name)
  await pool.merge(thin.thinId, thinOf(origin)!.thinId)
  return origin
}

/** thin-check of a pool: commits what is pending, then verifies the metadata on disk. */
export async function checkThinPool(engine: MirrorEngine,
  poolName: string): Promise<ThinCheckReport & { orphans: number[] }> {
  const poolLv = lvNamed(engine, poolName)
  if (thinPoolOf(poolLv) === undefined) throw new LvmfsError('ENGINE_USAGE', `"${poolName}" is not a thin pool`)
  const pool = await thinPoolsOf(engine).pool(poolLv)
  await pool.commit()
  const handle = engine.open(poolLv.name, { readOnly: true })
  try {
    const report = await thinCheck({ sizeBytes: handle.sizeBytes, read: (t, o) => handle.read(t, o),
      write: async () => { throw new Error('thin-check does not write') }, flush: async () => undefined })
    const named = new Set(engine.vg.descriptor.lvs.map((lv) => thinOf(lv))
      .filter((t) => t?.poolLvId === poolLv.lvId).map((t) => t!.thinId))
    const orphans = pool.status().devices.map((d) => d.thinId).filter((id) => !named.has(id))
    return { ...report, orphans }
  } finally {
    await handle.close()
  }
}

/** thin-check --repair, on a VG this process varied on for it (never under a mount). */
export async function repairThinPool(engine: MirrorEngine, poolName: string): Promise<ThinRepairReport> {
  const poolLv = lvNamed(engine, poolName)
  if (thinPoolOf(poolLv) === undefined) throw new LvmfsError('ENGINE_USAGE', `"${poolName}" is not a thin pool`)
  const handle = engine.open(poolLv.name)
  try {
    return await thinRepair({ sizeBytes: handle.sizeBytes, read: (t, o) => handle.read(t, o),
      write: (d, o) => handle.write(d, o), flush: () => handle.flush() })
  } finally {
    await handle.close()
  }
}
