// Child process that mounts one of the example file systems; the test talks to the mount from
// its own process (a daemon's own requests are refused with EDEADLK, so it cannot be in-process).
// Usage: example-mount.ts memory MOUNTPOINT FILE_SIZE | passthrough MOUNTPOINT BACKING
import { MemoryFileSystem } from '../../src/fuse/examples/memory-fs.js'
import { PassthroughFileSystem } from '../../src/fuse/examples/passthrough-fs.js'
import { FuseSession } from '../../src/fuse/session.js'
import type { FileSystem } from '../../src/fuse/filesystem.js'

const [kind, mountpoint, argument] = process.argv.slice(2)
if (!kind || !mountpoint || !argument) throw new Error('usage: example-mount KIND MOUNTPOINT ARG')
let fs: FileSystem
let passthrough: PassthroughFileSystem | undefined
if (kind === 'memory') {
  const memory = new MemoryFileSystem()
  memory.addFile('file0', Number(argument))
  fs = memory
} else {
  passthrough = new PassthroughFileSystem({ backingPath: argument, name: 'lv0' })
  fs = passthrough
}
const print = (o: object, m: string): void => console.error(m, o)
const log = { warn: print, error: print }
const session = await FuseSession.mount(fs, { mountpoint, threads: 4, log })
passthrough?.attach(session)
process.on('SIGTERM', () => { void session.unmount({ lazy: true }) })
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n')
await session.closed
process.exit(0)
