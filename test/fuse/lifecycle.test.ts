// Daemon lifecycle: a daemon killed with -9 leaves an ENOTCONN mount; `lvmfs cleanup` detaches
// it and a new daemon mounts at the same path (which also detaches a dead mount by itself).
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync, writeFileSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { constants } from 'node:os'
import t from 'tap'
import { mountsAt } from '../../src/fuse/mounts.js'
import { fuseAvailable, makeMountpoint, repoRoot, startChild, waitExit } from '../helpers/mount-child.js'

const skip = fuseAvailable()
const script = join(repoRoot, 'test/helpers/example-mount.ts')

function statError(path: string): string | undefined {
  try {
    statSync(path)
    return undefined
  } catch (error) {
    return (error as NodeJS.ErrnoException).code
  }
}

t.test('kill -9 leaves ENOTCONN; cleanup detaches; remount works', { skip }, async (t) => {
  const backing = join(t.testdir({}), 'backing.img')
  writeFileSync(backing, '')
  truncateSync(backing, 64 << 20)
  const mountpoint = makeMountpoint(t)
  const first = await startChild(t, script, ['passthrough', mountpoint, backing], mountpoint)
  writeFileSync(join(mountpoint, 'lv0'), 'before the crash', { flag: 'r+' })
  first.child.kill('SIGKILL')
  await waitExit(first.child, 10_000)
  // Over io_uring a request the dying rings held is ended ECONNABORTED; later ones get ENOTCONN.
  t.match(statError(join(mountpoint, 'lv0')), /^(ENOTCONN|ECONNABORTED)$/, 'the dead mount answers ENOTCONN')
  t.equal(mountsAt(mountpoint).length, 1, 'the dead mount stays in the table')

  const cli = join(repoRoot, 'bin/lvmfs.js')
  const output = execFileSync(process.execPath, [cli, 'cleanup', mountpoint], { encoding: 'utf8' })
  t.match(output, /detached 1 mount/)
  t.equal(mountsAt(mountpoint).length, 0, 'cleanup detached it')

  const second = await startChild(t, script, ['passthrough', mountpoint, backing], mountpoint)
  t.equal(readFileSync(join(mountpoint, 'lv0')).subarray(0, 16).toString(), 'before the crash')
  second.child.kill('SIGKILL')
  await waitExit(second.child, 10_000)
  await startChild(t, script, ['passthrough', mountpoint, backing], mountpoint)
  t.equal(mountsAt(mountpoint).length, 1, 'mounting over a dead mount detaches it instead of stacking')
  t.equal(readFileSync(join(mountpoint, 'lv0')).subarray(0, 16).toString(), 'before the crash')
})

t.test('SIGTERM unmounts cleanly', { skip }, async (t) => {
  const mountpoint = makeMountpoint(t)
  const mounted = await startChild(t, script, ['memory', mountpoint, '4096'], mountpoint)
  t.equal(mountsAt(mountpoint).length, 1)
  mounted.child.kill('SIGTERM')
  await waitExit(mounted.child, 10_000)
  t.equal(mounted.child.exitCode, 0, 'the daemon exits 0')
  t.equal(mountsAt(mountpoint).length, 0, 'nothing left mounted')
})

t.test('memory example: the JavaScript data path', { skip }, async (t) => {
  const mountpoint = makeMountpoint(t)
  await startChild(t, script, ['memory', mountpoint, '0'], mountpoint)
  const file = join(mountpoint, 'file0')
  const data = Buffer.alloc(3 << 20, 'lvmfs-')
  execFileSync('dd', ['of=' + file, 'bs=64k', 'status=none'], { input: data })
  t.same(readFileSync(file), data, 'bytes written by dd read back')
  truncateSync(file, 1000)
  t.equal(statSync(file).size, 1000, 'truncate shrinks')
  execFileSync('fallocate', ['--punch-hole', '--keep-size', '--offset', '0', '--length', '100', file])
  t.ok(readFileSync(file).subarray(0, 100).every((b) => b === 0), 'punch hole zeroes')
  t.equal(readFileSync(file).subarray(100, 106).toString(), 'lvmfs-'.slice(100 % 6) + 'lvmfs-'.slice(0, 100 % 6))
})

t.test('exactly one reply: throwing and silent handlers get EIO; the daemon\'s own requests get EDEADLK',
  { skip }, async (t) => {
    const mountpoint = makeMountpoint(t)
    const mounted = await startChild(t, script, ['misbehaving', mountpoint, '4096'], mountpoint)
    t.equal(mounted.ready['selfProbe'], constants.errno.EDEADLK, 'the daemon touching its own mount gets EDEADLK at once')
    t.throws(() => readFileSync(join(mountpoint, 'throws')), { code: 'EIO' }, 'an untyped throw becomes EIO')
    t.throws(() => readFileSync(join(mountpoint, 'hangs')), { code: 'EIO' }, 'a handler that never answers gets EIO')
    t.equal(readFileSync(join(mountpoint, 'file0')).length, 4096, 'the session keeps serving afterwards')
  })
