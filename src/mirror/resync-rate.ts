/**
 * The resync rate controller, after DRBD's (c-min-rate, c-max-rate, c-fill-target,
 * c-plan-ahead; `shared/design/peers.md`): resync takes what the disks give while nothing else
 * runs, and steps aside for application I/O, but never below a floor, so it always finishes.
 *
 * Every copy asks `acquire(bytes)` before it starts and calls `release(bytes)` when it ends:
 *  - **fill target**: at most `fillTargetBytes` of copies are in flight at once (one copy
 *    always may run); this is the depth of the copy pipeline;
 *  - **load**: each step (`stepMs`, 100 ms as DRBD's SLEEP_TIME) the application I/O counter is
 *    sampled; a step in which it moved is loaded;
 *  - **rate cap**: loaded, the cap drops to `minRateBytesPerSecond` within one step (never
 *    lower: the floor is what resync keeps under load); unloaded, it climbs back linearly over
 *    `planAheadMs` from the floor to `maxRateBytesPerSecond` (to the best unthrottled rate seen
 *    when there is no maximum, after which it is lifted), so a pause between bursts does not
 *    hand the disks back to resync in one step;
 *  - **budget**: a token bucket at the cap, holding at most one step's worth (or one copy).
 *    With no maximum and no load there is no budget at all: only the fill target bounds resync.
 *
 * The measured rate (completed bytes over the last plan-ahead window) gives progress its rate
 * and ETA. Clock and sleep are injectable, so tests check the arithmetic without timing.
 */
import { assert } from '../util/index.js'

export const DEFAULT_MIN_RATE_BYTES_PER_SECOND = 16 * 1024 * 1024
export const DEFAULT_PLAN_AHEAD_MS = 2000
export const DEFAULT_STEP_MS = 100

export interface ResyncRateOptions {
  /** Floor of the copy rate under application I/O, bytes/s (default 16 MiB/s; capped by the
   * maximum). */
  readonly minRateBytesPerSecond?: number
  /** Ceiling of the copy rate without application I/O, bytes/s; unlimited when absent. */
  readonly maxRateBytesPerSecond?: number
  /** Copy bytes in flight at most (the pipeline depth); one copy always may run. */
  readonly fillTargetBytes?: number
  /** Time from the end of application I/O to the full rate, and the window of the measured
   * rate; default 2 s (DRBD's c-plan-ahead). */
  readonly planAheadMs?: number
  /** Controller step: how often the load is sampled; default 100 ms. */
  readonly stepMs?: number
  /** Monotonic count of application I/O operations: the load signal (none: never loaded). */
  readonly appIo?: () => number
}

export interface RateClock {
  now(): number
  sleep(ms: number): Promise<void>
}

export const realClock: RateClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}

export interface RateSnapshot {
  /** Completed copy bytes per second over the last plan-ahead window; undefined before any. */
  readonly rateBytesPerSecond: number | undefined
  /** Application I/O was seen in the last step. */
  readonly loaded: boolean
  /** The cap now (Infinity: none). */
  readonly capBytesPerSecond: number
  readonly inflightBytes: number
}

export class ResyncRateController {
  readonly minRate: number
  readonly maxRate: number | undefined
  readonly fillTargetBytes: number
  readonly planAheadMs: number
  readonly stepMs: number
  readonly #appIo: (() => number) | undefined
  readonly #clock: RateClock
  #inflight = 0
  #waiters: Array<() => void> = []
  #tokens = Number.POSITIVE_INFINITY
  #cap = Number.POSITIVE_INFINITY
  #refilledAt: number | undefined
  #nextStepAt = Number.NEGATIVE_INFINITY
  #lastIo: number | undefined
  #loaded = false
  #lastLoadAt = Number.NEGATIVE_INFINITY
  /** Best rate measured while nothing throttled resync: the ramp's top without a maximum. */
  #peakRate: number | undefined
  readonly #completions: Array<{ at: number, bytes: number }> = []
  #firstAt: number | undefined

  constructor(options: ResyncRateOptions = {}, clock: RateClock = realClock) {
    const { maxRateBytesPerSecond: max, minRateBytesPerSecond: min } = options
    assert(max === undefined || max > 0, 'the maximum rate must be positive')
    assert(min === undefined || min > 0, 'the minimum rate must be positive')
    this.maxRate = max
    this.minRate = Math.min(min ?? DEFAULT_MIN_RATE_BYTES_PER_SECOND, max ?? Number.POSITIVE_INFINITY)
    this.fillTargetBytes = options.fillTargetBytes ?? Number.POSITIVE_INFINITY
    assert(this.fillTargetBytes > 0, 'the fill target must be positive')
    this.planAheadMs = options.planAheadMs ?? DEFAULT_PLAN_AHEAD_MS
    this.stepMs = options.stepMs ?? DEFAULT_STEP_MS
    assert(this.planAheadMs >= 0 && this.stepMs > 0, 'plan-ahead and step must be positive')
    this.#appIo = options.appIo
    this.#clock = clock
    // The first step compares against now: I/O already running when the resync starts counts.
    this.#lastIo = options.appIo?.()
  }

  /** Waits until a copy of `bytes` may start (fill target, then budget); it counts as in
   * flight until `release(bytes)`. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      if (this.#inflight > 0 && this.#inflight + bytes > this.fillTargetBytes) {
        await new Promise<void>((resolve) => this.#waiters.push(resolve))
        continue
      }
      const now = this.#clock.now()
      this.#advance(now)
      if (this.#cap === Number.POSITIVE_INFINITY) break
      this.#tokens = Math.min(this.#tokens, Math.max(bytes, this.#cap * this.stepMs / 1000))
      if (this.#tokens >= bytes) {
        this.#tokens -= bytes
        break
      }
      // Wait for the tokens missing, but wake at the next step at the latest: the cap may move.
      const waitMs = Math.min((bytes - this.#tokens) / this.#cap * 1000, Math.max(1, this.#nextStepAt - now))
      await this.#clock.sleep(Math.max(waitMs, 0.001))
    }
    this.#inflight += bytes
  }

  /** A copy admitted by `acquire(bytes)` ended (whatever its outcome). */
  release(bytes: number): void {
    const now = this.#clock.now()
    this.#inflight = Math.max(0, this.#inflight - bytes)
    this.#firstAt ??= now
    this.#completions.push({ at: now, bytes })
    this.#trim(now)
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }

  snapshot(): RateSnapshot {
    const now = this.#clock.now()
    this.#trim(now)
    return { rateBytesPerSecond: this.#measured(now), loaded: this.#loaded, capBytesPerSecond: this.#cap,
      inflightBytes: this.#inflight }
  }

  #trim(now: number): void {
    const window = Math.max(this.planAheadMs, this.stepMs)
    while (this.#completions.length > 1 && this.#completions[0]!.at <= now - window) this.#completions.shift()
  }

  #measured(now: number): number | undefined {
    if (this.#firstAt === undefined || this.#completions.length === 0) return undefined
    const window = Math.max(this.planAheadMs, this.stepMs)
    // Over the window, or since the first completion when the run is younger than that (then
    // at least one step, so the first copies do not read as an absurd rate).
    const spanMs = Math.max(this.stepMs, Math.min(window, now - this.#firstAt))
    const bytes = this.#completions.filter((entry) => entry.at > now - window).reduce((sum, e) => sum + e.bytes, 0)
    return bytes / (spanMs / 1000)
  }

  /** Refills the bucket for the time passed, samples the load at step boundaries, sets the cap. */
  #advance(now: number): void {
    if (this.#refilledAt !== undefined && this.#cap !== Number.POSITIVE_INFINITY) {
      this.#tokens += this.#cap * Math.max(0, now - this.#refilledAt) / 1000
    }
    this.#refilledAt = now
    if (now >= this.#nextStepAt) {
      this.#nextStepAt = now + this.stepMs
      const io = this.#appIo?.()
      this.#loaded = io !== undefined && io !== this.#lastIo
      this.#lastIo = io
      if (this.#loaded) this.#lastLoadAt = now
      else if (this.#cap === Number.POSITIVE_INFINITY) {
        const rate = this.#measured(now)
        if (rate !== undefined) this.#peakRate = Math.max(this.#peakRate ?? 0, rate)
      }
    }
    this.#cap = this.#capAt(now)
  }

  #capAt(now: number): number {
    const top = this.maxRate ?? Number.POSITIVE_INFINITY
    if (this.#loaded) return this.minRate
    const sinceMs = now - this.#lastLoadAt
    if (sinceMs >= this.planAheadMs) return top
    const rampTop = this.maxRate ?? this.#peakRate
    if (rampTop === undefined) return top
    return this.minRate + (Math.max(rampTop, this.minRate) - this.minRate) * (sinceMs / this.planAheadMs)
  }
}

/** Application I/O of one VG, counted for the resync controller: operations the in-process LV
 * engine runs (`note`), plus counters other paths keep (`addSource`: a daemon adds its native
 * data path's request counters). Only the changes matter. */
export class IoMeter {
  #own = 0
  readonly #sources = new Set<() => number>()

  note(): void {
    this.#own += 1
  }

  /** Adds a monotonic counter; returns the function that removes it. */
  addSource(source: () => number): () => void {
    this.#sources.add(source)
    return () => this.#sources.delete(source)
  }

  count(): number {
    let total = this.#own
    for (const source of this.#sources) total += source()
    return total
  }
}
