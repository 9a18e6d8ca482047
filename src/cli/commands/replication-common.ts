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
  const daemonEngine = unique
    .map((name) => (onlineVg(name) as { replication?: ReplicationEngine } | undefined)?.replication)
    .find((engine) => engine !== undefined)
  if (daemonEngine !== undefined) return await fn(daemonEngine)
  const engines: MirrorEngine[] = []
  const run = async (): Promise<T> => {
    const repl = new ReplicationEngine(engines)
    try {
      return await fn(repl)
    } finally {
      await repl.stop()
    }
  }
  // Related VGs (the other end of a replica) are varied on when they can be; a missing one is
  // a site that is down, which the operation itself reports.
  const related = async (names: readonly string[], index: number): Promise<T> => {
    if (index === names.length) return await run()
    try {
      return await withMirror(names[index]!, options, async (engine) => {
        engines.push(engine)
        return await related(names, index + 1)
      })
    } catch (error) {
      if (engines.some((engine) => engine.vg.name === names[index]) || !isVgNotFound(error)) throw error
      return await related(names, index + 1)
    }
  }
  const nest = async (index: number): Promise<T> => {
    if (index === unique.length) return await related(relatedVgs(engines), 0)
    return await withMirror(unique[index]!, options, async (engine) => {
      engines.push(engine)
      return await nest(index + 1)
    })
  }
  try {
    return await nest(0)
  } catch (error) {
    // A --pool VG that is not on the scanned devices is a pool that was not found.
    if (isVgNotFound(error) && !engines.some((engine) => engine.vg.name === error.context['vg'])) {
      const vg = String(error.context['vg'])
      throw new LvmfsError(vg === unique[0] ? 'LSM_ERR_NOT_FOUND_VOLUME' : 'LSM_ERR_NOT_FOUND_POOL',
        `volume group "${vg}" not found`, { cause: error, ...(error.detail === undefined ? {} : { detail: error.detail }),
          context: { vg } })
    }
    if (error instanceof LvmfsError && (error.code === 'LVM_NOQUORUM' || error.code === 'LVM_FORCEOFF')) {
      throw new LvmfsError('LSM_ERR_POOL_NOT_READY', `a volume group is not ready: ${error.message}`, { cause: error })
    }
    throw error
  }
}

function isVgNotFound(error: unknown): error is LvmfsError {
  return error instanceof LvmfsError && error.code === 'ENGINE_NOT_FOUND' && typeof error.context['vg'] === 'string'
}

/** Names of every VG on the scanned devices (job listing). */
export async function allVgNames(options: DeviceOptions): Promise<string[]> {
  const { vgs } = await scanDevices(deviceList(options))
  return vgs.map((vg) => vg.name)
}
