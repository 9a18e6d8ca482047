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
 * Not supported on a shared VG (refused at mount): LVs with more than one copy and an MWC
 * policy (the MWC log is one area per PV, written by whoever serves a mirrored LV; two
 * processes would overwrite each other's records), and the background auto-resync (it walks
 * every LV of the VG).
 */
import { existsSync, writeFileSync } from 'node:fs'
import { connectDlm, type DlmLock, type DlmSession } from '../dlm/index.js'
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { OnlineVg, SharedVgLock, scanDevices, type LvDescriptor, type VolumeGroup } from '../lvm/index.js'
import type { SharedVgHooks } from './mounted-vg.js'

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
  private readonly lvLocks = new Map<number, { lock: DlmLock; readOnly: boolean; name: string }>()
  private readonly fenceHandlers: Array<(error: Error) => void> = []
  /** The first lost lock's error, once one was lost. */
  fencedBy: Error | undefined

  private constructor(private readonly options: SharedMountOptions, private readonly dlm: DlmSession,
    readonly vgLock: SharedVgLock, private readonly log: Log) {}

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
      return new SharedMount(options, dlm, vgLock, log)
    } catch (error) {
      await dlm.close().catch(() => undefined)
      throw error
    }
  }

  hooks(): SharedVgHooks {
    return {
      afterVaryOn: (vg) => this.afterVaryOn(vg),
      serves: (lv) => this.lvLocks.has(lv.lvId),
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
    await this.vgLock.attach(vg)
    for (const served of this.options.lvs) {
      const lv = vg.lvByName(served.name)
      if (lv === undefined) {
        throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${served.name}" not found in "${vg.name}"`)
      }
      refuseUnsharable(lv)
      const mode = served.readOnly ? 'PR' : 'EX'
      try {
        const lock = await this.dlm.lock(`LV:${vg.vgId}:${lv.lvId}`, mode, { noQueue: true })
        this.lvLocks.set(lv.lvId, { lock, readOnly: served.readOnly, name: lv.name })
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
    this.log.info({ lvs: this.options.lvs, backend: this.options.backend }, 'shared VG locks taken')
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
      lvs: [...this.lvLocks].map(([lvId, held]) => ({ name: held.name, lvId, mode: held.lock.mode })) }
  }

  /** After the daemon varied off: LV locks, VG lock, DLM session. */
  async close(): Promise<void> {
    await Promise.all([...this.lvLocks.values()].map((held) => held.lock.unlock().catch(() => undefined)))
    this.lvLocks.clear()
    await this.vgLock.release()
    await this.dlm.close().catch(() => undefined)
  }
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
