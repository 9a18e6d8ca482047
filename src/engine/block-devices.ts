/**
 * The kernel block path of linear LVs (docs/block-devices.md): an LV whose bytes are one run
 * on one PV, with nothing in lvmfs that must see its writes (one copy, no gates, no replication
 * role), gets a loop device over that run (direct I/O), named DEV_DIR/VG/LV. Its I/O never
 * reaches the daemon; the LV's file in the mount keeps working beside it.
 *
 * The kernel cannot take an open loop device away from its users, so everything that must see
 * the LV's writes revokes the device first and is refused (ENGINE_BLOCKDEV_OPEN, naming the
 * holders) while someone holds it:
 *  - a descriptor commit that moves, shrinks, removes, deactivates, re-permissions or mirrors
 *    the LV, or gives it a replication role (commitGuard, run before anything is written);
 *  - a gate close asked by replication or by the mirror engine (pvmove takes its partitions
 *    exclusive that way), and a fault drill on its PV (revoke, revokeOnPv).
 * A revoked LV gets a device again only once a commit changed it (e.g. the pvmove that took it
 * elsewhere) or at the next mount, so an operation between its revoke and its commit never
 * races a re-attached device. lvextend keeps the device and grows it when the LV stays one run.
 */
import { fdatasyncSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import type { Logger } from '../fuse/index.js'
import {
  attachLoop, boundLoopNumbers, isBound, loopHolders, openBoundLoop, releaseLoop, resizeLoop, type LoopDevice,
} from '../io/index.js'
import type { LvDescriptor, VgDescriptor, VolumeGroup } from '../lvm/index.js'
import type { VolumeMap } from '../native/index.js'
import { replicaOf, sourceOf } from '../replication/index.js'
import { devDir } from './runtime-paths.js'

/** Where a linear LV's bytes lie: LPs 0..lps-1 on PPs firstPp.. of one PV. */
export interface LinearRun {
  readonly pvIndex: number
  readonly pvId: string
  readonly firstPp: number
  readonly lps: number
}

/** The LV's bytes as one run on one PV, when every LP has exactly one copy and they follow on. */
export function linearRunOf(descriptor: VgDescriptor, lv: LvDescriptor): LinearRun | undefined {
  const first = lv.lps[0]?.[0]
  if (first === undefined) return undefined
  const pvId = descriptor.pvs[first.pvIndex]?.pvId
  if (pvId === undefined) return undefined
  const oneRun = lv.lps.every((copies, lp) => copies.length === 1 && copies[0]!.pvIndex === first.pvIndex &&
    copies[0]!.pp === first.pp + lp)
  return oneRun ? { pvIndex: first.pvIndex, pvId, firstPp: first.pp, lps: lv.lps.length } : undefined
}

/** Whether the native path does plain I/O for this map: one fresh copy, no gates, one run. */
export function isPlainMap(map: VolumeMap): boolean {
  const first = map.extents[0]?.copies[0]
  if (map.gateBytes !== 0 || first === undefined) return false
  return map.extents.every((extent, index) => extent.copies.length === 1 && extent.copies[0]!.stale !== true &&
    extent.copies[0]!.fd === first.fd && extent.copies[0]!.offsetBytes === first.offsetBytes + index * map.extentBytes)
}

/** Why an LV can have no block device, or undefined when it can (given a plain native map). */
function ineligibility(descriptor: VgDescriptor, lv: LvDescriptor): string | undefined {
  if (lv.inactive === true) return 'inactive'
  if (lv.lps.some((copies) => copies.length > 1)) return 'mirrored'
  if (linearRunOf(descriptor, lv) === undefined) return 'not one contiguous run on one PV'
  if (replicaOf(lv) !== undefined) return 'a replica'
  if (sourceOf(lv) !== undefined) return 'a replication source'
  return undefined
}

/** What a device serves: the first `lps` LPs of the LV's run, read-only or not. */
export interface DeviceRange extends LinearRun {
  readonly readOnly: boolean
}

/**
 * What in descriptor `next` invalidates a device serving `range` of LV `lvId` (a clause for
 * "a change that ..."), or undefined when the device may stay: the LV is still active with the
 * same permission, no replication role, and its first `range.lps` LPs one copy each on the same PPs.
 */
export function breaksDevice(range: DeviceRange, next: VgDescriptor, lvId: number): string | undefined {
  const lv = next.lvs.find((candidate) => candidate.lvId === lvId)
  if (lv === undefined) return 'removes the LV'
  if (lv.inactive === true) return 'deactivates the LV'
  if ((lv.readOnly === true) !== range.readOnly) return 'changes the LV\'s permission'
  if (replicaOf(lv) !== undefined || sourceOf(lv) !== undefined) return 'gives the LV a replication role'
  if (lv.lps.length < range.lps) return 'shrinks the LV'
  for (let lp = 0; lp < range.lps; lp++) {
    const copies = lv.lps[lp]!
    if (copies.length !== 1) return 'adds copies to the LV'
    if (next.pvs[copies[0]!.pvIndex]?.pvId !== range.pvId || copies[0]!.pp !== range.firstPp + lp) {
      return 'moves the LV\'s partitions'
    }
  }
  return undefined
}

interface Attached {
  readonly lvId: number
  lvName: string
  readonly device: LoopDevice
  readonly run: LinearRun
  /** LPs the device covers (lvextend grows it). */
  lps: number
  readonly readOnly: boolean
  link: string
  /** Set when the LV no longer qualifies but the device is held, so it stays as it is. */
  note?: string
}

export interface BlockDeviceReport {
  readonly lv: string
  readonly device: string
  readonly link: string
  readonly sizeBytes: number
  readonly readOnly: boolean
  readonly holders: readonly string[]
  readonly note?: string
}

export interface BlockDevicesOptions {
  readonly vg: VolumeGroup
  readonly log: Logger & { info(object: object, message: string): void }
  /** PV path of PV index `pvIndex` as the daemon opened it. */
  readonly pvPath: (pvIndex: number) => string | undefined
}

export class BlockDevices {
  readonly #vg: VolumeGroup
  readonly #log: Logger & { info(object: object, message: string): void }
  readonly #pvPath: (pvIndex: number) => string | undefined
  readonly #attached = new Map<number, Attached>()
  /** Each LV's descriptor entry when last reconciled: a device is (re)attached only when it changed. */
  readonly #seen = new Map<number, string>()
  /** Why an LV that qualifies has no device (attach failed). */
  readonly #problems = new Map<number, string>()

  constructor(options: BlockDevicesOptions) {
    this.#vg = options.vg
    this.#log = options.log
    this.#pvPath = options.pvPath
  }

  #name(lvId: number): string {
    return `lvmfs:${this.#vg.descriptor.vgId}:${lvId}`
  }

  #linkOf(lvName: string): string {
    return join(devDir(), this.#vg.name, lvName)
  }

  /**
   * After the LV's native map was rebuilt: attaches, grows, renames or releases its device.
   * `plain`: isPlainMap of that map.
   */
  async reconcile(lv: LvDescriptor, plain: boolean): Promise<void> {
    const descriptor = this.#vg.descriptor
    const entry = JSON.stringify(lv)
    const changed = this.#seen.get(lv.lvId) !== entry
    this.#seen.set(lv.lvId, entry)
    const attached = this.#attached.get(lv.lvId)
    const why = ineligibility(descriptor, lv) ?? (plain ? undefined : 'gated (its writes pass lvmfs\'s hooks)')
    if (attached === undefined) {
      if (changed && why === undefined) this.#attach(lv)
      return
    }
    if (attached.link !== this.#linkOf(lv.name)) this.#rename(attached, lv.name)
    const run = linearRunOf(descriptor, lv)
    if (why === undefined && run !== undefined && run.lps > attached.lps) {
      resizeLoop(attached.device, run.lps * this.#vg.ppSizeBytes)
      attached.lps = run.lps
      this.#log.info({ lv: lv.name, device: attached.device.path, sizeBytes: run.lps * this.#vg.ppSizeBytes },
        'block device grown')
    }
    if (why === undefined) {
      delete attached.note
      return
    }
    const holders = loopHolders(attached.device.number, attached.device.fd)
    if (holders.length > 0) {
      const note = `kept while open although the LV is now ${why}; it covers the first ` +
        `${attached.lps * this.#vg.ppSizeBytes} bytes`
      if (attached.note !== note) this.#log.warn({ lv: lv.name, device: attached.device.path, holders }, `block device ${note}`)
      attached.note = note
      return
    }
    await this.#release(attached, `the LV is now ${why}`)
  }

  /** LVs that left the descriptor (lvremove went through commitGuard) lose their device. */
  async forget(lvIds: ReadonlySet<number>): Promise<void> {
    for (const attached of [...this.#attached.values()]) {
      if (!lvIds.has(attached.lvId)) await this.#release(attached, 'the LV is gone')
    }
    for (const lvId of [...this.#seen.keys()]) if (!lvIds.has(lvId)) this.#seen.delete(lvId)
  }

  #attach(lv: LvDescriptor): void {
    const run = linearRunOf(this.#vg.descriptor, lv)!
    const backingPath = this.#pvPath(run.pvIndex)
    if (backingPath === undefined) return
    const offsetBytes = this.#vg.ppOffsetBytes(run.pvIndex, run.firstPp)
    const sizeBytes = run.lps * this.#vg.ppSizeBytes
    const readOnly = lv.readOnly === true
    try {
      const device = this.#adopt(lv.lvId, offsetBytes, sizeBytes, readOnly) ??
        attachLoop({ backingPath, offsetBytes, sizeBytes, readOnly, name: this.#name(lv.lvId) })
      const attached: Attached = { lvId: lv.lvId, lvName: lv.name, device, run, lps: run.lps, readOnly,
        link: this.#linkOf(lv.name) }
      this.#attached.set(lv.lvId, attached)
      this.#problems.delete(lv.lvId)
      this.#link(attached)
      this.#log.info({ lv: lv.name, device: device.path, link: attached.link, offsetBytes, sizeBytes },
        'block device attached')
    } catch (error) {
      const message = (error as Error).message
      this.#problems.set(lv.lvId, message)
      this.#log.warn({ lv: lv.name, err: error }, `no block device for "${lv.name}": ${message}`)
    }
  }

  /** A device of this LV that a killed daemon left bound (held by its users), if it maps the same bytes. */
  #adopt(lvId: number, offsetBytes: number, sizeBytes: number, readOnly: boolean): LoopDevice | undefined {
    for (const number of boundLoopNumbers()) {
      const found = openBoundLoop(number, readOnly)
      if (found === undefined) continue
      const { device, status } = found
      if (status.name === this.#name(lvId) && status.offsetBytes === offsetBytes && status.readOnly === readOnly) {
        if (status.sizeLimitBytes !== sizeBytes) resizeLoop(device, sizeBytes)
        this.#log.info({ lvId, device: device.path }, 'block device left by an earlier daemon taken over')
        return device
      }
      void releaseLoop(device)
      if (status.name === this.#name(lvId)) {
        this.#log.error({ lvId, device: device.path, offsetBytes: status.offsetBytes },
          'a block device an earlier daemon left maps other bytes of this LV; it detaches at its last close')
      }
    }
    return undefined
  }

  #link(attached: Attached): void {
    mkdirSync(dirname(attached.link), { recursive: true })
    rmSync(attached.link, { force: true })
    symlinkSync(attached.device.path, attached.link)
  }

  #rename(attached: Attached, lvName: string): void {
    const link = this.#linkOf(lvName)
    mkdirSync(dirname(link), { recursive: true })
    try {
      renameSync(attached.link, link)
    } catch {
      symlinkSync(attached.device.path, link)
    }
    attached.link = link
    attached.lvName = lvName
  }

  async #release(attached: Attached, why: string): Promise<'detached' | 'pending'> {
    this.#attached.delete(attached.lvId)
    try {
      if (readlinkSync(attached.link) === attached.device.path) rmSync(attached.link, { force: true })
    } catch { /* already gone */ }
    // What users wrote buffered to the device reaches the PV before lvmfs takes the bytes over.
    try {
      fdatasyncSync(attached.device.fd)
    } catch (error) {
      this.#log.warn({ lv: attached.lvName, device: attached.device.path, err: error }, 'flushing the block device failed')
    }
    const outcome = await releaseLoop(attached.device)
    this.#log.info({ lv: attached.lvName, device: attached.device.path, why, outcome }, 'block device released')
    return outcome
  }

  /**
   * Releases the LV's device so that every later write passes through lvmfs; throws
   * ENGINE_BLOCKDEV_OPEN (and keeps the device) while someone holds it. `operation` names what
   * needs it, for the message.
   */
  async revoke(lvId: number, operation: string): Promise<void> {
    const attached = this.#attached.get(lvId)
    if (attached === undefined) return
    const holders = loopHolders(attached.device.number, attached.device.fd)
    if (holders.length > 0) throw this.#busy(attached, operation, holders)
    if (await this.#release(attached, operation) === 'pending') {
      throw this.#busy(attached, operation, ['a process that opened it just now (it detaches at its last close)'])
    }
  }

  /** revoke for every LV whose device lies on PV `pvIndex`. */
  async revokeOnPv(pvIndex: number, operation: string): Promise<void> {
    for (const attached of [...this.#attached.values()]) {
      if (attached.run.pvIndex === pvIndex) await this.revoke(attached.lvId, operation)
    }
  }

  #busy(attached: Attached, operation: string, holders: readonly string[]): LvmfsError {
    return new LvmfsError('ENGINE_BLOCKDEV_OPEN',
      `${operation}: the block device ${attached.device.path} of logical volume "${attached.lvName}" is open`, {
        detail: `Held by ${holders.join(', ')}. Its I/O bypasses lvmfs, which cannot take the device back from its ` +
          'users, and this operation needs every write of the LV to pass through lvmfs.',
        hint: `Close it (unmount the file system on ${attached.link}, stop the processes), then retry.`,
        context: { lv: attached.lvName, device: attached.device.path, holders: [...holders] } })
  }

  /**
   * Before a descriptor commit (OnlineVg commit guard): revokes the devices whose bytes the
   * commit moves, frees, deactivates, re-permissions, mirrors or hands to replication.
   */
  async commitGuard(next: VgDescriptor): Promise<void> {
    for (const attached of [...this.#attached.values()]) {
      const problem = breaksDevice({ ...attached.run, lps: attached.lps, readOnly: attached.readOnly },
        next, attached.lvId)
      if (problem !== undefined) await this.revoke(attached.lvId, `a change that ${problem}`)
    }
  }

  /** The devices and who holds them, for lvmfs status. */
  report(): BlockDeviceReport[] {
    return [...this.#attached.values()].map((attached) => ({ lv: attached.lvName, device: attached.device.path,
      link: attached.link, sizeBytes: attached.lps * this.#vg.ppSizeBytes, readOnly: attached.readOnly,
      holders: loopHolders(attached.device.number, attached.device.fd),
      ...(attached.note === undefined ? {} : { note: attached.note }) }))
  }

  /** Why LVs that qualify have no device. */
  problems(): Array<{ lv: string; problem: string }> {
    return [...this.#problems].map(([lvId, problem]) => ({ lv: this.#vg.lvById(lvId)?.name ?? String(lvId), problem }))
  }

  /** Open devices, for the umount check. */
  held(): Array<{ lv: string; device: string; holders: string[] }> {
    return [...this.#attached.values()].flatMap((attached) => {
      const holders = loopHolders(attached.device.number, attached.device.fd)
      return holders.length === 0 ? [] : [{ lv: attached.lvName, device: attached.device.path, holders }]
    })
  }

  /** Releases every device (vary-off, force-off). Held ones detach at their users' last close. */
  async releaseAll(why: string): Promise<void> {
    for (const attached of [...this.#attached.values()]) {
      if (await this.#release(attached, why) === 'pending') {
        this.#log.warn({ lv: attached.lvName, device: attached.device.path },
          `block device still open after ${why}: its I/O reaches the PV until its last close, which detaches it`)
      }
    }
  }
}

/** Removes links under DEV_DIR whose loop device is no longer bound (lvmfs cleanup, mount). */
export function removeDeadLinks(vgName?: string): string[] {
  const removed: string[] = []
  let vgs: string[]
  try {
    vgs = vgName === undefined ? readdirSync(devDir()) : [vgName]
  } catch {
    return removed
  }
  for (const vg of vgs) {
    let names: string[]
    try {
      names = readdirSync(join(devDir(), vg))
    } catch {
      continue
    }
    for (const name of names) {
      const link = join(devDir(), vg, name)
      let target: string
      try {
        target = readlinkSync(link)
      } catch {
        continue
      }
      const match = /^\/dev\/loop(\d+)$/.exec(target)
      if (match !== null && !isBound(Number(match[1]))) {
        rmSync(link, { force: true })
        removed.push(link)
      }
    }
  }
  return removed
}

/** Loop devices lvmfs bound that are still bound, with who holds them (lvmfs cleanup). */
export function lvmfsLoopDevices(): Array<{ device: string; name: string; holders: string[] }> {
  const found: Array<{ device: string; name: string; holders: string[] }> = []
  for (const number of boundLoopNumbers()) {
    const open = openBoundLoop(number, true)
    if (open === undefined) continue
    const { device, status } = open
    if (status.name.startsWith('lvmfs:')) {
      found.push({ device: device.path, name: status.name, holders: loopHolders(number, device.fd) })
    }
    void releaseLoop(device)
  }
  return found
}
