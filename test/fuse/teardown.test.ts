/**
 * Teardown under load, 50 times: while child processes read and write the volume (some writes
 * through a gate, so resumed requests are in flight), the session is unmounted lazily, detached
 * from outside, or aborted. Every native thread must be joined when it ends, and nothing may be
 * written afterwards to an fd number it used: files opened right after teardown (which take the
 * freed numbers) stay empty.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { PassthroughFileSystem } from '../../src/fuse/examples/passthrough-fs.js'
import { mountsAt } from '../../src/fuse/mounts.js'
import { FuseSession } from '../../src/fuse/session.js'
import { run } from '../helpers/in-process-mount.js'
import { fuseAvailable, makeMountpoint } from '../helpers/mount-child.js'
import { testTransport } from '../helpers/transport.js'

const skip = fuseAvailable()
const ROUNDS = 50
const SIZE = 32 << 20
const REGION = 1 << 20

function nativeThreads(): string[] {
  return readdirSync('/proc/self/task').map((tid) => {
    try { return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() } catch { return '' }
  }).filter((name) => name.startsWith('lvmfs-'))
}

t.test(`unmount or abort under load, ${ROUNDS} times: threads joined, no late write to a freed fd`, { skip }, async (t) => {
  const dir = t.testdir()
  const backing = join(dir, 'backing.img')
  writeFileSync(backing, Buffer.alloc(SIZE))
  writeFileSync(join(dir, 'source'), Buffer.alloc(1 << 20, 0x5c))
  const mountpoint = makeMountpoint(t)
  // Node's own threads (the libuv pool starts lazily): started before counting.
  await Promise.all(Array.from({ length: 8 }, () => import('node:fs/promises').then((m) => m.stat(dir))))
  const baseline = readdirSync('/proc/self/task').length
  const modes = ['lazy unmount', 'external detach', 'abort'] as const
  const ends = new Map<string, number>()
  for (let round = 0; round < ROUNDS; round++) {
    const mode = modes[round % modes.length]!
    const fs = new PassthroughFileSystem({ backingPath: backing, name: 'vol' })
    const session = await FuseSession.mount(fs, { mountpoint,
      transport: testTransport(), threads: 4, requestTimeoutMs: 5_000, policy: {
      // Gated writes in flight at teardown: a gate opens after a short wait, then the write resumes.
      onGate: async (nodeid, region) => {
        await new Promise((resolve) => setTimeout(resolve, round % 7))
        session.setGate(nodeid, region, true)
      },
    } })
    session.mapVolume(fs.nodeid, { ...fs.volumeMap(), gateBytes: REGION })
    const file = join(mountpoint, 'vol')
    const load = [
      run('dd', [`if=${join(dir, 'source')}`, `of=${file}`, 'bs=64k', 'count=100000', 'oflag=direct', 'conv=notrunc', 'status=none']),
      run('dd', [`if=${file}`, 'of=/dev/null', 'bs=64k', 'count=100000', 'iflag=direct', 'status=none']),
      run('dd', [`if=${join(dir, 'source')}`, `of=${file}`, 'bs=4k', 'count=100000', 'seek=4000', 'oflag=direct',
        'conv=notrunc', 'status=none']),
    ]
    await new Promise((resolve) => setTimeout(resolve, 30 + (round % 5) * 20))
    if (mode === 'lazy unmount') {
      // The children keep their files open, so the connection lives until they are gone.
      const unmounted = session.unmount({ lazy: true })
      for (const child of load) child.child.kill('SIGKILL')
      await unmounted
    } else if (mode === 'external detach') {
      await run('umount', ['-l', mountpoint]).done
      for (const child of load) child.child.kill('SIGKILL')
      await session.closed
    } else {
      session.abort()
      for (const child of load) child.child.kill('SIGKILL')
    }
    await Promise.all(load.map((child) => child.done))
    const left = nativeThreads()
    if (left.length > 0) t.fail(`round ${round} (${mode}): native threads left: ${left.join(', ')}`)
    fs.close()
    // Take the fd numbers the session and its backing used; anything written to them from now on
    // is a write to a closed fd.
    const sentinels = Array.from({ length: 16 }, (_v, i) => {
      const path = join(dir, `sentinel-${i}`)
      writeFileSync(path, '')
      return openSync(path, 'r+')
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const written = sentinels.filter((fd) => fstatSync(fd).size > 0).length
    for (const fd of sentinels) closeSync(fd)
    if (written > 0) t.fail(`round ${round} (${mode}): ${written} freed fd number(s) were written to after teardown`)
    ends.set(mode, (ends.get(mode) ?? 0) + 1)
    if (mountsAt(mountpoint).length > 0) await run('umount', ['-l', mountpoint]).done
  }
  t.same(nativeThreads(), [], 'no native thread outlives its session')
  const threads = readdirSync('/proc/self/task').length
  t.ok(threads <= baseline + 4, `the process has ${threads} threads, ${baseline} before the first mount (none leaked)`)
  t.equal([...ends.values()].reduce((a, b) => a + b, 0), ROUNDS, `all ${ROUNDS} rounds ended: ${JSON.stringify(Object.fromEntries(ends))}`)
  t.equal(mountsAt(mountpoint).length, 0, 'nothing left mounted')
})
