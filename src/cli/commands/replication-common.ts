/**
 * Shared plumbing of the replication verbs (replicate, replica, chlwm, primrec, job): run a
 * function against a ReplicationEngine over the mirror engines of the VGs involved.
 *
 * Outside a daemon each VG is varied on by withMirror and varied off after; the engine is
 * stopped first, so running jobs stop at a persisted checkpoint and resume later (in the
 * daemon at mount, or with `lvmfs job ID --wait`). Inside the daemon serving the VG the
 * daemon's engine is used when it exposes one as `replication` on its online VG; otherwise a
 * ReplicationEngine over the daemon's mirror engine (never varied off).
 */
import { LvmfsError } from '../../errors/index.js'
import { snapshotForReplication } from '../../engine/index.js'
import type { MirrorEngine } from '../../mirror/index.js'
import { ReplicationEngine, replicaOf, sourceOf } from '../../replication/index.js'
import { scanDevices } from '../../lvm/index.js'
import { onlineVg } from '../io-context.js'
import { deviceList, type DeviceOptions } from '../lvm-cli.js'
import { withMirror } from '../mirror-cli.js'

/** VGs that hold the sources and replicas of the volumes in `engines` (one level). */
function relatedVgs(engines: readonly MirrorEngine[]): string[] {
  const names = new Set<string>()
  for (const engine of engines) {
    for (const lv of engine.vg.descriptor.lvs) {
      const replica = replicaOf(lv)
      if (replica !== undefined) names.add(replica.source.vg)
      for (const child of sourceOf(lv)?.children ?? []) names.add(child.vg)
    }
  }
  for (const engine of engines) names.delete(engine.vg.name)
  return [...names]
}

export async function withReplication<T>(vgNames: readonly string[], options: DeviceOptions,
  fn: (repl: ReplicationEngine) => Promise<T>): Promise<T> {
  const unique = [...new Set(vgNames)]
  const daemon = unique.map((name) => onlineVg(name)).find((online) => online?.replication !== undefined)
  if (daemon?.replication !== undefined) {
    // The daemon serves one VG; the others named (a pool, another site) it holds online for
    // replication. One it cannot reach is left to the engine, which names it in its error.
    for (const name of unique) {
      if (name !== daemon.vg.name) await daemon.openReplicaVg?.(name, deviceList(options)).catch(() => undefined)
    }
    return await fn(daemon.replication)
  }
  const engines: MirrorEngine[] = []
  const unreachable = new Map<string, unknown>()
  const run = async (): Promise<T> => {
    const repl = new ReplicationEngine(engines, { thinClone: snapshotForReplication })
    for (const [vgName, cause] of unreachable) repl.addUnreachable(vgName, cause)
    try {
      return await fn(repl)
    } finally {
      await repl.stop()
    }
  }
  // A VG that cannot be varied on here (not on the scanned devices, no quorum) is left out, as
  // the daemon's engine knows only the VGs it serves: the operation that needs it fails with the
  // replication layer's code for it, the same in both. The other end of a replica is opened too.
  const open = async (names: readonly string[], index: number, then: () => Promise<T>): Promise<T> => {
    if (index === names.length) return await then()
    try {
      return await withMirror(names[index]!, options, async (engine) => {
        engines.push(engine)
        return await open(names, index + 1, then)
      })
    } catch (error) {
      if (engines.some((engine) => engine.vg.name === names[index]) || !isUnreachable(error)) throw error
      unreachable.set(names[index]!, error)
      return await open(names, index + 1, then)
    }
  }
  return await open(unique, 0, () => open(relatedVgs(engines), 0, run))
}

/** Why withMirror could not vary a VG on, when that is the VG's state rather than a failure. */
function isUnreachable(error: unknown): boolean {
  if (!(error instanceof LvmfsError)) return false
  if (error.code === 'ENGINE_NOT_FOUND') return typeof error.context['vg'] === 'string'
  return error.code === 'LVM_NOQUORUM' || error.code === 'LVM_FORCEOFF'
}

/** Names of every VG on the scanned devices (job listing). */
export async function allVgNames(options: DeviceOptions): Promise<string[]> {
  const { vgs } = await scanDevices(deviceList(options))
  return vgs.map((vg) => vg.name)
}
