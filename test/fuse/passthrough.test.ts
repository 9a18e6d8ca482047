// The native data path end to end: the passthrough example serves a sparse backing file; every
// test writes through the mount with real tools and compares bytes with the backing file.
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, constants, openSync, readSync, statSync, truncateSync,
  writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { nativeAddon } from '../../src/native/addon.js'
import { fuseAvailable, makeMountpoint, repoRoot, startChild } from '../helpers/mount-child.js'

const skip = fuseAvailable()
const script = join(repoRoot, 'test/helpers/example-mount.ts')

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function readRange(path: string, offset: number, length: number, direct = false): Buffer {
  const fd = openSync(path, constants.O_RDONLY | (direct ? constants.O_DIRECT : 0))
  try {
    const buffer = direct ? nativeAddon().alignedBuffer(length, 4096) : Buffer.alloc(length)
    let done = 0
    while (done < length) {
      const n = readSync(fd, buffer, done, length - done, offset + done)
      if (n === 0) break
      done += n
    }
    return buffer.subarray(0, done)
  } finally {
    closeSync(fd)
  }
}

async function mountPassthrough(t: Test, sizeBytes: number) {
  const dir = t.testdir({})
  const backing = join(dir, 'backing.img')
  writeFileSync(backing, '')
  truncateSync(backing, sizeBytes)
  const mountpoint = makeMountpoint(t)
  await startChild(t, script, ['passthrough', mountpoint, backing], mountpoint)
  return { backing, mountpoint, file: join(mountpoint, 'lv0') }
}

t.test('passthrough example', { skip }, async (t) => {
  const { backing, mountpoint, file } = await mountPassthrough(t, 256 << 20)

  t.test('ls, stat and df see one file of the backing size', async (t) => {
    t.equal(execFileSync('ls', [mountpoint], { encoding: 'utf8' }).trim(), 'lv0')
    t.equal(statSync(file).size, 256 << 20)
    const df = execFileSync('df', ['-B1', mountpoint], { encoding: 'utf8' })
    t.match(df, /lvmfs/)
  })

  for (const bs of ['4k', '64k', '1M']) {
    for (const direct of [false, true]) {
      t.test(`dd bs=${bs} ${direct ? 'oflag=direct' : 'buffered'} reads back identical bytes`, async (t) => {
        const data = randomBytes(4 << 20)
        const source = join(t.testdir({}), 'source')
        writeFileSync(source, data)
        const seekBytes = direct ? 8 << 20 : 16 << 20
        execFileSync('dd', [`if=${source}`, `of=${file}`, `bs=${bs}`, `seek=${seekBytes}`, 'oflag=seek_bytes' +
          (direct ? ',direct' : ''), 'conv=notrunc,fsync', 'status=none'])
        t.equal(sha256(readRange(file, seekBytes, data.length)), sha256(data), 'through the mount')
        t.equal(sha256(readRange(backing, seekBytes, data.length, true)), sha256(data), 'on the backing file')
      })
    }
  }

  t.test('unaligned O_DIRECT write and read', async (t) => {
    const fd = openSync(file, constants.O_RDWR | constants.O_DIRECT)
    try {
      writeSync(fd, Buffer.from('unaligned-direct'), 0, 16, 7)
      const back = Buffer.alloc(16)
      readSync(fd, back, 0, 16, 7)
      t.equal(back.toString(), 'unaligned-direct')
    } finally {
      closeSync(fd)
    }
    t.equal(readRange(backing, 7, 16).toString(), 'unaligned-direct')
  })

  t.test('concurrent writers on disjoint ranges', async (t) => {
    const dir = t.testdir({})
    const chunks = [0, 1, 2, 3].map(() => randomBytes(2 << 20))
    await Promise.all(chunks.map((chunk, i) => {
      const source = join(dir, `c${i}`)
      writeFileSync(source, chunk)
      return new Promise<void>((resolve, reject) => {
        const dd = spawn('dd', [`if=${source}`, `of=${file}`, 'bs=64k', `seek=${32 + i * 2}M`,
          'oflag=seek_bytes,direct', 'conv=notrunc', 'status=none'])
        dd.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dd ${code}`))))
      })
    }))
    chunks.forEach((chunk, i) => {
      t.equal(sha256(readRange(backing, (32 + i * 2) << 20, chunk.length, true)), sha256(chunk), `range ${i}`)
    })
  })

  t.test('fsync reaches the backing file', async (t) => {
    const fd = openSync(file, constants.O_RDWR)
    const data = randomBytes(8192)
    writeSync(fd, data, 0, data.length, 100 << 20)
    execFileSync('sync', ['--data', file])
    closeSync(fd)
    t.equal(sha256(readRange(backing, 100 << 20, 8192, true)), sha256(data))
  })

  t.test('fallocate punch hole zeroes the range on the backing file', async (t) => {
    const data = randomBytes(1 << 20)
    const fd = openSync(file, constants.O_RDWR)
    writeSync(fd, data, 0, data.length, 120 << 20)
    closeSync(fd)
    execFileSync('fallocate', ['--punch-hole', '--keep-size', '--offset', String(120 << 20),
      '--length', String(256 << 10), file])
    const back = readRange(backing, 120 << 20, 1 << 20, true)
    t.ok(back.subarray(0, 256 << 10).every((b) => b === 0), 'punched range reads zeros')
    t.same(back.subarray(256 << 10), data.subarray(256 << 10), 'the rest is intact')
  })

  t.test('truncate resizes the backing file', async (t) => {
    truncateSync(file, 300 << 20)
    t.equal(statSync(file).size, 300 << 20)
    t.equal(statSync(backing).size, 300 << 20)
    truncateSync(file, 256 << 20)
    t.equal(statSync(backing).size, 256 << 20)
  })
})

t.test('offsets above 4 GiB on a sparse backing file', { skip }, async (t) => {
  const { backing, file } = await mountPassthrough(t, 6 * 1024 ** 3)
  const data = randomBytes(1 << 20)
  const offset = 5 * 1024 ** 3 + 4096
  const fd = openSync(file, constants.O_RDWR)
  writeSync(fd, data, 0, data.length, offset)
  closeSync(fd)
  t.equal(sha256(readRange(file, offset, data.length)), sha256(data), 'through the mount')
  t.equal(sha256(readRange(backing, offset, data.length, true)), sha256(data), 'at the same backing offset')
  t.ok(statSync(backing).blocks * 512 < 64 << 20, 'backing stays sparse')
})
