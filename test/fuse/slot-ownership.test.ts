/**
 * Exactly one answer per request, and only the right one: a handler that answers after the
 * watchdog gave up on it must not answer the request that reused its slot; a request TypeScript
 * must answer that comes from any thread of the daemon is refused (it would wait for itself); a
 * reply the kernel refuses is logged, not dropped silently.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { FlatNamespace, type FlatFile } from '../../src/fuse/examples/flat-namespace.js'
import type { FileSystem, RequestContext } from '../../src/fuse/filesystem.js'
import type { EntryReply, OpenReply } from '../../src/fuse/replies.js'
import { FuseSession } from '../../src/fuse/session.js'
import { capture, recordingLog } from '../helpers/in-process-mount.js'
import { fuseAvailable, makeMountpoint } from '../helpers/mount-child.js'
import { testTransport } from '../helpers/transport.js'

const skip = fuseAvailable()

/** Files whose LOOKUP answers after a per-file delay; READ of "overlong" answers too many bytes. */
class SlowFileSystem implements FileSystem {
  readonly namespace = new FlatNamespace<FlatFile>()
  constructor(private readonly delaysMs: Record<string, number>) {
    for (const [index, name] of Object.keys(delaysMs).entries()) {
      this.namespace.add({ name, sizeBytes: 1000 * (index + 1), mode: 0o644, mtimeMs: Date.now() })
    }
    this.namespace.add({ name: 'overlong', sizeBytes: 1 << 20, mode: 0o644, mtimeMs: Date.now() })
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<EntryReply> {
    await new Promise((resolve) => setTimeout(resolve, this.delaysMs[name] ?? 0))
    return this.namespace.lookup(parent, name)
  }

  getattr(_ctx: RequestContext, nodeid: number) { return this.namespace.attrReply(nodeid) }
  open(): OpenReply { return { fh: 0n, openFlags: 1 /* DIRECT_IO */ } }
  read(_ctx: RequestContext, _nodeid: number, _fh: bigint, _offset: number, target: Uint8Array): number {
    return target.length + 512  // more than asked: the kernel refuses this reply
  }

  fsync(): void {}
  readdir() { return this.namespace.entries() }
}

function statSize(path: string): Promise<{ size?: number; error?: string }> {
  return new Promise((resolve) => {
    execFile('stat', ['-c', '%s', path], { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve(error ? { error: stderr } : { size: Number(stdout.trim()) })
    })
  })
}

t.test('a late answer after the watchdog does not answer the request that reused the slot', { skip }, async (t) => {
  const mountpoint = makeMountpoint(t)
  // One reader and one slot: the second request necessarily reuses the first one's slot.
  const fs = new SlowFileSystem({ slow: 1800, fast: 800 })
  const log = recordingLog()
  const session = await FuseSession.mount(fs, { mountpoint,
    transport: testTransport(), threads: 1, slotsPerThread: 1, sharedSlots: 0,
    requestTimeoutMs: 1000, log })
  t.teardown(() => session.unmount({ lazy: true }))
  const slow = await statSize(join(mountpoint, 'slow'))
  t.match(slow.error, /Input\/output error/, 'the slow lookup was answered EIO by the watchdog')
  const fast = await statSize(join(mountpoint, 'fast'))
  t.equal(fast.size, 2000, 'the next request got its own answer, not the late one (size 1000)')
  t.ok(log.lines.some((line) => /never answered/.test(line.message)), 'the watchdog logged the expiry')
})

t.test('a request from any thread of the daemon is refused with EDEADLK', { skip }, async (t) => {
  const mountpoint = makeMountpoint(t)
  const session = await FuseSession.mount(new SlowFileSystem({ a: 0 }), { mountpoint,
    transport: testTransport(), threads: 2 })
  t.teardown(() => session.unmount({ lazy: true }))
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const { statSync } = require('node:fs')
    try { statSync(workerData); parentPort.postMessage('ok') } catch (error) { parentPort.postMessage(error.errno) }
  `, { eval: true, workerData: join(mountpoint, 'a') })
  const code = await new Promise((resolve) => worker.once('message', resolve))
  await worker.terminate()
  t.equal(code, -35, 'a worker thread of the daemon gets EDEADLK (errno 35; libuv has no name for it)')
  t.ok(session.stats().selfRequests >= 1, 'counted')
  const other = await statSize(join(mountpoint, 'a'))
  t.equal(other.size, 1000, 'another process is served')
})

t.test('a reply the kernel refuses is logged and counted', { skip }, async (t) => {
  const mountpoint = makeMountpoint(t)
  const log = recordingLog()
  const session = await FuseSession.mount(new SlowFileSystem({}), { mountpoint,
    transport: testTransport(), threads: 2, log })
  t.teardown(() => session.unmount({ lazy: true }))
  const read = await capture('dd', [`if=${join(mountpoint, 'overlong')}`, 'of=/dev/null', 'bs=4096', 'count=1',
    'status=none'])
  t.ok(read.error, 'the reader gets an error')
  t.ok(log.lines.some((line) => /refused a reply/.test(line.message) && line.object['errno'] === 22),
    'the refused reply is logged with EINVAL')
  t.ok(session.stats().replyErrors >= 1, 'and counted')
})
