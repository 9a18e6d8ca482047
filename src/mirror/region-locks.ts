/**
 * Shared/exclusive locks on fixed-size regions of one LV.
 *
 * Application writes take regions shared (they may overlap each other, as on any block device);
 * resync, scrub and MWC recovery take one region exclusive while they read the source and write
 * the targets, so a copy never overwrites newer data with older.
 *
 * Invariants: a region is held either by any number of shared holders or by one exclusive
 * holder; a queued exclusive request blocks new shared holders (resync cannot starve); shared
 * holders acquire regions in ascending order, exclusive holders hold one region at a time, so
 * there is no deadlock.
 */
import { assert } from '../util/index.js'

interface RegionState {
  shared: number
  exclusive: boolean
  waiters: Array<{ exclusive: boolean, wake: () => void }>
}

export class RegionLocks {
  readonly #regions = new Map<number, RegionState>()

  #state(region: number): RegionState {
    let state = this.#regions.get(region)
    if (state === undefined) {
      state = { shared: 0, exclusive: false, waiters: [] }
      this.#regions.set(region, state)
    }
    return state
  }

  #grantable(state: RegionState, exclusive: boolean): boolean {
    if (exclusive) return !state.exclusive && state.shared === 0
    return !state.exclusive && !state.waiters.some((waiter) => waiter.exclusive)
  }

  async #acquire(region: number, exclusive: boolean): Promise<void> {
    const state = this.#state(region)
    if (state.waiters.length === 0 && this.#grantable(state, exclusive)) {
      this.#take(state, exclusive)
      return
    }
    await new Promise<void>((wake) => state.waiters.push({ exclusive, wake }))
  }

  #take(state: RegionState, exclusive: boolean): void {
    if (exclusive) state.exclusive = true
    else state.shared += 1
  }

  #release(region: number, exclusive: boolean): void {
    const state = this.#regions.get(region)
    assert(state !== undefined, `region ${region} released but not held`)
    if (exclusive) {
      assert(state.exclusive, `region ${region} not held exclusive`)
      state.exclusive = false
    } else {
      assert(state.shared > 0, `region ${region} not held shared`)
      state.shared -= 1
    }
    // Wake waiters in FIFO order while they are compatible with the holders.
    while (state.waiters.length > 0) {
      const next = state.waiters[0]!
      const free = next.exclusive ? !state.exclusive && state.shared === 0 : !state.exclusive
      if (!free) break
      state.waiters.shift()
      this.#take(state, next.exclusive)
      next.wake()
      if (next.exclusive) break
    }
    if (!state.exclusive && state.shared === 0 && state.waiters.length === 0) this.#regions.delete(region)
  }

  /** Takes every region in [first, last] shared; resolves to a release function. */
  async shared(first: number, last: number): Promise<() => void> {
    assert(first <= last, 'empty region range')
    for (let region = first; region <= last; region++) await this.#acquire(region, false)
    let released = false
    return () => {
      assert(!released, 'region locks released twice')
      released = true
      for (let region = first; region <= last; region++) this.#release(region, false)
    }
  }

  async exclusive(region: number): Promise<() => void> {
    await this.#acquire(region, true)
    let released = false
    return () => {
      assert(!released, 'region lock released twice')
      released = true
      this.#release(region, true)
    }
  }

  /** Number of regions with holders or waiters (tests and leak checks). */
  get busyRegions(): number {
    return this.#regions.size
  }
}
