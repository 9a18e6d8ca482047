/**
 * Which write-gate regions of mounted mirrored LVs are open in the native data path.
 *
 * An open gate lets native writes into a region (an MWC logical track group) run without
 * asking TypeScript; opening one may pin the LTG in the MWC log (MirrorEngine.beforeWriteRegion).
 * The keeper bounds the gates its host says must be bounded (an activity-log entry, replication's
 * write tracking), per volume, to the bound the host gives when it pins (the LV's al-extents, or
 * replication's), closing the least recently opened gate of that volume when it is full.
 * The others (a mirror with MWC off or passive, no replication) stay open until something closes
 * them: bounding those would only send writes back through TypeScript for no gain. Closing is: close the
 * native gate, wait for writes admitted before (drain), then unpin. The same close is how
 * resync and scrub get a region to themselves (quiesce).
 *
 * Invariants: a region is open natively only while it is in `open`; at most one open or close
 * of a region is in flight (operations on one key are chained).
 *
 * `quiesce` gives a caller one instant for a set of regions: no opening (pin + native open) of
 * any region of that volume runs while it holds the volume, so closing gates inside it leaves
 * no hook half-done that could reopen a region after the instant. Opens take the volume shared
 * (outside the per-region chain, so a close inside quiesce never waits on a queued open); a
 * waiting quiesce holds back new opens so it is not starved by a busy writer.
 */
export interface GateHost {
  setGate(nodeid: number, region: number, open: boolean): void
  drainWrites(nodeid: number): Promise<void>
  /** Resolves to the most gates of this volume that may stay open when the gate counts against
   * a bound (see the header), or undefined when it does not. */
  pin(nodeid: number, region: number): Promise<number | undefined>
  unpin(nodeid: number, region: number): void
}

function keyOf(nodeid: number, region: number): string {
  return `${nodeid}:${region}`
}

export class GateKeeper {
  private readonly open = new Map<string, { nodeid: number; region: number }>()
  /** Per volume, the open gates that count against its bound, oldest first. */
  private readonly bounded = new Map<number, Map<string, { nodeid: number; region: number }>>()
  private readonly chains = new Map<string, Promise<void>>()
  private readonly admission = new Map<number, VolumeAdmission>()

  /** `maxOpen` caps every volume's bound (a test's or an operator's override). */
  constructor(private readonly host: GateHost, private readonly maxOpen = Number.POSITIVE_INFINITY) {}

  get openCount(): number {
    return this.open.size
  }

  /** Called for a write into a closed region: pins it and opens the gate. */
  async openGate(nodeid: number, region: number): Promise<void> {
    const admission = this.admissionOf(nodeid)
    let bound: number | undefined
    await admission.enterShared()
    try {
      await this.chain(keyOf(nodeid, region), async () => {
        const key = keyOf(nodeid, region)
        if (this.open.has(key)) return
        bound = await this.host.pin(nodeid, region)
        this.open.set(key, { nodeid, region })
        if (bound !== undefined) this.boundedOf(nodeid).set(key, { nodeid, region })
        this.host.setGate(nodeid, region, true)
      })
    } finally {
      admission.leaveShared()
    }
    if (bound === undefined) return
    const limit = Math.max(1, Math.min(bound, this.maxOpen))
    const bounded = this.boundedOf(nodeid)
    while (bounded.size > limit) {
      const oldest = bounded.values().next().value
      if (!oldest) break
      await this.closeGate(oldest.nodeid, oldest.region)
    }
  }

  /** Closes one region's gate and waits until no native write is inside it. */
  async closeGate(nodeid: number, region: number): Promise<void> {
    await this.chain(keyOf(nodeid, region), async () => {
      const key = keyOf(nodeid, region)
      this.host.setGate(nodeid, region, false)
      await this.host.drainWrites(nodeid)
      this.bounded.get(nodeid)?.delete(key)
      if (!this.open.delete(key)) return
      this.host.unpin(nodeid, region)
    })
  }

  /** Closes every open gate of one volume (clean close of a passive-MWC LV, removal). */
  async closeVolume(nodeid: number): Promise<void> {
    const regions = [...this.open.values()].filter((entry) => entry.nodeid === nodeid)
    for (const entry of regions) await this.closeGate(entry.nodeid, entry.region)
  }

  /** Runs `step` while no gate of the volume is being opened (see the header). */
  async quiesce<T>(nodeid: number, step: () => Promise<T>): Promise<T> {
    const admission = this.admissionOf(nodeid)
    await admission.enterExclusive()
    try {
      return await step()
    } finally {
      admission.leaveExclusive()
    }
  }

  private boundedOf(nodeid: number): Map<string, { nodeid: number; region: number }> {
    let bounded = this.bounded.get(nodeid)
    if (bounded === undefined) this.bounded.set(nodeid, bounded = new Map())
    return bounded
  }

  private admissionOf(nodeid: number): VolumeAdmission {
    let admission = this.admission.get(nodeid)
    if (admission === undefined) this.admission.set(nodeid, admission = new VolumeAdmission())
    return admission
  }

  /** Forgets a volume whose native map is gone (no writes can arrive any more). */
  forgetVolume(nodeid: number): void {
    for (const [key, entry] of this.open) {
      if (entry.nodeid !== nodeid) continue
      this.open.delete(key)
      this.host.unpin(nodeid, entry.region)
    }
    this.bounded.delete(nodeid)
  }

  /** Forgets every gate (after unmount: no native write can arrive any more). */
  forgetAll(): void {
    for (const entry of [...this.open.values()]) this.forgetVolume(entry.nodeid)
  }

  private async chain(key: string, step: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(key) ?? Promise.resolve()
    const next = previous.catch(() => undefined).then(step)
    this.chains.set(key, next)
    try {
      await next
    } finally {
      if (this.chains.get(key) === next) this.chains.delete(key)
    }
  }
}

/** A readers-writer lock with writer preference: opens are readers, quiesce is the writer. */
class VolumeAdmission {
  private readers = 0
  private writer = false
  private writersWaiting = 0
  private wakeups: Array<() => void> = []

  async enterShared(): Promise<void> {
    while (this.writer || this.writersWaiting > 0) await this.wait()
    this.readers++
  }

  leaveShared(): void {
    this.readers--
    this.wakeAll()
  }

  async enterExclusive(): Promise<void> {
    this.writersWaiting++
    try {
      while (this.writer || this.readers > 0) await this.wait()
    } finally {
      this.writersWaiting--
    }
    this.writer = true
  }

  leaveExclusive(): void {
    this.writer = false
    this.wakeAll()
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.wakeups.push(resolve))
  }

  private wakeAll(): void {
    const wakeups = this.wakeups
    this.wakeups = []
    for (const wake of wakeups) wake()
  }
}
