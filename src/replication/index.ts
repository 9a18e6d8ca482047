/**
 * lvmfs replication: clones, copies, synchronous and asynchronous mirrors of logical volumes
 * (lsm_volume_replicate), low-water marks (chlwm, primrec), jobs and child dependencies.
 * See docs/replication.md.
 *
 *   const repl = new ReplicationEngine([mirrorEngineOfVg0, mirrorEngineOfVg1], options)
 *   await repl.startBackground()                       // resume jobs, start propagators
 *   await repl.replicate({ vg, lv, name, type, pool?, intervalMs? })
 *       -> { status: 'LSM_ERR_OK', volume } | { status: 'LSM_ERR_JOB_STARTED', jobId, volume }
 *   await repl.read/write/flush(vg, lv, ...)           // in-process I/O with replica semantics
 *   await repl.job(id) / waitJob(id) / jobs()          // INPROGRESS | COMPLETE | ERROR, percent
 *   await repl.split(vg, lv)                           // mirror target -> independent volume
 *   await repl.chlwm(vg, lv, site, lwm) / primrec(vg, lv, { full })
 *   await repl.lag(vg, lv) / status(vg, lv) / statuses(vg)
 *   repl.assertRemovable(vg, lv) / removeVolume(vg, lv)  // LSM_ERR_HAS_CHILD_DEPENDENCY
 *
 * Native data path (the daemon): volumeMapOf(vg, lv, fdOf), volumeSizeBytes(vg, lv),
 * assertOpenable(vg, lv, writable), beforeWriteRegion(vg, lv, region, gateBytes), and a
 * GateControl passed in the options (closeVolumeGates, closeChunkGates, remap).
 */
export { ReplicationEngine } from './engine.js'
export type {
  ReplicationOptions, ReplicateRequest, ReplicateResult, JobStatus, JobState, Lag, ReplicaStatus, StepEvent,
} from './types.js'
export { compareGenerations, type GenerationVerdict } from './generations.js'
export {
  REPLICATION_TYPES, LSM_REPLICATION_TYPE, replicaOf, sourceOf, parseJobId, type ReplicationType, type ReplicaExt,
  type SourceExt, type ChildRef,
} from './model.js'
export { readSuperblock, writeSuperblock } from './superblock-io.js'
export { assertNoChildDependency, childDependenciesIn, isLinkedReplica } from './dependencies.js'
export { gateControlFrom, type GateControl, type GatePrimitives } from './gate-control.js'
