/**
 * Which write-gate regions of mounted mirrored LVs are open in the native data path.
 *
 * An open gate lets native writes into a region (an MWC logical track group) run without
 * asking TypeScript; opening one may pin the LTG in the MWC log (MirrorEngine.beforeWriteRegion).
 * The keeper bounds the gates its host says must be bounded (an MWC cache entry, replication's
 * write tracking) below the MWC cache size, closing the least recently opened of them when full.
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
  /** Resolves true when the open gate counts against the bound (see the header). */
  pin(nodeid: number, region: number): Promise<boolean>
  unpin(nodeid: number, region: number): void
}

function keyOf(nodeid: number, region: number): string {
  return `${nodeid}:${region}`
}

export class GateKeeper {
  private readonly open = new Map<string, { nodeid: number; region: number }>()
  /** The open gates that count against `maxOpen`, oldest first. */
  private readonly bounded = new Map<string, { nodeid: number; region: number }>()
  private readonly chains = new Map<string, Promise<void>>()
  private readonly admission = new Map<number, VolumeAdmission>()

  constructor(private readonly host: GateHost, private readonly maxOpen: number) {}

  get openCount(): number {
    return this.open.size
  }

  /** Called for a write into a closed region: pins it and opens the gate. */
  async openGate(nodeid: number, region: number): Promise<void> {
    const admission = this.admissionOf(nodeid)
    await admission.enterShared()
    try {
      await this.chain(keyOf(nodeid, region), async () => {
        const key = keyOf(nodeid, region)
        if (this.open.has(key)) return
        const holds = await this.host.pin(nodeid, region)
        this.open.set(key, { nodeid, region })
        if (holds) this.bounded.set(key, { nodeid, region })
        this.host.setGate(nodeid, region, true)
      })
    } finally {
      admission.leaveShared()
    }
    while (this.bounded.size > this.maxOpen) {
      const oldest = this.bounded.values().next().value
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
      this.bounded.delete(key)
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
      this.bounded.delete(key)
      this.host.unpin(nodeid, entry.region)
    }
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
