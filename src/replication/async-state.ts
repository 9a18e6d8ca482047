/**
 * In-memory state of one asynchronous mirror (source side), rebuilt at start from the persisted
 * dirty set:
 *  - `journal`: writes made through the in-process path since `journalFrom`, in commit-count
 *    order with their data. While it covers every count above the target's mark the propagator
 *    replays it in order (the target passes through prefixes of the source's write sequence).
 *    It is dropped when it grows past its bound or after a restart; the propagator then stages
 *    the changed chunks as of one instant and publishes them in one commit (`staging`), and
 *    keeps doing so: a journal restarted then could replay writes the published image holds.
 *  - `lastCount`: chunk -> commit count of the newest write known in it; a chunk leaves the
 *    dirty set only when its newest write is at or below the new mark.
 *  - `times`: (count, wall clock) samples for "seconds behind".
 */
import type { LvDescriptor } from '../lvm/index.js'
import type { ReplicationContext } from './context.js'
import { keyOf, replicaOf, sourceOf } from './model.js'

export interface JournalEntry {
  readonly count: number
  readonly offsetBytes: number
  readonly data: Buffer
  readonly atMs: number
}

/** A catch-up cycle in progress (see AsyncCatchUp.catchUp). */
export interface StagingCycle {
  /** chunk -> target LP its frozen image is staged in. */
  readonly slots: ReadonlyMap<number, number>
  readonly staged: Set<number>
  /** Frozen images read from the source and not yet written to the target (bounded). */
  readonly captured: Map<number, Buffer>
  /** Set at the freeze instant: from then on a write into an unstaged chunk captures it first. */
  frozen: boolean
  /** Set when captures would outgrow their bound: the attempt publishes nothing. */
  aborted: boolean
}

export class AsyncState {
  journal: JournalEntry[] = []
  journalBytes = 0
  /** The journal holds every in-process write with count >= journalFrom (Infinity: none). */
  journalFrom: number
  readonly lastCount = new Map<number, number>()
  /** Chunks persisted as dirty in the source's ext. */
  readonly persistedDirty = new Set<number>()
  readonly times: Array<{ count: number, atMs: number }> = []
  running: Promise<void> = Promise.resolve()
  staging: StagingCycle | undefined
  timer: NodeJS.Timeout | undefined

  constructor(journalFrom: number) {
    this.journalFrom = journalFrom
  }

  note(count: number, atMs: number): void {
    const last = this.times.at(-1)
    if (last === undefined || last.atMs !== atMs) this.times.push({ count, atMs })
    if (this.times.length > 4096) this.times.splice(0, this.times.length - 4096)
  }

  append(entry: JournalEntry, journalBytesMax: number): void {
    if (this.journalFrom === Infinity) return
    this.journal.push(entry)
    this.journalBytes += entry.data.length
    if (this.journalBytes > journalBytesMax) this.dropJournal(Infinity)
  }

  dropJournal(from: number): void {
    this.journal = []
    this.journalBytes = 0
    this.journalFrom = from
  }

  /** Removes journal entries at or below `count` (they reached the target). */
  trim(count: number): void {
    let index = 0
    while (index < this.journal.length && this.journal[index]!.count <= count) {
      this.journalBytes -= this.journal[index]!.data.length
      index++
    }
    this.journal.splice(0, index)
    while (this.times.length > 1 && this.times[1]!.count <= count) this.times.shift()
  }

  /** Wall clock of the oldest write above `lwm`, if known. */
  oldestAbove(lwm: number): number | undefined {
    return this.times.find((sample) => sample.count > lwm)?.atMs
  }
}

/** The AsyncState of every async target at hand, by `vg/lv` of the target. */
export class AsyncStates {
  readonly #ctx: ReplicationContext
  readonly #states = new Map<string, AsyncState>()
  /** Sources written through the native gate hook: their writes are not journaled. */
  readonly nativeSources = new Set<string>()

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  get(key: string): AsyncState | undefined {
    return this.#states.get(key)
  }

  delete(key: string): void {
    this.#states.delete(key)
  }

  /** The state of an async target, rebuilt from its source's persisted dirty set on first use. */
  of(targetVg: string, target: LvDescriptor): AsyncState {
    const replica = replicaOf(target)!
    const sourceLv = this.#ctx.engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
    // A new mirror journals from its first write; after a restart the journal is gone.
    return this.#stateOf(keyOf(targetVg, target.name), sourceLv, (dirty) => replica.state === 'in-progress' &&
      dirty.length === 0)
  }

  /** The state of a target whose VG is not online (see ReplicationContext.detachedAsyncTargets):
   * it journals nothing, the writes it misses are caught up by copies. */
  ofDetached(key: string, sourceLv: LvDescriptor): AsyncState {
    const state = this.#stateOf(key, sourceLv, () => false)
    state.dropJournal(Infinity)
    return state
  }

  #stateOf(key: string, sourceLv: LvDescriptor | undefined,
    journals: (dirty: readonly number[]) => boolean): AsyncState {
    let state = this.#states.get(key)
    if (state === undefined) {
      const dirty = sourceLv === undefined ? [] : sourceOf(sourceLv)?.dirty[key] ?? []
      state = new AsyncState(journals(dirty) ? 1 : Infinity)
      for (const chunk of dirty) {
        state.persistedDirty.add(chunk)
        state.lastCount.set(chunk, 0)
      }
      this.#states.set(key, state)
    }
    return state
  }

  /** A failed source write: its async targets catch up by copies, so it is never left out. */
  dropJournalsOf(vgName: string, source: LvDescriptor): void {
    for (const child of this.#ctx.children(vgName, source)) {
      if (child.replica.kind === 'mirror-async') this.#states.get(keyOf(child.engine.vg.name, child.lv.name))?.dropJournal(Infinity)
    }
  }

  /** Stops a target's propagator and waits out the cycle in progress. */
  async stopPropagator(key: string): Promise<void> {
    const state = this.#states.get(key)
    if (state !== undefined) await stopTimer(state)
  }

  async stopAll(): Promise<void> {
    for (const state of this.#states.values()) await stopTimer(state)
  }
}

async function stopTimer(state: AsyncState): Promise<void> {
  if (state.timer !== undefined) clearInterval(state.timer)
  state.timer = undefined
  await state.running
}
