/**
 * The other VGs a daemon keeps online for replication: those holding replicas of the sources it
 * serves (recorded in their `ext.replicaSource.children`) and pools named by a forwarded
 * `replicate --target-vg`. They are not served through FUSE; the replication engine reads and
 * writes them (propagation, copies) and their PVs may be remote (docs/remote-pvs.md).
 *
 * Another site comes and goes: a VG whose PVs stop answering is forced off by the PV layer, and
 * every `retryMs` this varies off what is left of it and tries to vary it on again with the same
 * devices. The replication engine keeps counting and marking the changes meant for a VG that is
 * not online, so the first cycle after it returns catches up from its mark. No vary-on attempt
 * ever holds the mount or a source write: attempts run in the background, one at a time.
 */
import { LvmfsError } from '../errors/index.js'
import type { VolumeGroup } from '../lvm/index.js'
import { varyOnVg } from '../lvm/index.js'
import { MirrorEngine } from '../mirror/index.js'
import { sourceOf, type ReplicationEngine } from '../replication/index.js'

export const DEFAULT_REPLICA_RETRY_MS = 5_000

/** The retry period: LVMFS_REPLICA_RETRY_MS, else the default. */
export function replicaRetryMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['LVMFS_REPLICA_RETRY_MS']
  if (text === undefined || text === '') return DEFAULT_REPLICA_RETRY_MS
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 10) {
    throw new LvmfsError('ENGINE_USAGE', `LVMFS_REPLICA_RETRY_MS must be an integer of milliseconds >= 10, not "${text}"`,
      { context: { field: 'LVMFS_REPLICA_RETRY_MS', value: text } })
  }
  return value
}

interface Logger {
  info(object: object, message: string): void
  warn(object: object, message: string): void
}

export interface ReplicaVgsOptions {
  /** The daemon's own VG (whose sources' replicas are looked up). */
  readonly vg: VolumeGroup
  readonly replication: ReplicationEngine
  /** The device list vary-ons scan (the daemon's), to which a forwarded command may add. */
  readonly devices: readonly string[]
  readonly log: Logger
  /** A replica VG came online or went away: the daemon remaps its sources. */
  readonly onChange: () => void
  readonly retryMs?: number
}

interface Online {
  readonly vg: VolumeGroup
  readonly engine: MirrorEngine
}

export class ReplicaVgs {
  readonly #options: ReplicaVgsOptions
  readonly #online = new Map<string, Online>()
  /** VGs asked for by name (replicate --target-vg) besides those the descriptors record. */
  readonly #wanted = new Set<string>()
  readonly #extraDevices = new Set<string>()
  /** Why the last attempt for a VG failed, so a VG that stays away is logged once. */
  readonly #lastFailure = new Map<string, string>()
  #timer: NodeJS.Timeout | undefined
  #pass: Promise<void> = Promise.resolve()
  #stopped = false

  constructor(options: ReplicaVgsOptions) {
    this.#options = options
  }

  /** First attempt now (in the background) and a retry every retryMs. */
  start(): void {
    this.#schedulePass()
    this.#timer = setInterval(() => this.#schedulePass(), this.#options.retryMs ?? DEFAULT_REPLICA_RETRY_MS)
    this.#timer.unref()
  }

  /** VG names this daemon should hold online for replication. */
  related(): string[] {
    const names = new Set(this.#wanted)
    const own = this.#options.vg
    if (own.state === 'online') {
      for (const lv of own.descriptor.lvs) for (const child of sourceOf(lv)?.children ?? []) names.add(child.vg)
    }
    names.delete(own.name)
    return [...names].sort()
  }

  /** Online state of each related VG, for status. */
  states(): Array<{ vg: string, state: string, error?: string }> {
    return this.related().map((name) => {
      const online = this.#online.get(name)
      const error = this.#lastFailure.get(name)
      return { vg: name, state: online?.vg.state ?? 'unreachable', ...(error === undefined ? {} : { error }) }
    })
  }

  /**
   * Brings `vgName` online now (a forwarded replicate naming it), scanning `devices` as well;
   * throws the vary-on's error when it cannot. Kept online and retried from then on.
   */
  async open(vgName: string, devices: readonly string[]): Promise<void> {
    if (vgName === this.#options.vg.name) return
    this.#wanted.add(vgName)
    for (const device of devices) this.#extraDevices.add(device)
    const run = this.#pass.then(() => this.#ensure(vgName, true))
    this.#pass = run.then(() => undefined, () => undefined)
    await run
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#pass
    for (const [name, online] of this.#online) {
      this.#online.delete(name)
      await this.#close(online)
    }
  }

  #schedulePass(): void {
    this.#pass = this.#pass.then(async () => {
      for (const name of this.related()) {
        if (this.#stopped) return
        await this.#ensure(name, false).catch(() => undefined)
      }
    })
  }

  async #ensure(vgName: string, rethrow: boolean): Promise<void> {
    const existing = this.#online.get(vgName)
    if (existing?.vg.state === 'online' || this.#stopped) return
    if (existing !== undefined) {
      this.#online.delete(vgName)
      this.#options.log.warn({ vg: vgName, state: existing.vg.state }, 'replica VG lost; reconnecting')
      await this.#close(existing)
      this.#options.onChange()
    }
    try {
      const online = await this.#varyOn(vgName)
      this.#online.set(vgName, online)
      this.#lastFailure.delete(vgName)
      this.#options.replication.addEngine(online.engine)
      online.vg.onChange(() => this.#options.onChange())
      online.vg.onForceOff((error) => {
        this.#options.log.warn({ vg: vgName, err: error }, 'replica VG forced off')
        this.#options.onChange()
      })
      this.#options.log.info({ vg: vgName }, 'replica VG online')
      this.#options.onChange()
      await this.#options.replication.startBackground()
    } catch (error) {
      const detail = error instanceof LvmfsError ? error.detail : undefined
      const message = (error instanceof Error ? error.message : String(error)) + (detail === undefined ? '' : ` ${detail}`)
      if (this.#lastFailure.get(vgName) !== message) {
        this.#options.log.warn({ vg: vgName, err: error }, 'replica VG unreachable; retrying')
      }
      this.#lastFailure.set(vgName, message)
      this.#options.replication.addUnreachable(vgName, error)
      if (rethrow) throw error
    }
  }

  async #varyOn(vgName: string): Promise<Online> {
    const devices = [...new Set([...this.#options.devices, ...this.#extraDevices])]
    const result = await varyOnVg({ vgName, devices, flags: {} })
    if (result.vg === undefined) {
      throw result.error ?? new Error(`cannot vary on replica VG "${vgName}" (${result.rc})`)
    }
    try {
      return { vg: result.vg, engine: await MirrorEngine.start(result.vg) }
    } catch (error) {
      await result.vg.varyOff().catch(() => undefined)
      throw error
    }
  }

  async #close(online: Online): Promise<void> {
    await online.engine.stop().catch(() => undefined)
    await online.vg.varyOff().catch(() => undefined)
  }

  /** The VG `vgName` when this daemon holds it online for replication. */
  vg(vgName: string): VolumeGroup | undefined {
    const online = this.#online.get(vgName)
    return online?.vg.state === 'online' ? online.vg : undefined
  }
}
