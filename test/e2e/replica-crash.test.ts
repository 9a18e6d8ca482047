// End to end: kill -9 of the daemon while replicas of a mounted LV are written through FUSE.
// A synchronous mirror target holds every write acknowledged (fdatasync) on its source; a clone
// keeps its point-in-time bytes and its own acknowledged writes while the origin copies on
// write under load, and neither side ever shows the other's writes.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, skip } from '../helpers/e2e.js'
import { repoRoot, waitExit } from '../helpers/mount-child.js'
import { readStamp, stamp } from '../helpers/stamps.js'
import { createAndMount, makeVg, type VgFixture } from '../helpers/vg-mount.js'

const SIZE = 64 << 20
const BLOCK = 4096
/** The clone's writer numbers its writes from here, so a stamp tells which side wrote it. */
const CLONE_SEQUENCES = 1_000_000

function startWriter(t: Test, file: string, journal: string, first: number): ChildProcess {
  writeFileSync(journal, '')
  const writer = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/ack-writer.ts'),
    file, String(SIZE), journal, String(first)], { cwd: repoRoot, stdio: 'ignore' })
  t.teardown(() => { writer.kill('SIGKILL') })
  return writer
}

/** offset -> newest acknowledged sequence. */
function acknowledged(journal: string): Map<number, number> {
  const acked = new Map<number, number>()
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    const [offset, sequence] = line.split(' ').map(Number)
    if (line && offset !== undefined && sequence !== undefined) acked.set(offset, sequence)
  }
  return acked
}

function stampsOf(path: string): Array<number | undefined> {
  const image = readAt(path, 0, SIZE)
  const stamps: Array<number | undefined> = []
  for (let offset = 0; offset < SIZE; offset += BLOCK) {
    stamps.push(readStamp(image.subarray(offset, offset + BLOCK), offset))
  }
  return stamps
}

async function killDaemonAfter(fixture: VgFixture, ms: number, writers: ChildProcess[]): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
  process.kill(fixture.daemonPid()!, 'SIGKILL')
  for (const writer of writers) await waitExit(writer, 20_000)
  const remount = fixture.cli(['mount', fixture.vg, fixture.mountpoint, '--devices', fixture.pvs.join(',')])
  if (remount.code !== 0) throw new Error(`remount after the kill: ${remount.stderr}`)
}

t.test('sync mirror: kill -9 under acknowledged writes, the target holds every one', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  createAndMount(t, fixture, [{ name: 'src', size: '64M' }])
  fixture.ok(['replicate', `${fixture.vg}/src`, 'mir', '--type', 'mirror-sync', '--wait', '--devices', fixture.pvs.join(',')])
  const journal = join(fixture.dir, 'journal')
  const writer = startWriter(t, join(fixture.mountpoint, 'src'), journal, 1)
  await killDaemonAfter(fixture, 2000 + Math.random() * 1000, [writer])
  const acked = acknowledged(journal)
  t.ok(acked.size > 10, `${acked.size} blocks were acknowledged before the kill`)
  const target = stampsOf(join(fixture.mountpoint, 'mir'))
  const source = stampsOf(join(fixture.mountpoint, 'src'))
  let missing = 0
  for (const [offset, sequence] of acked) {
    if ((target[offset / BLOCK] ?? 0) < sequence) missing++
    if ((source[offset / BLOCK] ?? 0) < sequence) missing++
  }
  t.equal(missing, 0, 'every acknowledged write is on the source and on the mirror target')
})

t.test('clone: kill -9 while origin and clone are written, point-in-time bytes and acknowledged writes kept',
  { skip }, async (t: Test) => {
    const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
    createAndMount(t, fixture, [{ name: 'origin', size: '64M' }])
    const image = Buffer.alloc(SIZE)
    for (let offset = 0; offset < SIZE; offset += BLOCK) stamp(offset, 0).copy(image, offset)
    writeFileSync(join(fixture.mountpoint, 'origin'), image, { flag: 'r+' })
    fixture.ok(['replicate', `${fixture.vg}/origin`, 'snap', '--type', 'clone', '--devices', fixture.pvs.join(',')])
    const originJournal = join(fixture.dir, 'origin.journal')
    const cloneJournal = join(fixture.dir, 'clone.journal')
    const writers = [startWriter(t, join(fixture.mountpoint, 'origin'), originJournal, 1),
      startWriter(t, join(fixture.mountpoint, 'snap'), cloneJournal, CLONE_SEQUENCES)]
    await killDaemonAfter(fixture, 2000 + Math.random() * 1000, writers)

    const originAcked = acknowledged(originJournal)
    const cloneAcked = acknowledged(cloneJournal)
    t.ok(originAcked.size > 10 && cloneAcked.size > 10, `${originAcked.size} origin and ${cloneAcked.size} clone writes acknowledged`)
    const origin = stampsOf(join(fixture.mountpoint, 'origin'))
    const clone = stampsOf(join(fixture.mountpoint, 'snap'))
    const problems: string[] = []
    for (let block = 0; block < SIZE / BLOCK; block++) {
      const offset = block * BLOCK
      const [o, c] = [origin[block], clone[block]]
      if (o === undefined || o >= CLONE_SEQUENCES) problems.push(`origin ${offset}: ${o}`)
      else if (o < (originAcked.get(offset) ?? 0)) problems.push(`origin ${offset}: ${o} < acknowledged ${originAcked.get(offset)}`)
      if (c === undefined || (c !== 0 && c < CLONE_SEQUENCES)) problems.push(`clone ${offset}: ${c}`)
      else if (c < (cloneAcked.get(offset) ?? 0)) problems.push(`clone ${offset}: ${c} < acknowledged ${cloneAcked.get(offset)}`)
    }
    t.same(problems.slice(0, 5), [], `${problems.length} blocks wrong (origin: only its own writes, at least the ` +
      'acknowledged ones; clone: point-in-time or its own writes)')
  })
