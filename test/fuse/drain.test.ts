/**
 * drainWrites waits for every write admitted before it was called, even when drains of one
 * volume run at once (the gate keeper closes gates of several regions concurrently: resync and
 * eviction). A write held in flight by a stalled backing disk must be on the backing file when
 * either of two concurrent drains resolves; with two drains flipping the generation twice, the
 * second used to return at once and let a resync copy race the write.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { PassthroughFileSystem } from '../../src/fuse/examples/passthrough-fs.js'
import { setFdFault } from '../../src/fuse/native-session.js'
import { FuseSession } from '../../src/fuse/session.js'
import { blockedInFuse } from '../helpers/in-process-mount.js'
import { fuseAvailable, makeMountpoint } from '../helpers/mount-child.js'
import { testTransport } from '../helpers/transport.js'

const SLOW_WRITES = 4
const REGION = 1 << 20

function backingHolds(path: string, expected: Buffer): boolean {
  const fd = openSync(path, 'r')
  try {
    const found = Buffer.alloc(expected.length)
    readSync(fd, found, 0, found.length, 0)
    return found.equals(expected)
  } finally {
    closeSync(fd)
  }
}

t.test('two concurrent drains both wait for a write admitted before them', { skip: fuseAvailable() }, async (t) => {
  const dir = t.testdir()
  const backing = join(dir, 'backing.img')
  writeFileSync(backing, Buffer.alloc(4 * REGION))
  const mountpoint = makeMountpoint(t)
  const fs = new PassthroughFileSystem({ backingPath: backing, name: 'vol' })
  const session = await FuseSession.mount(fs, { mountpoint, transport: testTransport(), threads: 4 })
  t.teardown(async () => {
    setFdFault(fs.fd, 0)
    await session.unmount({ lazy: true })
    fs.close()
  })
  session.mapVolume(fs.nodeid, { ...fs.volumeMap(), gateBytes: REGION })
  session.setGate(fs.nodeid, 0, true)
  session.setGate(fs.nodeid, 1, true)
  setFdFault(fs.fd, SLOW_WRITES)

  const pattern = Buffer.alloc(4096, 0x5a)
  writeFileSync(join(dir, 'pattern'), pattern)
  const writer = spawn('dd', [`if=${join(dir, 'pattern')}`, `of=${join(mountpoint, 'vol')}`, 'bs=4096', 'count=1',
    'oflag=direct', 'conv=notrunc', 'status=none'], { stdio: 'ignore' })
  const exited = new Promise<number | null>((resolve) => writer.once('exit', resolve))
  await blockedInFuse(writer.pid!)
  // The reader thread admits the request microseconds after it is queued; give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 50))

  session.setGate(fs.nodeid, 0, false)
  const first = session.drainWrites(fs.nodeid).then(() => backingHolds(backing, pattern))
  session.setGate(fs.nodeid, 1, false)
  const second = session.drainWrites(fs.nodeid).then(() => backingHolds(backing, pattern))
  t.same(await Promise.all([first, second]), [true, true],
    'each drain resolved only after the in-flight write reached the backing file')
  t.equal(await exited, 0, 'the write itself succeeded')
})
