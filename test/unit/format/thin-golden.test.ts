/**
 * Golden fixtures of thin pool metadata v1 (test/golden/format/thin): a superblock, a leaf, an
 * interior node and a device table block, byte for byte (docs/format.md § "Thin pool metadata").
 * Re-encoding must give the stored bytes and decoding them must give the inputs, so any change
 * to the layout fails here. Regenerate only for a new version, with LVMFS_WRITE_GOLDEN=1.
 */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  THIN_FANOUT, decodeThinDevices, decodeThinNode, decodeThinSuperblock, emptyThinNode, encodeThinDevices,
  encodeThinNode, encodeThinSuperblock, type ThinDevice, type ThinSuperblock,
} from '../../../src/format/index.js'

const DIR = fileURLToPath(new URL('../../golden/format/thin/', import.meta.url))

const superblock: ThinSuperblock = { transaction: 41, chunkBytes: 65536, poolTime: 3, dataBlocks: 163840,
  metadataBlocks: 4096, deviceTable: 17, nextThinId: 5 }
const leaf = emptyThinNode('leaf', 0)
leaf.hi[0] = 1; leaf.lo[0] = 0
leaf.hi[7] = 1000; leaf.lo[7] = 3
leaf.hi[THIN_FANOUT - 1] = 163840; leaf.lo[THIN_FANOUT - 1] = 2
const interior = emptyThinNode('interior', 2)
interior.lo[0] = 9; interior.lo[300] = 4095
const devices: ThinDevice[] = [
  { thinId: 1, levels: 3, virtualBlocks: 1638400, root: 9, snapshottedTime: 3, mappedBlocks: 2 },
  { thinId: 4, levels: 3, virtualBlocks: 1638400, root: 9, snapshottedTime: 3, mappedBlocks: 2 },
]

function golden(name: string, bytes: Uint8Array): Uint8Array {
  const path = `${DIR}${name}`
  if (process.env['LVMFS_WRITE_GOLDEN'] === '1' && !existsSync(path)) writeFileSync(path, bytes)
  return new Uint8Array(readFileSync(path))
}

t.test('superblock slot 1', async (t) => {
  const stored = golden('v1-superblock-slot1.bin', encodeThinSuperblock(superblock, 1))
  t.same(Buffer.from(encodeThinSuperblock(superblock, 1)), Buffer.from(stored), 'same bytes')
  t.same(decodeThinSuperblock(stored, 1), superblock)
  t.match(String(decodeThinSuperblock(stored, 0)), /THIN_CORRUPT.*slot/, 'read as slot 0 it is refused')
})

t.test('leaf node at block 9', async (t) => {
  const stored = golden('v1-leaf-block9.bin', encodeThinNode(leaf, 9, 41))
  t.same(Buffer.from(encodeThinNode(leaf, 9, 41)), Buffer.from(stored), 'same bytes')
  const decoded = decodeThinNode(stored, 9, 'leaf', 0)
  t.same([...decoded.hi], [...leaf.hi])
  t.same([...decoded.lo], [...leaf.lo])
  t.throws(() => decodeThinNode(stored, 10, 'leaf', 0), /THIN_CORRUPT.*block number/, 'misdirected')
  t.throws(() => decodeThinNode(stored, 9, 'interior', 0), /THIN_CORRUPT.*kind/)
})

t.test('interior node at block 20', async (t) => {
  const stored = golden('v1-interior-block20.bin', encodeThinNode(interior, 20, 41))
  t.same(Buffer.from(encodeThinNode(interior, 20, 41)), Buffer.from(stored), 'same bytes')
  t.same([...decodeThinNode(stored, 20, 'interior', 2).lo], [...interior.lo])
  t.throws(() => decodeThinNode(stored, 20, 'interior', 1), /THIN_CORRUPT.*level/)
})

t.test('device table block 17', async (t) => {
  const stored = golden('v1-devices-block17.bin', encodeThinDevices(devices, 17, 41, 0))
  t.same(Buffer.from(encodeThinDevices(devices, 17, 41, 0)), Buffer.from(stored), 'same bytes')
  t.same(decodeThinDevices(stored, 17), { devices, next: 0 })
  const damaged = Uint8Array.from(stored)
  damaged[40] = damaged[40]! ^ 1
  t.throws(() => decodeThinDevices(damaged, 17), /THIN_CORRUPT.*checksum/)
})
