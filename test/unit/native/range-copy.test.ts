/**
 * The native range copier (native/range-copy.cc through the addon's rangeCopy): exact bytes for
 * ranges that are not multiples of 4 KiB, to several targets, over many copy_file_range calls,
 * through either method (the buffer by default); the buffer fallback where the kernel refuses copy_file_range; a source
 * fault stops the copy as a source error; a faulted target fails alone while the others
 * complete; an injected stall holds the worker, not the JavaScript thread.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FaultBit, setFdFault } from '../../../src/fuse/native-session.js'
import { nativeAddon, type RangeCopyOptions, type RangeCopyResult } from '../../../src/native/addon.js'

const MiB = 1024 * 1024
const FILE_BYTES = 24 * MiB

function files(t: Test, count: number): number[] {
  const dir = t.testdir()
  const fds: number[] = []
  for (let i = 0; i < count; i++) {
    const fd = openSync(join(dir, `f${i}.img`), 'w+')
    ftruncateSync(fd, FILE_BYTES)
    fds.push(fd)
  }
  t.teardown(() => {
    for (const fd of fds) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
  })
  return fds
}

function bytesAt(fd: number, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, out, done, length - done, offset + done)
    if (n === 0) break
    done += n
  }
  return out
}

const sha = (buffer: Buffer): string => createHash('sha256').update(buffer).digest('hex')

function fill(fd: number, offset: number, length: number): Buffer {
  const data = randomBytes(length)
  writeSync(fd, data, 0, length, offset)
  return data
}

function copy(source: number, sourceOffset: number, length: number, targets: Array<[number, number]>,
  options?: RangeCopyOptions): Promise<RangeCopyResult> {
  return nativeAddon().rangeCopy(source, sourceOffset, length, targets.map(([fd]) => fd),
    targets.map(([, offset]) => offset), options)
}

for (const method of ['copy_file_range', 'buffer'] as const) {
  void t.test(`${method}: unaligned range to two targets, exact bytes, nothing around it touched`, async (t) => {
    const [src, a, b] = files(t, 3)
    const length = 3 * MiB + 12345  // no multiple of 4 KiB, and not of the 1 MiB chunk
    const data = fill(src!, 777, length)
    const beforeA = fill(a!, 0, 8 * MiB)
    const beforeB = fill(b!, 0, 8 * MiB)
    const result = await copy(src!, 777, length, [[a!, 4097], [b!, 3 * 512]], { method })
    t.equal(result.sourceErrno, 0)
    t.same(result.targets, [{ copiedBytes: length, errno: 0 }, { copiedBytes: length, errno: 0 }])
    t.equal(method === 'copy_file_range' ? result.fileRangeBytes : result.bufferBytes, 2 * length,
      `every byte moved by ${method}`)
    t.equal(sha(bytesAt(a!, 4097, length)), sha(data), 'target A holds the range')
    t.equal(sha(bytesAt(b!, 1536, length)), sha(data), 'target B holds the range')
    t.ok(bytesAt(a!, 0, 4097).equals(beforeA.subarray(0, 4097)), 'A before the range unchanged')
    t.ok(bytesAt(a!, 4097 + length, 8 * MiB - 4097 - length).equals(beforeA.subarray(4097 + length)),
      'A after the range unchanged')
    t.ok(bytesAt(b!, 1536 + length, 1000).equals(beforeB.subarray(1536 + length, 1536 + length + 1000)),
      'B after the range unchanged')
  })
}

void t.test('large: 9 MiB + 123 bytes in 4 KiB chunks is 2,305 copy_file_range calls per target', async (t) => {
  const [src, a, b] = files(t, 3)
  const length = 9 * MiB + 123
  const data = fill(src!, 5, length)
  const result = await copy(src!, 5, length, [[a!, 11], [b!, 0]], { chunkBytes: 4096, method: 'copy_file_range' })
  t.same(result.targets.map((target) => target.copiedBytes), [length, length])
  t.equal(result.fileRangeBytes, 2 * length, 'copy_file_range, no buffer fallback')
  t.equal(sha(bytesAt(a!, 11, length)), sha(data))
  t.equal(sha(bytesAt(b!, 0, length)), sha(data))
  // The default method and chunk (the buffer, 1 MiB) move the same bytes.
  const again = await copy(src!, 5, length, [[b!, 1 * MiB]])
  t.equal(again.targets[0]!.copiedBytes, length)
  t.equal(again.bufferBytes, length, 'the default is the buffer method')
  t.equal(sha(bytesAt(b!, 1 * MiB, length)), sha(data))
})

void t.test('the kernel refuses copy_file_range (overlapping ranges of one file): the buffer copies', async (t) => {
  const [file] = files(t, 1)
  const data = fill(file!, 0, 1 * MiB)
  const result = await copy(file!, 0, 1 * MiB, [[file!, 64 * 1024]], { method: 'copy_file_range' })
  t.same(result.targets, [{ copiedBytes: 1 * MiB, errno: 0 }])
  t.equal(result.fileRangeBytes, 0, 'copy_file_range refused (EINVAL)')
  t.equal(result.bufferBytes, 1 * MiB, 'the buffer moved it')
  t.ok(bytesAt(file!, 64 * 1024, 1 * MiB).equals(data), 'the range arrived whole (one chunk read, then written)')
})

for (const method of ['copy_file_range', 'buffer'] as const) {
  void t.test(`${method}: a source read fault is a source error; the targets hold the prefix before it`, async (t) => {
    const [src, a, b] = files(t, 3)
    const data = fill(src!, 0, 4 * MiB)
    setFdFault(src!, FaultBit.READ, 2 * MiB + 100, 1)
    const result = await copy(src!, 0, 4 * MiB, [[a!, 0], [b!, 0]], { method })
    t.equal(result.sourceErrno, 5, 'EIO from the source')
    t.same(result.targets, [{ copiedBytes: 2 * MiB, errno: 0 }, { copiedBytes: 2 * MiB, errno: 0 }],
      'neither target failed; both stopped after the two chunks before the fault')
    t.ok(bytesAt(a!, 0, 2 * MiB).equals(data.subarray(0, 2 * MiB)))
    t.ok(bytesAt(a!, 2 * MiB, 2 * MiB).equals(Buffer.alloc(2 * MiB)), 'nothing written past the fault')
  })

  void t.test(`${method}: one target faulted fails alone, the others complete`, async (t) => {
    const [src, a, b, c] = files(t, 4)
    const length = 5 * MiB + 3
    const data = fill(src!, 0, length)
    // Target B fails writes from 3 MiB on (its own offsets: the copy lands at 1 MiB there).
    setFdFault(b!, FaultBit.WRITE, 1 * MiB + 3 * MiB, 4096)
    const result = await copy(src!, 0, length, [[a!, 0], [b!, 1 * MiB], [c!, 7]], { method })
    t.equal(result.sourceErrno, 0)
    t.same(result.targets.map((target) => target.errno), [0, 5, 0], 'only target B failed')
    t.same(result.targets.map((target) => target.copiedBytes), [length, 3 * MiB, length],
      'B got the chunks before its fault, A and C everything')
    t.equal(sha(bytesAt(a!, 0, length)), sha(data))
    t.equal(sha(bytesAt(c!, 7, length)), sha(data))
    t.ok(bytesAt(b!, 1 * MiB, 3 * MiB).equals(data.subarray(0, 3 * MiB)))
  })
}

void t.test('a stalled target holds the copy thread, never the JavaScript thread', async (t) => {
  const [src, a] = files(t, 2)
  fill(src!, 0, 1 * MiB)
  setFdFault(a!, FaultBit.STALL, 0, 1 * MiB)  // 300 ms per chunk written
  const started = performance.now()
  let ticks = 0
  const timer = setInterval(() => { ticks += 1 }, 10)
  const result = await copy(src!, 0, 1 * MiB, [[a!, 0]])
  clearInterval(timer)
  const elapsed = performance.now() - started
  t.equal(result.targets[0]!.copiedBytes, 1 * MiB)
  t.ok(elapsed >= 290, `the stall was honoured (${elapsed.toFixed(0)} ms)`)
  t.ok(ticks >= 10, `timers kept firing meanwhile (${ticks} ticks)`)
})

void t.test('an fd closed (and its number reused) before the copy runs: the copy still lands where asked', async (t) => {
  const dir = t.testdir()
  const [src] = files(t, 1)
  const data = fill(src!, 0, 2 * MiB)
  const path = join(dir, 'target.img')
  const target = openSync(path, 'w+')
  ftruncateSync(target, 4 * MiB)
  const pending = copy(src!, 0, 2 * MiB, [[target, 0]])
  closeSync(target)  // before the worker ran: the copy holds its own dup
  const reuse = openSync(join(dir, 'bystander.img'), 'w+')
  t.teardown(() => closeSync(reuse))
  const result = await pending
  t.same(result.targets, [{ copiedBytes: 2 * MiB, errno: 0 }])
  const check = openSync(path, 'r')
  t.ok(bytesAt(check, 0, 2 * MiB).equals(data), 'the target file got the bytes')
  closeSync(check)
  t.equal(bytesAt(reuse, 0, 16).length, 16)
  t.ok(bytesAt(reuse, 0, 2 * MiB).equals(Buffer.alloc(2 * MiB)), 'the file now behind the old number was not written')
})

void t.test('bad arguments throw EINVAL at once', async (t) => {
  const [src, a] = files(t, 2)
  const addon = nativeAddon()
  t.throws(() => addon.rangeCopy(src!, 0, 10, [], []), { code: 'EINVAL' })
  t.throws(() => addon.rangeCopy(src!, -1, 10, [a!], [0]), { code: 'EINVAL' })
  t.throws(() => addon.rangeCopy(src!, 0, 10, [a!], [0, 1]), { code: 'EINVAL' })
  t.throws(() => addon.rangeCopy(src!, 0, 10, [a!], [0], { chunkBytes: 100 }), { code: 'EINVAL' })
  t.throws(() => addon.rangeCopy(src!, 0, 10, [a!], [0], { method: 'nope' as 'auto' }), { code: 'EINVAL' })
  t.throws(() => addon.rangeCopy(999_999, 0, 10, [a!], [0]), { code: 'EBADF' }, 'a source fd that is not open')
})
