/**
 * Replication test fixture: volume groups on real PV files in a directory (sparse files, small
 * metadata areas, 64 KiB partitions), varied on with their mirror engines and one
 * ReplicationEngine over all of them. `openRepl(dir)` reopens the same files (child processes
 * of the crash tests and restarts).
 */
import { closeSync, openSync, ftruncateSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { openFileDevice, type BlockDevice, type OpenOptions } from '../../src/io/index.js'
import { pvCreate, vgCreate, varyOnVg, type VolumeGroup } from '../../src/lvm/index.js'
import { MirrorEngine } from '../../src/mirror/index.js'
import { ReplicationEngine, type ReplicationOptions } from '../../src/replication/index.js'
import { SMALL_LAYOUT } from './lvm-fixture.js'

export const PP = 64 * 1024

/** Bytes written to every PV opened by openRepl (constant-time creation checks). */
export const writeCounter = { bytes: 0 }

async function countingOpener(path: string, options: OpenOptions): Promise<BlockDevice> {
  const device = await openFileDevice(path, options)
  const write = device.write.bind(device)
  const writeDurable = device.writeDurable?.bind(device)
  return Object.assign(Object.create(device) as BlockDevice, {
    write: async (buffer: Uint8Array, offsetBytes: number) => {
      writeCounter.bytes += buffer.length
      await write(buffer, offsetBytes)
    },
    ...(writeDurable === undefined ? {} : { writeDurable: async (buffer: Uint8Array, offsetBytes: number) => {
      writeCounter.bytes += buffer.length
      await writeDurable(buffer, offsetBytes)
    } }),
  })
}

export interface ReplFixture {
  readonly vgs: Map<string, VolumeGroup>
  readonly engines: MirrorEngine[]
  readonly repl: ReplicationEngine
  close(): Promise<void>
}

/** Creates VG `name` on `pvCount` files of `pvBytes` each, in `dir`. */
export async function createVg(dir: string, name: string, pvCount = 1, pvBytes = 8 * 1024 * 1024,
  shared = false): Promise<void> {
  const paths: string[] = []
  for (let index = 0; index < pvCount; index++) {
    const path = join(dir, `${name}-pv${index}.img`)
    const fd = openSync(path, 'w')
    ftruncateSync(fd, pvBytes)
    closeSync(fd)
    await pvCreate(path, { layout: SMALL_LAYOUT })
    paths.push(path)
  }
  await vgCreate({ name, paths, ppSizeBytes: PP, layout: SMALL_LAYOUT, shared })
}

export function devicesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.img')).map((name) => join(dir, name))
}

/** `shared`: vary on as one process of a shared VG does (no exclusive claim of the PVs), so
 * two fixtures can stand for two processes. */
export async function openRepl(dir: string, vgNames: readonly string[],
  options: ReplicationOptions = {}, shared = false): Promise<ReplFixture> {
  const devices = devicesIn(dir)
  const vgs = new Map<string, VolumeGroup>()
  const engines: MirrorEngine[] = []
  for (const vgName of vgNames) {
    const result = await varyOnVg({ vgName, devices: devices.filter((d) => d.includes(`/${vgName}-pv`)),
      flags: { misspvVon: true, missnameVon: true }, opener: countingOpener, ...(shared ? { shared: true } : {}) })
    if (result.vg === undefined) throw result.error ?? new Error(`vary-on of ${vgName} failed: ${result.rc}`)
    vgs.set(vgName, result.vg)
    engines.push(await MirrorEngine.start(result.vg))
  }
  const repl = new ReplicationEngine(engines, options)
  return {
    vgs, engines, repl,
    close: async () => {
      await repl.stop()
      for (const engine of engines) await engine.stop()
      for (const vg of vgs.values()) if (vg.state === 'online') await vg.varyOff()
    },
  }
}

/** Deterministic PRNG (mulberry32) so failures replay from the seed printed by the test. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
