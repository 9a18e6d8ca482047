/**
 * Native block hashing (native/block-hash.cc, `blockHashes`): XXH3-128 per block equals the
 * reference digests of xxhsum and a TypeScript reference that slices the same bytes itself (any
 * offset, block size and short last block, across the 1 MiB read chunks), with every request of
 * a call hashed on its own thread; injected read faults (faults.cc) fail only the request they
 * hit; O_DIRECT fds with unaligned ranges fall back to a buffered read; and the TypeScript
 * fallback (SHA-256) sees the same blocks.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FaultBit, setFdFault } from '../../../src/fuse/native-session.js'
import { FaultyDevice, openFileDevice } from '../../../src/io/index.js'
import { nativeAddon } from '../../../src/native/addon.js'
import { blocksToRanges, hashBlocks, nativeReadFd, type BlockDigests } from '../../../src/mirror/checksum-diff.js'

const addon = nativeAddon()
const blockHashes = addon.blockHashes
const xxh128 = addon.xxh128
if (blockHashes === undefined || xxh128 === undefined) {
  t.fail('the addon was built without libxxhash-dev (.ci/run installs it)')
  process.exit(1)
}

/** Per-block XXH3-128 of data[offset, offset + length), sliced here, not by native code. */
function reference(data: Buffer, offset: number, length: number, blockBytes: number, seed: bigint): Buffer {
  const parts: Buffer[] = []
  for (let at = 0; at < length; at += blockBytes) {
    parts.push(xxh128!(data.subarray(offset + at, offset + Math.min(length, at + blockBytes)), seed))
  }
  return Buffer.concat(parts)
}

function digestsOf(result: Buffer | number): Buffer {
  if (typeof result === 'number') throw new Error(`errno ${result}`)
  return result
}

void t.test('known answers: xxhsum -H2 of a pattern, block by block, short last block', async (t) => {
  const length = 65536 + 65536 + 1000
  const data = Buffer.alloc(length)
  for (let i = 0; i < length; i++) data[i] = (i * 131 + (i >>> 9)) & 0xff
  const path = join(t.testdir(), 'kat.bin')
  writeFileSync(path, data)
  const fd = openSync(path, 'r')
  t.teardown(() => closeSync(fd))
  // `xxhsum -H2` of each block as a file (xxHash 0.8.1), seed 0.
  const expected = ['fd54d71f8b4f6e73c1b5960e97b31ef0', 'd8634569e069548bbb7a5df1af581a3e',
    'db4fb2dcd76862d88f6f0c1e2d0f44c0']
  const [digests] = await blockHashes([{ fd, offsetBytes: 0, lengthBytes: length }], 65536, 0n)
  const got = digestsOf(digests!)
  t.equal(got.length, 3 * 16, 'three digests: two full blocks and a 1000-byte one')
  t.same([0, 1, 2].map((block) => got.subarray(block * 16, block * 16 + 16).toString('hex')), expected)
  t.equal(xxh128(Buffer.alloc(0), 0n).toString('hex'), '99aa06d3014798d86001c324468d497f', 'empty input')
})

void t.test('matches the TypeScript reference over ranges, block sizes and seeds', async (t) => {
  const data = randomBytes(5 * 1024 * 1024 + 12345)
  const path = join(t.testdir(), 'random.bin')
  writeFileSync(path, data)
  const fd = openSync(path, 'r')
  t.teardown(() => closeSync(fd))
  const cases: Array<[offset: number, length: number, blockBytes: number]> = [
    [0, 4 * 1024 * 1024, 65536],              // whole blocks, several 1 MiB reads
    [4096, 3 * 65536 + 777, 65536],           // short last block
    [1, 1024 * 1024 + 3, 65536],              // unaligned offset across the chunk boundary
    [12345, 1000, 65536],                     // shorter than one block
    [0, 3 * 1024 * 1024 + 100, 1536 * 1024],  // blocks larger than a read chunk
    [999, 200000, 3000],                      // a block size that divides nothing
    [5 * 1024 * 1024, 12345, 4096],           // the end of the file exactly
  ]
  for (const [offset, length, blockBytes] of cases) {
    const seed = randomBytes(8).readBigUInt64LE()
    const [digests] = await blockHashes([{ fd, offsetBytes: offset, lengthBytes: length }], blockBytes, seed)
    t.ok(digestsOf(digests!).equals(reference(data, offset, length, blockBytes, seed)),
      `offset ${offset} length ${length} blocks of ${blockBytes}`)
  }
  const [a] = await blockHashes([{ fd, offsetBytes: 0, lengthBytes: 65536 }], 65536, 1n)
  const [b] = await blockHashes([{ fd, offsetBytes: 0, lengthBytes: 65536 }], 65536, 2n)
  t.notOk(digestsOf(a!).equals(digestsOf(b!)), 'the seed changes the digest')
  const [empty] = await blockHashes([{ fd, offsetBytes: 0, lengthBytes: 0 }], 65536, 0n)
  t.equal(digestsOf(empty!).length, 0, 'an empty range has no blocks')
})

void t.test('one call hashes every request on its own thread; faults and errors are per request', async (t) => {
  const dir = t.testdir()
  const size = 2 * 1024 * 1024
  const datas = [randomBytes(size), randomBytes(size)]
  const fds = datas.map((data, index) => {
    writeFileSync(join(dir, `copy${index}.img`), data)
    return openSync(join(dir, `copy${index}.img`), 'r')
  })
  t.teardown(() => {
    for (const fd of fds) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
  })
  const results = await blockHashes(fds.map((fd) => ({ fd, offsetBytes: 0, lengthBytes: size })), 65536, 7n)
  results.forEach((result, index) => t.ok(digestsOf(result).equals(reference(datas[index]!, 0, size, 65536, 7n)),
    `request ${index}`))
  const threads = readdirSync('/proc/self/task').filter((task) => {
    try {
      return readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'lvmfs-hash'
    } catch {
      return false
    }
  })
  t.ok(threads.length >= 2, `copies are hashed by parallel native threads (${threads.length} lvmfs-hash threads)`)

  setFdFault(fds[1]!, FaultBit.READ, 1024 * 1024 + 4096, 512)
  const faulted = await blockHashes(fds.map((fd) => ({ fd, offsetBytes: 0, lengthBytes: size })), 65536, 7n)
  t.ok(digestsOf(faulted[0]!).equals(reference(datas[0]!, 0, size, 65536, 7n)), 'the healthy copy is hashed')
  t.equal(faulted[1], -5, 'an injected read fault fails its request with -EIO')
  const [outside] = await blockHashes([{ fd: fds[1]!, offsetBytes: 0, lengthBytes: 1024 * 1024 }], 65536, 7n)
  t.type(outside, Buffer, 'a range clear of the fault reads')
  setFdFault(fds[1]!, 0)
  setFdFault(fds[1]!, FaultBit.WRITE)
  t.type((await blockHashes([{ fd: fds[1]!, offsetBytes: 0, lengthBytes: size }], 65536, 7n))[0], Buffer,
    'a write fault does not fail reads')
  setFdFault(fds[1]!, 0)

  const [pastEnd, badFd] = await blockHashes([{ fd: fds[0]!, offsetBytes: size - 100, lengthBytes: 200 },
    { fd: 100000, offsetBytes: 0, lengthBytes: 10 }], 65536, 0n)
  t.equal(pastEnd, -5, 'a range past the end of the file is -EIO, never zeros')
  t.equal(badFd, -9, 'a closed fd is -EBADF')
  t.throws(() => blockHashes([{ fd: fds[0]!, offsetBytes: -1, lengthBytes: 10 }], 65536, 0n), { code: 'EINVAL' })
  t.throws(() => blockHashes([{ fd: fds[0]!, offsetBytes: 0, lengthBytes: 10 }], 0, 0n), { code: 'EINVAL' })
  t.same(await blockHashes([], 65536, 0n), [], 'no request, no result')
})

void t.test('O_DIRECT fds: aligned ranges read directly, unaligned ones through a buffered descriptor', async (t) => {
  const data = randomBytes(1024 * 1024)
  const path = join(t.testdir(), 'direct.img')
  writeFileSync(path, data)
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT)
  } catch {
    t.pass('this file system refuses O_DIRECT: nothing to check')
    return
  }
  t.teardown(() => closeSync(fd))
  for (const [offset, length] of [[0, 1024 * 1024], [4096, 65536], [1000, 70000]] as const) {
    const [digests] = await blockHashes([{ fd, offsetBytes: offset, lengthBytes: length }], 65536, 3n)
    t.ok(digestsOf(digests!).equals(reference(data, offset, length, 65536, 3n)), `offset ${offset} length ${length}`)
  }
})

void t.test('hashBlocks: native through pass-through devices, SHA-256 through faulty ones; same blocks', async (t) => {
  const data = randomBytes(3 * 65536 + 500)
  const path = join(t.testdir(), 'dev.img')
  writeFileSync(path, data)
  const file = await openFileDevice(path)
  const faulty = new FaultyDevice(file)
  t.teardown(() => file.close())
  t.equal(nativeReadFd(faulty), file.fd, 'a FaultyDevice without read faults is read natively')
  const native = await hashBlocks([{ device: faulty, offsetBytes: 100 }], data.length - 100)
  t.equal((native[0] as BlockDigests).method, 'xxh3-128')
  faulty.readFlips.set(70000, 0x01)
  t.equal(nativeReadFd(faulty), -1, 'a read flip sends reads through TypeScript')
  const flipped = await hashBlocks([{ device: faulty, offsetBytes: 100 }, { device: file, offsetBytes: 100 }],
    data.length - 100)
  const [withFlip, clean] = flipped as BlockDigests[]
  t.equal(withFlip!.method, 'sha256', 'one comparison never mixes methods: both copies use SHA-256')
  t.equal(clean!.method, 'sha256')
  const digest = (of: BlockDigests, block: number): Buffer => of.digests.subarray(block * 32, block * 32 + 32)
  const differing = [0, 1, 2, 3].map((block) => !digest(withFlip!, block).equals(digest(clean!, block)))
  t.same(differing, [false, true, false, false], 'the flipped byte (PV offset 70000) is in block 1 of the range')
  t.same(blocksToRanges({ offsetInLpBytes: 100, lengthBytes: data.length - 100 }, 65536, differing),
    [{ offsetInLpBytes: 100 + 65536, lengthBytes: 65536 }])
  faulty.readFlips.clear()
  faulty.readErrorRanges = [[0, 10]]
  const [failed] = await hashBlocks([{ device: faulty, offsetBytes: 0 }], 4096)
  t.type(failed, Error, 'a read error is returned per device, not thrown')
})

void t.test('blocksToRanges coalesces adjacent blocks and clips the short last one', async (t) => {
  const range = { offsetInLpBytes: 1 << 20, lengthBytes: 5 * 65536 - 10 }
  t.same(blocksToRanges(range, 65536, [true, true, false, true, true]), [
    { offsetInLpBytes: (1 << 20), lengthBytes: 2 * 65536 },
    { offsetInLpBytes: (1 << 20) + 3 * 65536, lengthBytes: 2 * 65536 - 10 },
  ])
  t.same(blocksToRanges(range, 65536, [false, false, false, false, false]), [])
})
