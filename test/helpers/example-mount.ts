// Child process that mounts one of the example file systems; the test talks to the mount from
// its own process (a daemon's own requests are refused with EDEADLK, so it cannot be in-process).
// Usage: example-mount.ts memory MOUNTPOINT FILE_SIZE | passthrough MOUNTPOINT BACKING
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { MemoryFileSystem } from '../../src/fuse/examples/memory-fs.js'
import { PassthroughFileSystem } from '../../src/fuse/examples/passthrough-fs.js'
import { FuseSession } from '../../src/fuse/session.js'
import type { FileSystem } from '../../src/fuse/filesystem.js'
import { testTransport } from './transport.js'

const [kind, mountpoint, argument] = process.argv.slice(2)
if (!kind || !mountpoint || !argument) throw new Error('usage: example-mount KIND MOUNTPOINT ARG')
let fs: FileSystem
let passthrough: PassthroughFileSystem | undefined
if (kind === 'memory' || kind === 'misbehaving') {
  const memory = new MemoryFileSystem()
  memory.addFile('file0', Number(argument))
  if (kind === 'misbehaving') {
    // Handlers that throw an untyped error or never answer: the session must still reply once.
    const throws = memory.addFile('throws', 4096)
    const hangs = memory.addFile('hangs', 4096)
    const read = memory.read.bind(memory)
    ;(memory as FileSystem).read = (ctx, nodeid, fh, offset, target) => {
      if (nodeid === throws) throw new Error('handler bug')
      if (nodeid === hangs) return new Promise<number>(() => {})
      return read(ctx, nodeid, fh, offset, target)
    }
  }
  fs = memory
} else {
  passthrough = new PassthroughFileSystem({ backingPath: argument, name: 'lv0' })
  fs = passthrough
}
const print = (o: object, m: string): void => console.error(m, o)
const log = { warn: print, error: print }
const session = await FuseSession.mount(fs, { mountpoint,
  transport: testTransport(), threads: 4, log, requestTimeoutMs: 1500 })
passthrough?.attach(session)
process.on('SIGTERM', () => { void session.unmount({ lazy: true }) })
// The daemon touching its own mount must get an error, not wait for itself.
let selfProbe = 0
try {
  statSync(join(mountpoint, '.'))
  readdirSync(mountpoint)
} catch (error) {
  selfProbe = -((error as NodeJS.ErrnoException).errno ?? 0)
}
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, selfProbe }) + '\n')
await session.closed
process.exit(0)
