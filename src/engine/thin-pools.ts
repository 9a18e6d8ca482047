/**
 * The thin pools of one online VG: exactly one ThinPool object per pool LV per process (two
 * would each believe their own in-memory transaction), opened on first use through the mirror
 * engine, committed at most `commitIntervalMs` after a change and on every fsync of a thin LV.
 * The mount serves thin LVs through it, and the CLI verbs inside the daemon use the same one
 * (`thinPoolsOf(engine)`).
 */
import { LvmfsError } from '../errors/index.js'
import { thinOf, thinPoolOf, type LvDescriptor } from '../lvm/index.js'
import type { MirrorEngine, MirroredLv } from '../mirror/index.js'
import { ThinPool, type PoolDevice, type ThinPoolObserver, type ThinPoolStatus } from '../thin/index.js'

export const DEFAULT_COMMIT_INTERVAL_MS = 1000

class LvPoolDevice implements PoolDevice {
  constructor(public handle: MirroredLv) {}
  get sizeBytes(): number {
    return this.handle.sizeBytes
  }
  read(target: Uint8Array, offsetBytes: number): Promise<void> {
    return this.handle.read(target, offsetBytes)
  }
  write(data: Uint8Array, offsetBytes: number): Promise<void> {
    return this.handle.write(data, offsetBytes)
  }
  flush(): Promise<void> {
    return this.handle.flush()
  }
}

interface OpenPool {
  readonly pool: ThinPool
  readonly device: LvPoolDevice
}

export interface ThinPoolReport extends ThinPoolStatus {
  readonly lv: string
  readonly dataPercent: number
  readonly metadataPercent: number
  readonly warning?: string
}

/** Data use at which `lvmfs status` and the log warn (LVM2's thin_pool_autoextend default). */
export const LOW_WATER_PERCENT = 80

export class ThinPools {
  readonly #open = new Map<number, Promise<OpenPool>>()
  #timer: NodeJS.Timeout | undefined
  readonly #extending = new Set<number>()
  #observerFor: ((poolLv: LvDescriptor) => ThinPoolObserver) | undefined

  constructor(readonly engine: MirrorEngine,
    private readonly onError: (error: unknown, pool: string) => void = () => undefined,
    private readonly onEvent: (event: string, pool: string, detail: object) => void = () => undefined) {}

  #poolLv(lvId: number): LvDescriptor {
    const lv = this.engine.vg.descriptor.lvs.find((candidate) => candidate.lvId === lvId)
    if (lv === undefined || thinPoolOf(lv) === undefined) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `thin pool LV ${lvId} is not in volume group "${this.engine.vg.name}"`)
    }
    return lv
  }

  /** Who must hear of every mapping change of each pool (the mount's native tables). */
  setObserverFactory(factory: (poolLv: LvDescriptor) => ThinPoolObserver): void {
    this.#observerFor = factory
    for (const [lvId, open] of this.#open) {
      void open.then(({ pool }) => { pool.observer = factory(this.#poolLv(lvId)) }, () => undefined)
    }
  }

  #observe(poolLv: LvDescriptor, pool: ThinPool): ThinPool {
    if (this.#observerFor !== undefined) pool.observer = this.#observerFor(poolLv)
    return pool
  }

  /** The pool of a pool LV, opened (its last commit) on first use. */
  pool(poolLv: LvDescriptor): Promise<ThinPool> {
    return this.#opened(poolLv.lvId).then((open) => open.pool)
  }

  #opened(lvId: number): Promise<OpenPool> {
    let open = this.#open.get(lvId)
    if (open === undefined) {
      const lv = this.#poolLv(lvId)
      open = (async () => {
        const device = new LvPoolDevice(this.engine.open(lv.name))
        try {
          const pool = this.#observe(lv, await ThinPool.open(device))
          // An lvextend that crashed before the pool took its new blocks: take them now.
          await pool.grow()
          return { pool, device }
        } catch (error) {
          await device.handle.close().catch(() => undefined)
          throw error
        }
      })()
      open.catch(() => this.#open.delete(lvId))
      this.#open.set(lvId, open)
      this.#arm()
    }
    return open
  }

  /** Registers a pool just formatted on `poolLv` through `handle`. */
  adopt(poolLv: LvDescriptor, pool: ThinPool, handle: MirroredLv): void {
    const open = { pool: this.#observe(poolLv, pool), device: new LvPoolDevice(handle) }
    this.#open.set(poolLv.lvId, Promise.resolve(open))
    this.#arm()
  }

  /** The pool serving a thin LV. */
  poolOfThin(lv: LvDescriptor): Promise<{ pool: ThinPool, thinId: number }> {
    const thin = thinOf(lv)
    if (thin === undefined) throw new LvmfsError('ENGINE_USAGE', `"${lv.name}" is not a thin LV`)
    return this.#opened(thin.poolLvId).then((open) => ({ pool: open.pool, thinId: thin.thinId }))
  }

  /** After lvextend of a pool LV: a handle of the new size replaces the old one, and the data area grows. */
  async grown(poolLv: LvDescriptor): Promise<number> {
    const { pool, device } = await this.#opened(poolLv.lvId)
    let old: MirroredLv | undefined
    const blocks = await pool.grow(() => {
      old = device.handle
      device.handle = this.engine.open(poolLv.name)
      return device.sizeBytes
    })
    await old?.close()
    return blocks
  }

  /**
   * Autoextend (`--autoextend-threshold`): once data use reaches the threshold, the pool LV
   * grows by `--autoextend-percent` of its size from the VG's free PPs. A VG without free PPs
   * leaves the pool as it is, with a warning; writes then fail with ENOSPC when it is full.
   */
  async autoextend(poolLv: LvDescriptor): Promise<void> {
    const ext = thinPoolOf(poolLv)
    if (ext === undefined || ext.autoextendThreshold === 0 || this.#extending.has(poolLv.lvId)) return
    const status = (await this.pool(poolLv)).status()
    if (status.dataUsedBlocks * 100 < status.dataBlocks * ext.autoextendThreshold) return
    this.#extending.add(poolLv.lvId)
    try {
      const vg = this.engine.vg
      const lps = Math.max(1, Math.ceil((poolLv.lps.length * Math.max(1, ext.autoextendPercent)) / 100))
      await vg.lvExtend(poolLv.name, lps)
      await this.grown(vg.lvById(poolLv.lvId)!)
      this.onEvent('autoextended', poolLv.name, { addedLps: lps })
    } catch (error) {
      this.onError(error, poolLv.name)
    } finally {
      this.#extending.delete(poolLv.lvId)
    }
  }

  async commitAll(): Promise<void> {
    for (const [lvId, open] of this.#open) {
      const { pool } = await open
      if (!pool.uncommitted) continue
      try {
        await pool.commit()
      } catch (error) {
        this.onError(error, this.engine.vg.descriptor.lvs.find((lv) => lv.lvId === lvId)?.name ?? String(lvId))
      }
    }
  }

  #arm(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { void this.commitAll() }, DEFAULT_COMMIT_INTERVAL_MS)
    this.#timer.unref()
  }

  async reports(): Promise<ThinPoolReport[]> {
    const out: ThinPoolReport[] = []
    for (const lv of this.engine.vg.descriptor.lvs) {
      if (thinPoolOf(lv) === undefined) continue
      const status = (await this.pool(lv)).status()
      const dataPercent = Math.round((status.dataUsedBlocks * 10000) / status.dataBlocks) / 100
      const metadataPercent = Math.round((status.metadataUsedBlocks * 10000) / status.metadataBlocks) / 100
      const warning = dataPercent >= LOW_WATER_PERCENT || metadataPercent >= LOW_WATER_PERCENT
        ? `thin pool "${lv.name}" is ${Math.max(dataPercent, metadataPercent)}% full` : undefined
      out.push({ ...status, lv: lv.name, dataPercent, metadataPercent, ...(warning === undefined ? {} : { warning }) })
    }
    return out
  }

  /** Commits and closes one pool (before its LV is removed or resized). */
  async close(lvId: number): Promise<void> {
    const open = this.#open.get(lvId)
    if (open === undefined) return
    this.#open.delete(lvId)
    const { pool, device } = await open
    if (this.engine.vg.state === 'online') {
      await pool.commit()
      await device.handle.close()
    }
  }

  /** Commits every pool and closes their handles. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    for (const lvId of [...this.#open.keys()]) {
      await this.close(lvId).catch((error: unknown) => this.onError(error, String(lvId)))
    }
  }
}

const byEngine = new WeakMap<MirrorEngine, ThinPools>()

/** The one ThinPools of an engine (the daemon's own, or a CLI process's). */
export function thinPoolsOf(engine: MirrorEngine, onError?: (error: unknown, pool: string) => void,
  onEvent?: (event: string, pool: string, detail: object) => void): ThinPools {
  let pools = byEngine.get(engine)
  if (pools === undefined) {
    pools = new ThinPools(engine, onError, onEvent)
    byEngine.set(engine, pools)
  }
  return pools
}
