// End to end: thin pools on a mounted VG. Snapshots hold their point in time while the origin
// and the snapshot are both written; kill -9 of the daemon keeps every fsync-acknowledged write
// of both and leaks nothing between them; a full pool answers ENOSPC and resumes after
// lvextend; discards free blocks; removal and merge keep the child dependency.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, sha256, skip, writeAt } from '../helpers/e2e.js'
import { repoRoot, waitExit } from '../helpers/mount-child.js'
import { readStamp } from '../helpers/stamps.js'
import { createVg, makeVg, mountVg, type VgFixture } from '../helpers/vg-mount.js'
import { testTransport } from '../helpers/transport.js'

const MIB = 1 << 20
/** The origin's writer numbers its writes from here, the snapshot's from 1: a stamp tells whose it is. */
const ORIGIN_SEQUENCE = 1_000_000_000

function thinCheck(t: Test, fixture: VgFixture, pool: string): void {
  const result = fixture.cli(['thin-check', `${fixture.vg}/${pool}`, '--devices', fixture.pvs.join(',')])
  t.equal(result.code, 0, `thin-check is clean: ${result.stdout}${result.stderr}`)
}

function lvcreate(fixture: VgFixture, args: string[]): void {
  fixture.ok(['lvcreate', fixture.vg, ...args, '--devices', fixture.pvs.join(',')])
}

function writeSynced(path: string, offset: number, data: Buffer): void {
  writeAt(path, offset, data)
  const fd = openSync(path, 'r+')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}

function journalOf(path: string): Map<number, number> {
  const acknowledged = new Map<number, number>()
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [offset, sequence] = line.split(' ').map(Number)
    if (line && offset !== undefined && sequence !== undefined) acknowledged.set(offset, sequence)
  }
  return acknowledged
}

function ackWriter(t: Test, file: string, bytes: number, journal: string, first: number): ReturnType<typeof spawn> {
  writeFileSync(journal, '')
  const writer = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/ack-writer.ts'), file,
    String(bytes), journal, String(first)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { writer.kill('SIGKILL') })
  return writer
}

t.test('snapshots under writes and kill -9: point in time, every fsynced write, no leak, thin-check clean', { skip },
  async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
    createVg(fixture)
    lvcreate(fixture, ['pool', '--thinpool', '--size', '256M'])
    lvcreate(fixture, ['thin', '--thin', 'pool', '--virtual-size', '1G'])
    fixture.env['LVMFS_TRANSPORT'] = testTransport()
    mountVg(t, fixture)
    const origin = join(fixture.mountpoint, 'thin')
    // A pattern outside the writers' range: both LVs must keep it, whatever happens.
    const pattern = Buffer.alloc(4 * MIB)
    for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE((i * 2654435761) >>> 0, i)
    writeSynced(origin, 512 * MIB, pattern)
    lvcreate(fixture, ['snap', '--snapshot', 'thin'])
    const snapshot = join(fixture.mountpoint, 'snap')
    t.equal(sha256(readAt(snapshot, 512 * MIB, pattern.length)), sha256(pattern), 'the snapshot holds the pattern')
    const originJournal = join(fixture.dir, 'origin.journal')
    const snapJournal = join(fixture.dir, 'snap.journal')
    const writers = [ackWriter(t, origin, 32 * MIB, originJournal, ORIGIN_SEQUENCE),
      ackWriter(t, snapshot, 32 * MIB, snapJournal, 1)]
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const pid = fixture.daemonPid()
    t.ok(pid, 'the daemon wrote its pid file')
    process.kill(pid!, 'SIGKILL')
    for (const writer of writers) await waitExit(writer, 20_000)
    const remount = fixture.cli(['mount', fixture.vg, fixture.mountpoint, '--devices', fixture.pvs.join(',')])
    t.equal(remount.code, 0, `remount over the dead mount: ${remount.stderr}`)
    for (const [file, journal, own] of [[origin, originJournal, 'origin'], [snapshot, snapJournal, 'snapshot']] as const) {
      const acknowledged = journalOf(journal)
      t.ok(acknowledged.size > 20, `the ${own}'s writer had ${acknowledged.size} acknowledged writes`)
      let missing = 0
      for (const [offset, sequence] of acknowledged) {
        const found = readStamp(readAt(file, offset, 4096), offset)
        if (found === undefined || found < sequence) missing++
      }
      t.equal(missing, 0, `every fsync-acknowledged write of the ${own} is there`)
      let leaked = 0
      for (let offset = 0; offset < 32 * MIB; offset += 4096) {
        const found = readStamp(readAt(file, offset, 4096), offset)
        if (found !== undefined && (found >= ORIGIN_SEQUENCE) !== (own === 'origin')) leaked++
      }
      t.equal(leaked, 0, `no block of the ${own} holds the other LV's writes`)
      t.equal(sha256(readAt(file, 512 * MIB, pattern.length)), sha256(pattern), `the ${own} keeps the pattern`)
    }
    fixture.ok(['umount', fixture.mountpoint])
    thinCheck(t, fixture, 'pool')
  })

t.test('a full pool answers ENOSPC, keeps its data, and resumes after lvextend; discards free blocks', { skip },
  async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 1, pvBytes: 128 << 20 })
    createVg(fixture)
    lvcreate(fixture, ['pool', '--thinpool', '--size', '16M', '--metadata-size', '1M'])
    lvcreate(fixture, ['thin', '--thin', 'pool', '--virtual-size', '256M'])
    mountVg(t, fixture)
    const file = join(fixture.mountpoint, 'thin')
    const data = Buffer.alloc(15 * MIB, 0x5a)
    writeSynced(file, 0, data)
    const fd = openSync(file, 'r+')
    let error: NodeJS.ErrnoException | undefined
    try {
      writeSync(fd, Buffer.alloc(2 * MIB, 0x77), 0, 2 * MIB, 100 * MIB)
    } catch (caught) {
      error = caught as NodeJS.ErrnoException
    } finally {
      closeSync(fd)
    }
    t.equal(error?.code, 'ENOSPC', 'a write past the pool\'s data answers ENOSPC')
    t.equal(sha256(readAt(file, 0, data.length)), sha256(data), 'what was written is intact')
    const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { thinPools: Array<{ dataPercent: number,
      warning?: string }> }
    t.equal(status.thinPools[0]!.dataPercent, 100, 'status shows the pool full')
    t.match(status.thinPools[0]!.warning, /full/, 'and warns')
    fixture.ok(['lvextend', fixture.vg, 'pool', '--size', '+16M'])
    writeSynced(file, 100 * MIB, Buffer.alloc(2 * MIB, 0x77))
    t.equal(readAt(file, 100 * MIB + MIB, 1)[0], 0x77, 'writes resume after lvextend')
    const before = (JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { thinPools: Array<{ dataUsedBlocks: number }> })
      .thinPools[0]!.dataUsedBlocks
    execFileSync('fallocate', ['--punch-hole', '--keep-size', '--offset', '0', '--length', String(8 * MIB), file])
    const after = (JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { thinPools: Array<{ dataUsedBlocks: number }> })
      .thinPools[0]!.dataUsedBlocks
    t.equal(before - after, 128, 'punching 8 MiB frees 128 blocks of 64 KiB')
    t.ok(readAt(file, 0, 8 * MIB).every((byte) => byte === 0), 'the punched range reads zero')
    t.equal(readAt(file, 8 * MIB, 1)[0], 0x5a, 'the rest is kept')
    const busy = fixture.cli(['thin-check', `${fixture.vg}/pool`, '--repair'])
    t.match(busy.stderr, /ENGINE_BUSY.*mounted/, 'repair is refused on a mounted VG')
    fixture.ok(['umount', fixture.mountpoint])
    thinCheck(t, fixture, 'pool')
    const repaired = fixture.ok(['thin-check', `${fixture.vg}/pool`, '--repair', '--devices', fixture.pvs.join(',')])
    t.match(repaired, /1 thin devices, 144 mappings kept, 0 unreadable nodes/, 'a repair of a clean pool keeps everything')
    thinCheck(t, fixture, 'pool')
    mountVg(t, fixture)
    t.equal(readAt(file, 8 * MIB, 1)[0], 0x5a, 'the data reads back after the repair')
  })

t.test('removal keeps the child dependency; merge rolls the origin back to its snapshot', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 1, pvBytes: 128 << 20 })
  createVg(fixture)
  lvcreate(fixture, ['pool', '--thinpool', '--size', '32M'])
  lvcreate(fixture, ['thin', '--thin', 'pool', '--virtual-size', '64M'])
  mountVg(t, fixture)
  const file = join(fixture.mountpoint, 'thin')
  writeSynced(file, 0, Buffer.alloc(MIB, 1))
  lvcreate(fixture, ['snap', '--snapshot', 'thin'])
  writeSynced(file, 0, Buffer.alloc(MIB, 2))
  const removeOrigin = fixture.cli(['lvremove', fixture.vg, 'thin'])
  t.equal(removeOrigin.code, 5, 'an origin with a snapshot is not removed')
  t.match(removeOrigin.stderr, /THIN_HAS_SNAPSHOTS/, 'with the child dependency code')
  const removePool = fixture.cli(['lvremove', fixture.vg, 'pool'])
  t.match(removePool.stderr, /THIN_HAS_SNAPSHOTS/, 'nor a pool with thin LVs')
  t.notOk(spawnSync('ls', [join(fixture.mountpoint, 'pool')]).status === 0, 'the pool LV is not served as a file')
  // lsm_volume_replicate CLONE of a thin LV is a thin snapshot.
  fixture.ok(['replicate', `${fixture.vg}/thin`, 'clone', '--type', 'clone'])
  t.equal(readAt(join(fixture.mountpoint, 'clone'), 0, 1)[0], 2, 'a clone of a thin LV holds its content')
  const cloneOf = fixture.cli(['replicate', `${fixture.vg}/clone`, 'copy', '--type', 'copy'])
  t.match(cloneOf.stderr, /LSM_ERR_NO_SUPPORT/, 'a full copy of a thin LV is not supported')
  fixture.ok(['lvremove', fixture.vg, 'clone'])
  fixture.ok(['lvconvert', `${fixture.vg}/snap`, '--merge'])
  t.equal(readAt(file, 0, 1)[0], 1, 'the origin holds the snapshot\'s content again')
  t.notOk(spawnSync('ls', [join(fixture.mountpoint, 'snap')]).status === 0, 'the snapshot is gone')
  fixture.ok(['lvremove', fixture.vg, 'thin'])
  fixture.ok(['lvremove', fixture.vg, 'pool'])
  const lvs = fixture.ok(['lvs', fixture.vg, '--devices', fixture.pvs.join(',')])
  t.notMatch(lvs, /thin|pool/, 'both are gone')
})

t.test('--queue-when-full holds a write until lvextend makes room', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 1, pvBytes: 128 << 20 })
  createVg(fixture)
  lvcreate(fixture, ['pool', '--thinpool', '--size', '8M', '--metadata-size', '1M', '--queue-when-full', '20'])
  lvcreate(fixture, ['thin', '--thin', 'pool', '--virtual-size', '64M'])
  mountVg(t, fixture)
  const file = join(fixture.mountpoint, 'thin')
  writeSynced(file, 0, Buffer.alloc(7 * MIB, 0x21))
  // The pool has 7 MiB of data blocks: this write needs one more and waits.
  const writer = spawn('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=1', 'seek=32', 'conv=notrunc,fsync',
    'oflag=direct', 'status=none'], { stdio: 'ignore' })
  t.teardown(() => { writer.kill('SIGKILL') })
  const exited = new Promise<number | null>((resolve) => writer.once('exit', resolve))
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(writer.exitCode, null, 'the write is held while the pool is full')
  fixture.ok(['lvextend', fixture.vg, 'pool', '--size', '+8M'])
  t.equal(await exited, 0, 'it completes once the pool grew')
  t.equal(sha256(readAt(file, 0, 7 * MIB)), sha256(Buffer.alloc(7 * MIB, 0x21)), 'earlier data is intact')
})
