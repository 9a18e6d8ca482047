/**
 * Test fixture for the LVM layer: PVs on MemoryDevices (optionally wrapped in FaultyDevices),
 * an opener that serves them by name, small metadata areas so whole VGs fit in a few MiB, and
 * hashing of device contents (the "no byte changed" check).
 */
import { createHash } from 'node:crypto'
import { LvmfsError } from '../../src/errors/index.js'
import { CrashController, FaultyDevice, MemoryDevice, type BlockDevice } from '../../src/io/index.js'
import type { LayoutOptions } from '../../src/format/index.js'
import {
  OnlineVgRegistry, pvCreate, vgCreate, varyOnVg, type DeviceOpener, type VaryOnFlags,
} from '../../src/lvm/index.js'

export const SMALL_LAYOUT: LayoutOptions = {
  vgdaSlotBytes: 64 * 1024, vgsaSlotBytes: 8 * 1024, mwcSizeBytes: 16 * 1024,
}
export const PP_BYTES = 64 * 1024
export const PV_BYTES = 2 * 1024 * 1024

export class Pool {
  readonly devices = new Map<string, MemoryDevice>()
  /** Names that currently "do not exist" (pulled disks). */
  readonly absent = new Set<string>()
  /** Per-name fault setup applied to every open. */
  readonly faults = new Map<string, (device: FaultyDevice) => void>()
  crash: CrashController | undefined
  readonly opened: FaultyDevice[] = []

  constructor(count: number, sizeBytes = PV_BYTES) {
    for (let i = 0; i < count; i++) this.add(`/dev/pv${i}`, sizeBytes)
  }

  /** The VGs this "process" has online (a second varyOn of one of them finds it here). */
  readonly registry = new OnlineVgRegistry()

  add(name: string, sizeBytes = PV_BYTES): MemoryDevice {
    const device = new MemoryDevice(name, sizeBytes)
    this.devices.set(name, device)
    return device
  }

  get paths(): string[] {
    return [...this.devices.keys()]
  }

  readonly opener: DeviceOpener = async (path) => {
    const base = this.devices.get(path)
    if (base === undefined || this.absent.has(path)) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `device "${path}" does not exist`, { context: { path } })
    }
    const device = new FaultyDevice(base.reopen(), this.crash)
    this.faults.get(path)?.(device)
    this.opened.push(device)
    return device as BlockDevice
  }

  hash(name: string): string {
    return createHash('sha256').update(this.devices.get(name)!.data).digest('hex')
  }

  hashes(): string[] {
    return this.paths.map((p) => this.hash(p))
  }

  /** A deep copy of every device's bytes (to restore a state between cases). */
  snapshot(): Map<string, Uint8Array> {
    return new Map([...this.devices].map(([name, d]) => [name, new Uint8Array(d.data)]))
  }

  restore(snapshot: Map<string, Uint8Array>): void {
    for (const [name, bytes] of snapshot) this.devices.get(name)!.data.set(bytes)
  }
}

export async function makeVg(pool: Pool, name: string, paths = pool.paths, ppSizeBytes = PP_BYTES) {
  for (const path of paths) await pvCreate(path, { opener: pool.opener, layout: SMALL_LAYOUT })
  return vgCreate({ name, paths, ppSizeBytes, opener: pool.opener, layout: SMALL_LAYOUT })
}

export const ALL_OK: VaryOnFlags = { misspvVon: true, missnameVon: true }

export async function varyOn(pool: Pool, vgName: string, flags: VaryOnFlags = ALL_OK, paths = pool.paths) {
  return varyOnVg({ vgName, devices: paths, flags, opener: pool.opener, registry: pool.registry })
}

/** Writes a descriptor into every VGDA copy position without any validation (tests craft bad
 * descriptors this way). Uses the slot after the current one, seq as given. */
export async function writeRawDescriptor(pool: Pool, d: import('../../src/lvm/index.js').VgDescriptor,
  slot: 0 | 1 = 1): Promise<void> {
  const { encodeDescriptorBody, encodeVgdaCopy, crc32c, vgdaSlotOffset } = await import('../../src/format/index.js')
  const { readLabel } = await import('../../src/lvm/metadata-io.js')
  const body = encodeDescriptorBody(d)
  for (const place of d.descriptorCopies) {
    const pv = d.pvs[place.pvIndex]!
    const device = pool.devices.get(pv.lastPath)!
    const label = await readLabel(device)
    const bytes = encodeVgdaCopy({ vgId: d.vgId, seq: d.seq, timestampMs: d.timestampMs, body, bodyCrc: crc32c(body),
      self: { pvId: pv.pvId, area: place.area, slot } })
    device.data.set(bytes, vgdaSlotOffset(label, place.area, slot))
  }
}

/** Zeroes every VGDA slot of a device (all copies gone). */
export async function zeroVgdas(pool: Pool, name: string): Promise<void> {
  const { readLabel } = await import('../../src/lvm/metadata-io.js')
  const device = pool.devices.get(name)!
  const label = await readLabel(device)
  device.data.fill(0, label.vgdaOffsetBytes, label.vgdaOffsetBytes + 4 * label.vgdaSlotBytes)
}
