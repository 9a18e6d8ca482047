/**
 * Where a CLI command writes and which VG it works on. A command run by a user writes to the
 * process's stdout/stderr and varies its VG on itself; the same command forwarded to the daemon
 * of a mounted VG runs inside that daemon with its output streamed back to the user's terminal
 * and works on the daemon's online VG and mirror engine (never varying it off). One
 * AsyncLocalStorage carries that context through every await, so concurrent forwarded
 * commands never mix their output.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { OnlineVgRegistry, VolumeGroup } from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import type { ReplicationEngine } from '../replication/index.js'

export interface OutputStream {
  write(chunk: string, callback?: () => void): boolean
  readonly isTTY?: boolean
  readonly columns?: number
}

export interface OnlineVg {
  readonly vg: VolumeGroup
  readonly engine: MirrorEngine
  /** The daemon's replication engine: forwarded replication commands share its jobs. */
  readonly replication?: ReplicationEngine
  /** The VGs the daemon has online (a forwarded varyonvg of its VG is a second vary-on). */
  readonly registry?: OnlineVgRegistry
  /** Brings another VG online in the daemon for replication (a pool or another site's VG),
   * scanning `devices` as well; throws why it cannot. */
  openReplicaVg?(vgName: string, devices: readonly string[]): Promise<void>
  /** Whether the daemon has the LV's file open (lvchange --activate n refuses then). */
  isLvOpen?(lvId: number): boolean
  /** Progress of a long operation (resync, syncvg, scrub), shown by lvmfs status. */
  progress(doneBytes: number, totalBytes: number, rate?: ResyncRate): void
}

/** The measured rate of a resync and its ETA, once known. */
export interface ResyncRate {
  readonly rateBytesPerSecond?: number
  readonly etaSeconds?: number
}

export interface CliContext {
  readonly stdout: OutputStream
  readonly stderr: OutputStream
  readonly online?: OnlineVg
}

const storage = new AsyncLocalStorage<CliContext>()

export function runInContext<T>(context: CliContext, fn: () => Promise<T>): Promise<T> {
  return storage.run(context, fn)
}

export function stdout(): OutputStream {
  return storage.getStore()?.stdout ?? process.stdout
}

export function stderr(): OutputStream {
  return storage.getStore()?.stderr ?? process.stderr
}

/** The daemon's online VG when this command runs inside the daemon serving `vgName`. */
export function onlineVg(vgName: string): OnlineVg | undefined {
  const online = storage.getStore()?.online
  return online && online.vg.name === vgName ? online : undefined
}

/** The daemon's registry of online VGs, inside a daemon. */
export function vgRegistry(): OnlineVgRegistry | undefined {
  return storage.getStore()?.online?.registry
}

/** The VGs a command can see besides `vg`: those the daemon has online (none in a CLI process,
 * which varies on only the VG it works on). */
export function vgsAtHand(vg: VolumeGroup): VolumeGroup[] {
  return [vg, ...(vgRegistry()?.values() ?? []).filter((other) => other.vgId !== vg.vgId)]
}

/** True inside a daemon: commands run there never forward again. */
export function insideDaemon(): boolean {
  return storage.getStore()?.online !== undefined
}
