/**
 * FaultyDevice: each fault of the model does what it says, on a MemoryDevice.
 */
import t from 'tap'
import { CrashController, FaultyDevice, MemoryDevice } from '../../../src/io/index.js'

const SIZE = 64 * 1024

void t.test('EIO on read and write ranges', async (t) => {
  const f = new FaultyDevice(new MemoryDevice('m', SIZE))
  f.readErrorRanges.push([4096, 8192])
  f.writeErrorRanges.push([0, 512])
  await t.rejects(f.read(new Uint8Array(512), 4000), { code: 'ENGINE_IO', context: { errno: 'EIO' } })
  await f.read(new Uint8Array(512), 8192)
  await t.rejects(f.write(new Uint8Array(10), 100), { code: 'ENGINE_IO' })
  await f.write(new Uint8Array(10), 512)
})

void t.test('writes fail after N successes; disappear and reappear', async (t) => {
  const inner = new MemoryDevice('m', SIZE)
  const f = new FaultyDevice(inner)
  f.failWritesAfter(2)
  await f.write(Uint8Array.of(1), 0)
  await f.write(Uint8Array.of(2), 1)
  await t.rejects(f.write(Uint8Array.of(3), 2), { code: 'ENGINE_IO' })
  t.same([...inner.data.subarray(0, 3)], [1, 2, 0])
  f.disappear()
  await t.rejects(f.read(new Uint8Array(1), 0), { code: 'ENGINE_IO', context: { errno: 'ENXIO' } })
  await t.rejects(f.sync(), { code: 'ENGINE_IO', context: { errno: 'ENXIO' } })
  f.reappear()
  await f.read(new Uint8Array(1), 0)
})

void t.test('a torn write lands on its first sectors only and fails', async (t) => {
  const inner = new MemoryDevice('m', SIZE)
  inner.data.fill(9, 0, 2048)
  const f = new FaultyDevice(inner)
  f.tearNextWrite(2)
  await t.rejects(f.write(new Uint8Array(2048).fill(1), 0), { code: 'ENGINE_IO' })
  t.ok(inner.data.subarray(0, 1024).every((b) => b === 1), 'first two sectors new')
  t.ok(inner.data.subarray(1024, 2048).every((b) => b === 9), 'the rest old')
  await f.write(new Uint8Array(2048).fill(2), 0)
  t.ok(inner.data.subarray(0, 2048).every((b) => b === 2), 'only the next write was torn')
})

void t.test('bit flips on reads leave the medium intact; latency delays but completes', async (t) => {
  const inner = new MemoryDevice('m', SIZE)
  const f = new FaultyDevice(inner)
  f.readFlips.set(10, 0x80)
  f.latencyMs = 1
  const buf = new Uint8Array(16)
  await f.read(buf, 0)
  t.equal(buf[10], 0x80)
  t.equal(inner.data[10], 0)
})

void t.test('a shared crash controller stops every device at write K', async (t) => {
  for (const mode of ['dropped', 'torn', 'complete'] as const) {
    const a = new MemoryDevice('a', SIZE)
    const b = new MemoryDevice('b', SIZE)
    const crash = new CrashController(2, mode)
    const fa = new FaultyDevice(a, crash)
    const fb = new FaultyDevice(b, crash)
    await fa.write(new Uint8Array(1024).fill(1), 0)
    await t.rejects(fb.write(new Uint8Array(1024).fill(2), 0), { code: 'ENGINE_IO' })
    t.ok(crash.crashed)
    const landed = b.data.subarray(0, 1024)
    if (mode === 'dropped') t.ok(landed.every((x) => x === 0), mode)
    if (mode === 'torn') t.ok(landed.subarray(0, 512).every((x) => x === 2) && landed.subarray(512).every((x) => x === 0), mode)
    if (mode === 'complete') t.ok(landed.every((x) => x === 2), mode)
    await t.rejects(fa.write(new Uint8Array(1), 5000), { code: 'ENGINE_IO' })
    t.equal(a.data[5000], 0, 'nothing lands after the crash')
  }
})
