/**
 * State changes of a mounted VG as a stream of events (`lvmfs events`, the `events` control
 * method): PVs going missing or coming back, stale partition counts, resyncs starting and
 * finishing, the VG forced off, replication jobs done. Each is found by comparing a snapshot
 * with the state after every VG commit, so an event reports what was committed, not attempts.
 */
import type { MountedVg } from './mounted-vg.js'
import { stalePartitionsOf, type ResyncActivity } from './status.js'

export type VgEventBody =
  /** The first event of every stream: the state the later events change. */
  | { type: 'watching'; pvs: Array<{ pvIndex: number; pv: string; state: string }>;
      lvs: Array<{ lv: string; stalePartitions: number }>; resyncs: number }
  | { type: 'pv-missing' | 'pv-returned' | 'pv-removed'; pvIndex: number; pvId: string; pv: string; state: string;
      previous: string }
  | { type: 'stale-partitions'; lv: string; stalePartitions: number; previous: number }
  | { type: 'resync-started'; id: number; what: string; totalBytes: number }
  | { type: 'resync-done'; id: number; what: string; doneBytes: number; totalBytes: number }
  | { type: 'vg-forced-off'; error: string }
  | { type: 'job-done'; jobId: string; state: string; lv: string }

export type VgEvent = VgEventBody & { readonly seq: number; readonly time: string; readonly vg: string }

/** `MountedVg.activities`: a map that tells when an activity appears and when it goes. */
export class ActivityMap extends Map<number, ResyncActivity> {
  #listener: ((what: 'started' | 'done', activity: ResyncActivity) => void) | undefined

  listen(listener: ((what: 'started' | 'done', activity: ResyncActivity) => void) | undefined): void {
    this.#listener = listener
  }

  override set(id: number, activity: ResyncActivity): this {
    const started = !this.has(id)
    super.set(id, activity)
    if (started) this.#listener?.('started', activity)
    return this
  }

  override delete(id: number): boolean {
    const activity = this.get(id)
    const deleted = super.delete(id)
    if (activity !== undefined) this.#listener?.('done', activity)
    return deleted
  }
}

const PV_EVENT = { missing: 'pv-missing', active: 'pv-returned', removed: 'pv-removed' } as const

export class EventHub {
  readonly #mounted: MountedVg
  readonly #listeners = new Set<(event: VgEvent) => void>()
  readonly #enders = new Set<() => void>()
  readonly #unsubscribe: Array<() => void> = []
  #seq = 0
  #pvStates: string[]
  readonly #stale = new Map<number, number>()
  readonly #jobs = new Map<string, string>()
  /** Job diffs read the replication engine asynchronously; one at a time keeps events in order. */
  #jobDiff: Promise<void>
  #closed = false

  constructor(mounted: MountedVg) {
    this.#mounted = mounted
    const vg = mounted.vg
    this.#pvStates = vg.descriptor.pvs.map((_pv, index) => vg.pvState(index))
    for (const lv of vg.descriptor.lvs) this.#stale.set(lv.lvId, stalePartitionsOf(vg, lv))
    this.#jobDiff = this.#diffJobs(false)
    this.#unsubscribe.push(vg.onChange(() => this.#diff()))
    this.#unsubscribe.push(vg.onForceOff((error) => this.#emit({ type: 'vg-forced-off', error: error.message })))
    mounted.activities.listen((what, activity) => this.#emit(what === 'started'
      ? { type: 'resync-started', id: activity.id, what: activity.what, totalBytes: activity.totalBytes }
      : { type: 'resync-done', id: activity.id, what: activity.what, doneBytes: activity.doneBytes,
        totalBytes: activity.totalBytes }))
    this.#unsubscribe.push(() => mounted.activities.listen(undefined))
  }

  /**
   * Sends every event to `send`, starting with a `watching` snapshot, until `signal` aborts (the
   * client went away) or the hub closes (the daemon is stopping).
   */
  async stream(send: (event: VgEvent) => void, signal: AbortSignal): Promise<{ ended: 'client' | 'daemon' }> {
    if (this.#closed) return { ended: 'daemon' }
    // Events of a commit whose job diff is still running would otherwise reach this client
    // before the snapshot they change.
    await this.#jobDiff
    return await new Promise((resolve) => {
      const end = (ended: 'client' | 'daemon'): void => {
        this.#listeners.delete(send)
        this.#enders.delete(onClose)
        signal.removeEventListener('abort', onAbort)
        resolve({ ended })
      }
      const onAbort = (): void => end('client')
      const onClose = (): void => end('daemon')
      if (signal.aborted) return end('client')
      signal.addEventListener('abort', onAbort)
      this.#enders.add(onClose)
      send(this.#stamp(this.#snapshot()))
      this.#listeners.add(send)
    })
  }

  /** Ends every stream (their clients get the final frame) and stops watching the VG. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    for (const end of [...this.#enders]) end()
  }

  #snapshot(): VgEventBody {
    const vg = this.#mounted.vg
    return { type: 'watching',
      pvs: vg.descriptor.pvs.map((pv, pvIndex) => ({ pvIndex, pv: pv.lastPath, state: this.#pvStates[pvIndex] ?? 'unknown' })),
      lvs: vg.descriptor.lvs.map((lv) => ({ lv: lv.name, stalePartitions: this.#stale.get(lv.lvId) ?? 0 })),
      resyncs: this.#mounted.activities.size }
  }

  #stamp(body: VgEventBody): VgEvent {
    return { seq: ++this.#seq, time: new Date().toISOString(), vg: this.#mounted.vg.name, ...body }
  }

  #emit(body: VgEventBody): void {
    if (this.#closed || this.#listeners.size === 0) return
    const event = this.#stamp(body)
    for (const listener of this.#listeners) listener(event)
  }

  #diff(): void {
    const vg = this.#mounted.vg
    if (vg.state !== 'online') return
    const pvStates = vg.descriptor.pvs.map((_pv, index) => vg.pvState(index))
    // vgextend and vgreduce renumber PVs: only a PV still at its index changes state.
    if (pvStates.length === this.#pvStates.length) {
      pvStates.forEach((state, pvIndex) => {
        const previous = this.#pvStates[pvIndex]!
        const pv = vg.descriptor.pvs[pvIndex]!
        if (state !== previous) {
          this.#emit({ type: PV_EVENT[state], pvIndex, pvId: pv.pvId, pv: pv.lastPath, state, previous })
        }
      })
    }
    this.#pvStates = pvStates
    const seen = new Set<number>()
    for (const lv of vg.descriptor.lvs) {
      seen.add(lv.lvId)
      const stalePartitions = stalePartitionsOf(vg, lv)
      const previous = this.#stale.get(lv.lvId) ?? 0
      if (stalePartitions !== previous) this.#emit({ type: 'stale-partitions', lv: lv.name, stalePartitions, previous })
      this.#stale.set(lv.lvId, stalePartitions)
    }
    for (const lvId of [...this.#stale.keys()]) if (!seen.has(lvId)) this.#stale.delete(lvId)
    this.#jobDiff = this.#jobDiff.then(() => this.#diffJobs(true))
  }

  async #diffJobs(report: boolean): Promise<void> {
    const jobs = await this.#mounted.replication.jobs().catch(() => undefined)
    if (jobs === undefined) return
    for (const job of jobs) {
      const previous = this.#jobs.get(job.id)
      if (report && previous === 'INPROGRESS' && job.state !== 'INPROGRESS') {
        this.#emit({ type: 'job-done', jobId: job.id, state: job.state, lv: job.volume.lv })
      }
      this.#jobs.set(job.id, job.state)
    }
  }
}
