/**
 * Glue for the daemon: a GateControl built from the gate keeper's primitives, so the mount only
 * supplies how volumes map to FUSE nodes and how to close gates and refresh maps.
 *
 *   const gates = gateControlFrom({
 *     nodeidOf: (vg, lv) => nodeidOf(vgOf(vg).lvByName(lv)!),
 *     gateBytesOf: (vg, lv) => currentMapOf(vg, lv).gateBytes,
 *     ppSizeBytesOf: (vg) => vgOf(vg).ppSizeBytes,
 *     closeGate: (nodeid, region) => gateKeeper.closeGate(nodeid, region),
 *     closeVolume: (nodeid) => gateKeeper.closeVolume(nodeid),
 *     quiesce: (nodeid, step) => gateKeeper.quiesce(nodeid, step),
 *     refresh: () => mounted.refresh(),
 *   })
 */
/** What the FUSE daemon lends the replication layer so native writes obey the same rules. */
export interface GateControl {
  /** Close every native write gate of the LV and wait until writes admitted before finished. */
  closeVolumeGates(vgName: string, lvName: string): Promise<void>
  /** Close the gates of every gate region inside chunk (partition) `chunk`, then drain. */
  closeChunkGates(vgName: string, lvName: string, chunk: number): Promise<void>
  /** Rebuild the native maps of these volumes now (a chunk changed owner, a mirror attached). */
  remap(vgName: string, lvNames: readonly string[]): Promise<void>
  /**
   * One instant for a set of chunks of a volume: close (at least) every gate inside them with
   * no gate of the volume being opened meanwhile, drain, and call `atInstant` before any of them
   * can open again (the next write into each passes the hook, which then sees what it set).
   */
  freezeChunks(vgName: string, lvName: string, chunks: readonly number[], atInstant: () => void): Promise<void>
  /**
   * Close every gate of the volume, drain, and run `step` while none can open again, so every
   * write after `step` passes the hook and sees what it changed.
   */
  withVolumeClosed(vgName: string, lvName: string, step: () => Promise<void>): Promise<void>
}

export interface GatePrimitives {
  nodeidOf(vgName: string, lvName: string): number | undefined
  /** gateBytes of the volume's current native map (0: not gated). */
  gateBytesOf(vgName: string, lvName: string): number
  ppSizeBytesOf(vgName: string): number
  closeGate(nodeid: number, region: number): Promise<void>
  closeVolume(nodeid: number): Promise<void>
  /** Runs `step` while no gate of the volume is being opened. */
  quiesce(nodeid: number, step: () => Promise<void>): Promise<void>
  /** Rebuilds every native map (VolumeMap) from the engine's volumeMapOf. */
  refresh(): Promise<void>
}

export function gateControlFrom(primitives: GatePrimitives): GateControl {
  const closeChunk = async (nodeid: number, vgName: string, lvName: string, chunk: number): Promise<void> => {
    const gateBytes = primitives.gateBytesOf(vgName, lvName)
    if (gateBytes === 0) return
    const pp = primitives.ppSizeBytesOf(vgName)
    const first = Math.floor((chunk * pp) / gateBytes)
    const last = Math.floor(((chunk + 1) * pp - 1) / gateBytes)
    for (let region = first; region <= last; region++) await primitives.closeGate(nodeid, region)
  }
  return {
    closeVolumeGates: async (vgName, lvName) => {
      const nodeid = primitives.nodeidOf(vgName, lvName)
      if (nodeid !== undefined) await primitives.closeVolume(nodeid)
    },
    closeChunkGates: async (vgName, lvName, chunk) => {
      const nodeid = primitives.nodeidOf(vgName, lvName)
      if (nodeid !== undefined) await closeChunk(nodeid, vgName, lvName, chunk)
    },
    // Closing only the open gates of the whole volume is cheaper than visiting every region of
    // every chunk (one drain per region), and a superset: closing a gate is always safe.
    freezeChunks: async (vgName, lvName, _chunks, atInstant) => {
      const nodeid = primitives.nodeidOf(vgName, lvName)
      if (nodeid === undefined) return atInstant()
      await primitives.quiesce(nodeid, async () => {
        await primitives.closeVolume(nodeid)
        atInstant()
      })
    },
    withVolumeClosed: async (vgName, lvName, step) => {
      const nodeid = primitives.nodeidOf(vgName, lvName)
      if (nodeid === undefined) return await step()
      await primitives.quiesce(nodeid, async () => {
        await primitives.closeVolume(nodeid)
        await step()
      })
    },
    remap: async () => {
      await primitives.refresh()
    },
  }
}
