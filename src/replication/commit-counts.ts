/**
 * Commit counts of async mirror sources: every source write gets the next count, and the
 * propagator waits until every write numbered up to the count it took has been journaled.
 */
import type { LvDescriptor } from '../lvm/index.js'
import type { Located, ReplicationContext } from './context.js'
import { sourceOf } from './model.js'

/** Commit counts reserved per descriptor commit (see next). */
const COUNT_RESERVE = 1024

export class CommitCounts {
  readonly #ctx: ReplicationContext
  readonly #counts = new Map<string, number>()
  /** Source key -> commit counts handed out whose write has not settled yet. */
  readonly #pending = new Map<string, Set<number>>()
  /** Source key -> propagators waiting for every count up to theirs to settle. */
  readonly #waiters = new Map<string, Array<{ readonly count: number, readonly resolve: () => void }>>()

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  /**
   * The live commit count of a source. After a restart it starts at the persisted floor, or at
   * the highest mark of its targets if that is higher (chlwm may have raised one), so counts
   * only ever rise.
   */
  async current(vgName: string, source: LvDescriptor): Promise<number> {
    const key = sourceKey(vgName, source)
    const cached = this.#counts.get(key)
    if (cached !== undefined) return cached
    const lwms: number[] = []
    for (const child of this.#ctx.children(vgName, source)) {
      if (child.replica.kind !== 'mirror-async') continue
      lwms.push((await this.#ctx.superblocks.of(child).catch(() => undefined))?.lwm ?? 0)
    }
    const count = Math.max(this.#counts.get(key) ?? 0, sourceOf(source)?.commitCount ?? 0, ...lwms)
    this.#counts.set(key, count)
    return count
  }

  /** chlwm on the source's own site: its count becomes at least `lwm`. Returns the previous count. */
  async raise(vgName: string, source: LvDescriptor, lwm: number): Promise<number> {
    const previous = await this.current(vgName, source)
    this.#counts.set(sourceKey(vgName, source), Math.max(previous, lwm))
    return previous
  }

  /**
   * The next commit count. Counts are reserved in blocks: the persisted floor (source ext) is
   * raised to count + COUNT_RESERVE before a count beyond the previous reservation is handed
   * out, so after a crash counting restarts above every count given before it (one descriptor
   * commit per COUNT_RESERVE writes).
   */
  async next(vgName: string, source: Located): Promise<number> {
    const key = sourceKey(vgName, source.lv)
    await this.current(vgName, source.lv)
    // Read and bump with no await in between: concurrent writers get distinct counts.
    const count = this.#counts.get(key)! + 1
    this.#counts.set(key, count)
    let pending = this.#pending.get(key)
    if (pending === undefined) this.#pending.set(key, pending = new Set())
    pending.add(count)
    const floor = sourceOf(this.#ctx.fresh(source))?.commitCount ?? 0
    if (count > floor) {
      await this.#ctx.sources.update(source, (ext) => ({ ...ext,
        commitCount: Math.max(ext.commitCount, count + COUNT_RESERVE) }))
    }
    return count
  }

  /**
   * A write's count is settled once it is journaled, or once it failed (then the journals of
   * the source's async targets are dropped: the next cycle copies the changed chunks, so a
   * partially applied failed write is never left out of the target).
   */
  settle(vgName: string, source: LvDescriptor, count: number, journaled: boolean): void {
    const key = sourceKey(vgName, source)
    this.#pending.get(key)?.delete(count)
    if (!journaled) this.#ctx.asyncStates.dropJournalsOf(vgName, source)
    this.#wake(key)
  }

  /** Resolves once every write with a count at or below `count` is settled (journal complete). */
  async settled(vgName: string, source: LvDescriptor, count: number): Promise<void> {
    const key = sourceKey(vgName, source)
    if (!this.#unsettledUpTo(key, count)) return
    await new Promise<void>((resolve) => {
      const waiters = this.#waiters.get(key)
      if (waiters === undefined) this.#waiters.set(key, [{ count, resolve }])
      else waiters.push({ count, resolve })
    })
  }

  #unsettledUpTo(key: string, count: number): boolean {
    const pending = this.#pending.get(key)
    return pending !== undefined && [...pending].some((value) => value <= count)
  }

  #wake(key: string): void {
    const waiters = this.#waiters.get(key)
    if (waiters === undefined) return
    const still = waiters.filter((waiter) => {
      if (this.#unsettledUpTo(key, waiter.count)) return true
      waiter.resolve()
      return false
    })
    if (still.length === 0) this.#waiters.delete(key)
    else this.#waiters.set(key, still)
  }
}

function sourceKey(vgName: string, source: LvDescriptor): string {
  return `${vgName}:${source.lvId}`
}
