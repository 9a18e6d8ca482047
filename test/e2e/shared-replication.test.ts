// End to end: replication in a shared VG (docs/shared-vg.md, "Replication"). Daemon A serves `src`
// and runs a full copy of it; daemon B serves another LV. A is killed (-9) mid-job: B neither
// resumes the job nor accepts `job --wait` for it (its source is not served there). A new daemon
// serving `src` takes the replica lock over — the dead holder left its value block not valid, so
// it runs dlm_rd_collect, rewrites the copy's superblock, dlm_rd_validate — and finishes the job;
// the copy is the source image at creation, byte for byte. A clone unmounted cleanly leaves a
// valid value block (its superblock's seq and mark): the next server has nothing to recover, and
// one whose superblock was destroyed meanwhile is reported. Then an async mirror: A killed under
// acknowledged writes, C catches the target up from the dirty chunks persisted in the VG.
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { VgStatusReport } from '../../src/engine/status.js'
import { superblockSlotBytes } from '../../src/format/index.js'
import { cleanupMountpoint } from '../../src/fuse/mounts.js'
import { varyOnVg } from '../../src/lvm/index.js'
import { readAt, sha256, writeAt } from '../helpers/e2e.js'
import { fuseAvailable } from '../helpers/mount-child.js'
import { eventually, sharedVg } from '../helpers/shared-vg.js'

const skip = fuseAvailable()
const MiB = 1 << 20
const SIZE = 128 * MiB

function copyStatus(status: VgStatusReport): { state: string, syncState: string, percent?: number } | undefined {
  return status.replicas?.find((replica) => replica.lv === 'cp')
}

t.test('kill -9 mid copy job: another daemon leaves it alone; the next server of the source takes it over',
  { skip }, async (t: Test) => {
    const fixture = await sharedVg(t, { pvBytes: 256 * MiB, lvs: [{ name: 'src', lpCount: SIZE / (4 * MiB) },
      { name: 'other', lpCount: 1 }] })
    const devices = ['--devices', fixture.pvs.join(',')]
    const mntA = fixture.mountpoint('mnt-a')
    const mntB = fixture.mountpoint('mnt-b')
    // A copies slowly (150 ms more per partition, ~1.2 s in all) so the kill lands mid-job.
    fixture.ok(['mount', fixture.vg, mntA, '--lvs', 'src', ...devices], { LVMFS_TEST_REPLICATION_STEP_MS: '150' })
    fixture.ok(['mount', fixture.vg, mntB, '--lvs', 'other', ...devices])
    const original = randomBytes(SIZE)
    writeAt(join(mntA, 'src'), 0, original)

    const started = JSON.parse(fixture.ok(['replicate', `${fixture.vg}/src`, 'cp', '--type', 'copy', '--json',
      ...devices])) as { status: string, job: string }
    t.equal(started.status, 'LSM_ERR_JOB_STARTED', `the copy runs as job ${started.job} in A`)
    const later = randomBytes(MiB)
    writeAt(join(mntA, 'src'), SIZE - 3 * MiB, later)
    const pidA = (await fixture.status(mntA)).pid
    process.kill(pidA, 'SIGKILL')
    cleanupMountpoint(mntA, { force: true })

    const job = (): { state: string, percent: number } =>
      JSON.parse(fixture.ok(['job', started.job, '--json', ...devices])) as { state: string, percent: number }
    const before = job()
    t.equal(before.state, 'INPROGRESS', `the kill landed mid-job (${before.percent}% on disk)`)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.same(job(), before, 'B, serving another LV, did not resume the job')
    const wait = fixture.cli(['job', started.job, '--wait', ...devices])
    t.equal(wait.code, 5, 'job --wait sent to B is refused')
    t.match(wait.stderr, /LSM_ERR_REPLICA_BUSY.*not served read-write by this process/, wait.stderr.trim())

    const mntC = fixture.mountpoint('mnt-c')
    fixture.ok(['mount', fixture.vg, mntC, '--lvs', 'src', ...devices])
    const takeover = await fixture.status(mntC)
    t.same(takeover.shared?.lvs.map((lv) => [lv.name, lv.mode]), [['src', 'EX'], ['cp', 'EX']],
      'the new server of src holds the copy\'s lock too')
    t.equal(takeover.shared?.replicaRecoveries, 1, 'it found the dead holder\'s value block not valid and recovered')
    t.same(takeover.shared?.replicaProblems, [], 'the copy\'s superblock passed its checks')
    t.ok(await eventually(async () => copyStatus(await fixture.status(mntC))?.state === 'complete', 600),
      'the job resumed in C and completed')
    t.equal(job().state, 'COMPLETE', 'job status agrees')
    t.equal(sha256(readAt(join(mntC, 'cp'), 0, SIZE)), sha256(original), 'the copy is the source image at creation')
    t.equal(sha256(readAt(join(mntC, 'src'), SIZE - 3 * MiB, MiB)), sha256(later), 'the source kept its later write')

    // A clone made by C is linked to src: C's clean unmount writes its lock's value block.
    fixture.ok(['replicate', `${fixture.vg}/src`, 'cl', '--type', 'clone', ...devices])
    writeAt(join(mntC, 'src'), 0, later)
    fixture.ok(['umount', mntC])
    fixture.ok(['umount', mntB])
    const mntD = fixture.mountpoint('mnt-d')
    fixture.ok(['mount', fixture.vg, mntD, '--lvs', 'src,cp', ...devices])
    const clean = await fixture.status(mntD)
    t.same(clean.shared?.lvs.map((lv) => lv.name), ['src', 'cp', 'cl'], 'D serves src, the listed complete copy, the clone')
    t.equal(clean.shared?.replicaRecoveries, 0, 'after a clean unmount the value block is valid: nothing to recover')
    t.same(clean.shared?.replicaProblems, [], 'and the clone\'s superblock is as new as it says')
    const atClone = Buffer.from(original)
    later.copy(atClone, SIZE - 3 * MiB)
    t.equal(sha256(readAt(join(mntD, 'cl'), 0, SIZE)), sha256(atClone), 'the clone holds src as it was at the clone')
    t.equal(sha256(readAt(join(mntD, 'cp'), 0, SIZE)), sha256(original), 'the complete copy reads the same')
    fixture.ok(['umount', mntD])

    // Both superblock slots of the clone destroyed while nobody serves it: the next takeover says so.
    await damageSuperblock(fixture.vg, fixture.pvs, 'cl')
    const mntE = fixture.mountpoint('mnt-e')
    fixture.ok(['mount', fixture.vg, mntE, '--lvs', 'src', ...devices])
    const damaged = await fixture.status(mntE)
    t.match(damaged.shared?.replicaProblems, [/^cl: .*no valid superblock/],
      `the damaged superblock is reported, not trusted: ${JSON.stringify(damaged.shared)}`)
    fixture.ok(['umount', mntE])
  })

async function damageSuperblock(vgName: string, pvs: string[], lvName: string): Promise<void> {
  const { vg } = await varyOnVg({ vgName, devices: pvs })
  try {
    const meta = vg!.lvByName(lvName)!.lps[0]![0]!
    const garbage = Buffer.alloc(2 * superblockSlotBytes(vg!.ppSizeBytes), 0x5a)
    await vg!.device(meta.pvIndex)!.write(garbage, vg!.ppOffsetBytes(meta.pvIndex, meta.pp))
    await vg!.device(meta.pvIndex)!.sync()
  } finally {
    await vg!.varyOff()
  }
}

t.test('kill -9 under acknowledged writes to an async-mirrored source: the next server catches the target up',
  { skip }, async (t: Test) => {
    const fixture = await sharedVg(t, { pvBytes: 128 * MiB,
      lvs: [{ name: 'src', lpCount: 8 }, { name: 'other', lpCount: 1 }] })
    const devices = ['--devices', fixture.pvs.join(',')]
    const size = 32 * MiB
    const mntA = fixture.mountpoint('mnt-a')
    const mntB = fixture.mountpoint('mnt-b')
    fixture.ok(['mount', fixture.vg, mntA, '--lvs', 'src', ...devices])
    fixture.ok(['mount', fixture.vg, mntB, '--lvs', 'other', ...devices])
    fixture.ok(['replicate', `${fixture.vg}/src`, 'm', '--type', 'mirror-async', '--interval', '0.2', '--wait', ...devices])
    t.same(readdirSync(mntA).sort(), ['m', 'src'], 'A serves the source and its async target')

    // Acknowledged (fdatasync'd) 64 KiB writes until A is killed under them.
    const acked = new Map<number, Buffer>()
    const file = await open(join(mntA, 'src'), 'r+')
    let writing = true
    const writer = (async () => {
      while (writing) {
        const offset = Math.floor(Math.random() * (size / (64 << 10))) * (64 << 10)
        const data = randomBytes(64 << 10)
        try {
          await file.write(data, 0, data.length, offset)
          await file.datasync()
        } catch {
          return
        }
        acked.set(offset, data)
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    process.kill((await fixture.status(mntA)).pid, 'SIGKILL')
    writing = false
    await writer
    await file.close().catch(() => undefined)
    cleanupMountpoint(mntA, { force: true })
    t.ok(acked.size > 10, `${acked.size} distinct blocks acknowledged before the kill`)

    const mntC = fixture.mountpoint('mnt-c')
    fixture.ok(['mount', fixture.vg, mntC, '--lvs', 'src', ...devices])
    const takeover = await fixture.status(mntC)
    t.equal(takeover.shared?.replicaRecoveries, 1, 'C recovered the target\'s lock (collect, validate)')
    const source = readAt(join(mntC, 'src'), 0, size)
    const lost = [...acked].filter(([offset, data]) => !source.subarray(offset, offset + data.length).equals(data))
    t.equal(lost.length, 0, 'every acknowledged write is in the source')
    t.ok(await eventually(async () => {
      const lag = (await fixture.status(mntC)).replicas?.find((replica) => replica.lv === 'm')?.lag
      return lag !== undefined && lag.commits === 0 && lag.bytes === 0
    }, 300), 'C\'s propagator caught the target up (lag 0)')
    t.equal(sha256(readAt(join(mntC, 'm'), 0, size)), sha256(source), 'the target equals the source byte for byte')
    fixture.ok(['umount', mntC])
    fixture.ok(['umount', mntB])
  })
