/**
 * The daemon side of a shared VG (`lvmfs mount VG MNT --lvs a,b:ro`): connects to the DLM, takes
 * the VG lock EX around the shared vary-on (lvm/shared-vg.ts does the VG lock protocol), then one
 * LV lock per served LV, and gives MountedVg its hooks (serve these LVs only, read-only where
 * asked). Released at unmount; a killed process's locks are released by the DLM (its PW/EX value
 * blocks marked not valid, which the next VG lock holder recovers).
 *
 * LV locks: `LV:<vgId>:<lvId>` (lvId: renames keep the lock), EX for a read-write server, PR for
 * a read-only one (several read-only servers may coexist; a writer excludes every other), taken
 * with noQueue: an LV already served elsewhere fails the mount with ENGINE_BUSY at once.
 *
 * Fencing: an LV lock that is lost (etcd lease not renewed within its TTL, broker restarted
 * without it) may be granted to another host from then on, so the mount stops serving at once
 * (MountedVg.selfFence): every later request answers EIO. The etcd client reports the loss a
 * margin before the lease can expire (etcd-client.ts, watchLease).
 *
 * Replication (shared-replicas.ts): the mount serving a source read-write also takes the locks of
 * its linked replicas (clones, unfinished copies, mirror targets) and serves them; a linked
 * replica is never served without its source.
 *
 * Not supported on a shared VG (refused at mount): LVs with more than one copy and an MWC
 * policy (the MWC log is one area per PV, written by whoever serves a mirrored LV; two
 * processes would overwrite each other's records), and the background auto-resync (it walks
 * every LV of the VG).
 */
import { existsSync, writeFileSync } from 'node:fs'
import { connectDlm, type DlmLock, type DlmSession } from '../dlm/index.js'
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { OnlineVg, SharedVgLock, scanDevices, type LvDescriptor, type VolumeGroup } from '../lvm/index.js'
import { isLinkedReplica, replicaOf } from '../replication/index.js'
import type { SharedVgHooks } from './mounted-vg.js'
import { SharedReplicaLocks, type ReplicaMark } from './shared-replicas.js'

export interface ServedLv {
  readonly name: string
  readonly readOnly: boolean
}

export interface SharedMountOptions {
  readonly lvs: readonly ServedLv[]
  readonly backend: 'broker' | 'etcd'
  /** etcd endpoint(s), comma-separated, for the etcd backend. */
  readonly etcd?: string
  /** etcd lease TTL in seconds (a dead holder's locks go after it). */
  readonly ttlSeconds?: number
}

export interface SharedMountReport {
  readonly backend: string
  readonly lvs: ReadonlyArray<{ name: string; lvId: number; mode: string }>
  readonly vgLockMode: string
  readonly recoveries: number
  readonly reloads: number
  /** Replica lock takeovers (collect, superblocks, validate) and the replicas that failed them. */
  readonly replicaRecoveries: number
  readonly replicaProblems: readonly string[]
  /** True once an LV lock was lost and the mount stopped serving (self-fenced). */
  readonly fenced: boolean
}

type Log = { info(object: object, message: string): void; warn(object: object, message: string): void }

/** Parses `--lvs a,b:ro`. */
export function parseServedLvs(list: string): ServedLv[] {
  const lvs = list.split(',').filter((item) => item !== '').map((item) => {
    const [name, flag, ...rest] = item.split(':')
    if (name === undefined || name === '' || rest.length > 0 || (flag !== undefined && flag !== 'ro')) {
      throw new LvmfsError('ENGINE_USAGE', `invalid --lvs entry "${item}"`, {
        detail: 'Each entry is an LV name, optionally followed by ":ro" (served read-only).' })
    }
    return { name, readOnly: flag === 'ro' }
  })
  if (lvs.length === 0) throw new LvmfsError('ENGINE_USAGE', '--lvs names no logical volume')
  if (new Set(lvs.map((lv) => lv.name)).size !== lvs.length) {
    throw new LvmfsError('ENGINE_USAGE', '--lvs names a logical volume twice')
  }
  return lvs
}

/** Env hook for the kill -9 test: after a commit, still holding EX, if `<path>.arm` exists,
 * create `<path>` and hang (the test kills the process there). */
const PAUSE_ENV = 'LVMFS_TEST_SHARED_PAUSE_AFTER_COMMIT'

export class SharedMount {
  private readonly lvLocks = new Map<number, { lock: DlmLock; readOnly: boolean; name: string; replica: boolean }>()
  private readonly fenceHandlers: Array<(error: Error) => void> = []
  private readonly replicaLocks: SharedReplicaLocks
  /** The replication engine's last superblock of a replica (the value block at release). */
  private markOf: (lv: LvDescriptor) => ReplicaMark | undefined = () => undefined
  private vg: VolumeGroup | undefined
  /** The first lost lock's error, once one was lost. */
  fencedBy: Error | undefined

  private constructor(private readonly options: SharedMountOptions, private readonly dlm: DlmSession,
    readonly vgLock: SharedVgLock, vgId: string, private readonly log: Log) {
    this.replicaLocks = new SharedReplicaLocks(dlm, vgId, log)
  }

  /** Before vary-on: finds the VG id, connects to the DLM and takes the VG lock EX. */
  static async prepare(options: SharedMountOptions, vgName: string, devices: readonly string[], log: Log):
    Promise<SharedMount> {
    const { vgs } = await scanDevices(devices)
    const found = vgs.find((vg) => vg.name === vgName)
    if (found === undefined) throw new LvmfsError('ENGINE_NOT_FOUND', `volume group "${vgName}" not found`)
    const dlm = await connectDlm(options.backend === 'etcd'
      ? { backend: 'etcd', etcd: (options.etcd ?? '').split(','),
        ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }) }
      : { label: `mount ${vgName} pid ${process.pid}` })
    try {
      const pauseFile = process.env[PAUSE_ENV]
      const vgLock = await SharedVgLock.acquire({ dlm, vgId: found.vgId, log,
        ...(pauseFile ? { afterCommit: () => pauseForever(pauseFile) } : {}) })
      if (vgLock.needsRecovery) log.warn({ vg: vgName }, 'VG lock value block not valid: recovering from disk')
      return new SharedMount(options, dlm, vgLock, found.vgId, log)
    } catch (error) {
      await dlm.close().catch(() => undefined)
      throw error
    }
  }

  hooks(): SharedVgHooks {
    return {
      afterVaryOn: (vg) => this.afterVaryOn(vg),
      serves: (lv) => this.lvLocks.has(lv.lvId),
      servesWritable: (lv) => this.lvLocks.get(lv.lvId)?.readOnly === false,
      claimCreated: (vg, lv) => this.claimCreated(vg, lv),
      setMarkSource: (markOf) => { this.markOf = markOf },
      onFence: (handler) => { this.fenceHandlers.push(handler) },
      checkOpen: (lv, writable) => {
        if (writable && this.lvLocks.get(lv.lvId)?.readOnly === true) {
          throw new LvmfsError('ENGINE_BUSY', `"${lv.name}" is served read-only by this mount (--lvs ${lv.name}:ro)`)
        }
      },
    }
  }

  private async afterVaryOn(vg: VolumeGroup): Promise<void> {
    if (!(vg instanceof OnlineVg)) throw new LvmfsError('ENGINE_NOT_SUPPORTED', 'a shared mount needs an OnlineVg')
    this.vg = vg
    await this.vgLock.attach(vg)
    const listed = new Map<string, LvDescriptor>()
    for (const served of this.options.lvs) {
      const lv = vg.lvByName(served.name)
      if (lv === undefined) {
        throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${served.name}" not found in "${vg.name}"`)
      }
      refuseUnsharable(lv)
      listed.set(served.name, lv)
    }
    for (const lv of listed.values()) this.refuseReplicaWithoutSource(vg, lv, listed)
    for (const served of this.options.lvs) {
      const lv = listed.get(served.name)!
      const mode = served.readOnly ? 'PR' : 'EX'
      // A replica's lock lives in its source's recovery domain (claimReplicas); a linked one is
      // taken with its source's, below.
      const replica = replicaOf(lv)
      if (replica !== undefined) {
        if (!isLinkedReplica(lv)) await this.claimReplicas(vg, replica.source.lvId, [lv], mode)
        continue
      }
      try {
        const lock = await this.dlm.lock(`LV:${vg.vgId}:${lv.lvId}`, mode, { noQueue: true })
        this.lvLocks.set(lv.lvId, { lock, readOnly: served.readOnly, name: lv.name, replica: false })
        lock.onLost((error) => this.fence(error))
      } catch (error) {
        if (isLvmfsError(error) && error.code === 'DLM_NOTQUEUED') {
          throw new LvmfsError('ENGINE_BUSY', `logical volume "${lv.name}" is served by another process`, {
            hint: served.readOnly ? 'Another process serves it read-write.' : 'Unmount it there first.',
            context: { vg: vg.name, lv: lv.name } })
        }
        throw error
      }
    }
    for (const source of [...this.lvLocks.values()].filter((held) => !held.readOnly && !held.replica)) {
      const sourceLv = vg.lvByName(source.name)!
      await this.claimReplicas(vg, sourceLv.lvId, linkedReplicasOf(vg, sourceLv))
    }
    vg.onChange(() => { void this.releaseRemoved(vg) })
    this.log.info({ lvs: this.report().lvs, backend: this.options.backend }, 'shared VG locks taken')
  }

  /** A linked replica is served by the daemon serving its source read-write (shared-replicas.ts). */
  private refuseReplicaWithoutSource(vg: VolumeGroup, lv: LvDescriptor, listed: Map<string, LvDescriptor>): void {
    const replica = replicaOf(lv)
    if (replica === undefined || !isLinkedReplica(lv)) return
    const source = replica.source.vg === vg.name ? vg.lvById(replica.source.lvId) : undefined
    const servedRw = source !== undefined && listed.has(source.name) &&
      this.options.lvs.some((served) => served.name === source.name && !served.readOnly)
    if (servedRw) return
    throw new LvmfsError('ENGINE_NOT_SUPPORTED', `"${lv.name}" is a ${replica.kind} replica of "${replica.source.lv}": ` +
      'it is served with its source', {
      detail: 'The daemon serving a source read-write runs its replication and serves its replicas under their LV ' +
        'locks, so nothing writes a replica behind the source\'s copy-on-write, job or propagator.',
      hint: `Mount --lvs ${replica.source.lv} (its replicas come with it).`, context: { vg: vg.name, lv: lv.name } })
  }

  private async claimReplicas(vg: VolumeGroup, sourceLvId: number, replicas: readonly LvDescriptor[],
    mode: 'EX' | 'PR' = 'EX'): Promise<void> {
    const readOnly = new Set(this.options.lvs.filter((served) => served.readOnly).map((served) => served.name))
    await this.replicaLocks.claim(vg, sourceLvId, replicas.filter((lv) => !this.lvLocks.has(lv.lvId)), (lv, lock) => {
      this.lvLocks.set(lv.lvId, { lock, readOnly: readOnly.has(lv.name), name: lv.name, replica: true })
      lock.onLost((error) => this.fence(error))
    }, mode)
  }

  /** replicate made `lv` for a source served here: take its lock before it is answered. */
  private async claimCreated(vg: VolumeGroup, lv: LvDescriptor): Promise<void> {
    // A thin clone is a thin snapshot, an LV of its own: served where it is listed, as lvcreate's.
    const replica = replicaOf(lv)
    if (replica !== undefined) await this.claimReplicas(vg, replica.source.lvId, [lv])
  }

  /** Replica locks of LVs that no longer exist (lvremove) go. */
  private async releaseRemoved(vg: VolumeGroup): Promise<void> {
    for (const [lvId, held] of this.lvLocks) {
      if (!held.replica || vg.lvById(lvId) !== undefined) continue
      this.lvLocks.delete(lvId)
      await this.replicaLocks.release(held.lock, undefined)
    }
  }

  private fence(error: Error): void {
    if (this.fencedBy !== undefined) return
    this.fencedBy = error
    this.log.warn({ err: error }, 'an LV lock is lost: self-fencing')
    for (const handler of this.fenceHandlers) handler(error)
  }

  report(): SharedMountReport {
    return { backend: this.options.backend, vgLockMode: this.vgLock.mode, recoveries: this.vgLock.recoveries,
      reloads: this.vgLock.reloads, fenced: this.fencedBy !== undefined,
      replicaRecoveries: this.replicaLocks.recoveries, replicaProblems: [...this.replicaLocks.problems],
      lvs: [...this.lvLocks].map(([lvId, held]) => ({ name: held.name, lvId, mode: held.lock.mode })) }
  }

  /** After the daemon varied off: LV locks, VG lock, DLM session. */
  async close(): Promise<void> {
    await Promise.all([...this.lvLocks.entries()].map(async ([lvId, held]) => {
      const lv = held.replica ? this.vg?.lvById(lvId) : undefined
      if (held.replica) await this.replicaLocks.release(held.lock, lv === undefined ? undefined : this.markOf(lv))
      else await held.lock.unlock().catch(() => undefined)
    }))
    this.lvLocks.clear()
    await this.replicaLocks.close()
    await this.vgLock.release()
    await this.dlm.close().catch(() => undefined)
  }
}

/** The replicas in `vg` still bound to `source` (served with it). */
function linkedReplicasOf(vg: VolumeGroup, source: LvDescriptor): LvDescriptor[] {
  return vg.descriptor.lvs.filter((lv) => {
    const replica = replicaOf(lv)
    return replica?.source.vg === vg.name && replica.source.lvId === source.lvId && isLinkedReplica(lv)
  })
}

function refuseUnsharable(lv: LvDescriptor): void {
  if (lv.copies > 1 && lv.mwc !== 'off') {
    throw new LvmfsError('ENGINE_NOT_SUPPORTED', `"${lv.name}" is mirrored with MWC ${lv.mwc}: not served from a shared VG`, {
      detail: 'The MWC log is one area per PV; processes sharing the VG would overwrite each other\'s records.',
      hint: 'Serve it from a non-shared VG, or use --mwc off.' })
  }
}

async function pauseForever(file: string): Promise<void> {
  if (!existsSync(`${file}.arm`)) return
  writeFileSync(file, `${process.pid}\n`)
  await new Promise<never>(() => { /* killed here by the test */ })
}
