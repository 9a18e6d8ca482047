/**
 * T3 write-path crash table: a descriptor commit (lvCreate) and a status commit (markStale)
 * crash after each individual copy write k = 1..w, with that write dropped, torn (first sector
 * only) or complete, and nothing after it reaching any device. Every crash state must vary on
 * (all PVs present, so never LVM_NOQUORUM) to exactly the old or the new state, and a second
 * vary-on must agree with the first.
 */
import t from 'tap'
import { CrashController, type CrashMode } from '../../../src/io/index.js'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'

const MODES: CrashMode[] = ['dropped', 'torn', 'complete']

async function prepared(pvCount: number) {
  const pool = new Pool(pvCount)
  await makeVg(pool, 'vg')
  const vg = (await varyOn(pool, 'vg')).vg!
  await vg.lvCreate({ name: 'base', lpCount: 2 })
  await vg.varyOff()
  return { pool, clean: pool.snapshot() }
}

async function crashRun(pvCount: number, mutate: 'descriptor' | 'status', k: number, mode: CrashMode) {
  const { pool, clean } = fixtures.get(pvCount)!
  pool.restore(clean)
  const crash = new CrashController()
  pool.crash = crash
  const opened = await varyOn(pool, 'vg')
  const vg = opened.vg!
  const before = { lvs: vg.descriptor.lvs.map((lv) => lv.name).join(','), stale: vg.isStale(0, 0) }
  crash.writes = 0
  crash.atWrite = k
  crash.mode = mode
  let committed = false
  try {
    if (mutate === 'descriptor') await vg.lvCreate({ name: 'new', lpCount: 1 })
    else await vg.markStale([{ pvIndex: 0, pp: 0 }])
    committed = true
  } catch { /* the crash */ }
  const writesInCommit = crash.writes
  await vg.varyOff()
  pool.crash = undefined
  const after = await varyOn(pool, 'vg')
  const state = after.vg === undefined ? undefined
    : { lvs: after.vg.descriptor.lvs.map((lv) => lv.name).join(','), stale: after.vg.isStale(0, 0) }
  await after.vg?.varyOff()
  const again = await varyOn(pool, 'vg')
  const stateAgain = again.vg === undefined ? undefined
    : { lvs: again.vg.descriptor.lvs.map((lv) => lv.name).join(','), stale: again.vg.isStale(0, 0) }
  await again.vg?.varyOff()
  return { before, state, stateAgain, rc: after.rc, committed, writesInCommit }
}

const fixtures = new Map<number, Awaited<ReturnType<typeof prepared>>>()

for (const pvCount of [1, 2, 3, 5]) {
  for (const mutate of ['descriptor', 'status'] as const) {
    void t.test(`${mutate} commit on ${pvCount} PV(s): a crash after any copy write opens to old or new`, async (t) => {
      if (!fixtures.has(pvCount)) fixtures.set(pvCount, await prepared(pvCount))
      const copies = pvCount === 1 ? 2 : pvCount === 2 ? 3 : pvCount
      let cases = 0
      for (let k = 1; k <= copies; k++) {
        for (const mode of MODES) {
          const r = await crashRun(pvCount, mutate, k, mode)
          const label = `k=${k} ${mode}`
          t.ok(r.rc === 'LVM_SUCCESS', `${label}: vary-on after the crash gives ${r.rc}`)
          const oldState = r.before
          const newState = mutate === 'descriptor' ? { lvs: `${oldState.lvs},new`, stale: oldState.stale }
            : { lvs: oldState.lvs, stale: true }
          const isOld = JSON.stringify(r.state) === JSON.stringify(oldState)
          const isNew = JSON.stringify(r.state) === JSON.stringify(newState)
          t.ok(isOld || isNew, `${label}: ${JSON.stringify(r.state)} is old or new`)
          t.same(r.stateAgain, r.state, `${label}: stable across vary-ons`)
          t.notOk(r.committed, `${label}: the crashed commit is not acknowledged`)
          if (k === 1 && mode === 'dropped') t.ok(isOld, `${label}: nothing landed, old state`)
          cases++
        }
      }
      t.equal(cases, copies * 3)
    })
  }
}

/**
 * Placement changes (vgextend from 1→2 and 2→3 PVs moves descriptor copies; vgreduce back):
 * crash after every write of the whole operation (labels, descriptor copies, status copies).
 * The VG must open with quorum to exactly the old or the new PV set. A crash between the label
 * write and the descriptor commit leaves a device whose label names the VG but which the VG
 * does not list: reported as LVM_INVPVID (rc LVM_CHKVVGOUT), never adopted.
 */
for (const pvCount of [1, 2, 3]) {
  for (const op of ['vgextend', 'vgreduce'] as const) {
    void t.test(`${op} on ${pvCount} PV(s): a crash after any write opens to the old or the new PV set`, async (t) => {
      const pool = new Pool(pvCount)
      pool.add('/dev/extra')
      await makeVg(pool, 'vg', pool.paths.filter((p) => p !== '/dev/extra'))
      if (op === 'vgreduce') {
        const vg = (await varyOn(pool, 'vg')).vg!
        await vg.vgExtend(['/dev/extra'])
        await vg.varyOff()
      }
      const clean = pool.snapshot()
      const oldCount = op === 'vgextend' ? pvCount : pvCount + 1
      const newCount = op === 'vgextend' ? pvCount + 1 : pvCount
      let completed = false
      for (let k = 1; k <= 40 && !completed; k++) {
        for (const mode of MODES) {
          pool.restore(clean)
          const crash = new CrashController()
          pool.crash = crash
          const vg = (await varyOn(pool, 'vg')).vg!
          crash.writes = 0
          crash.atWrite = k
          crash.mode = mode
          try {
            if (op === 'vgextend') await vg.vgExtend(['/dev/extra'])
            else await vg.vgReduce(vg.descriptor.pvs.findIndex((p) => p.lastPath === '/dev/extra'))
            completed = true
          } catch { /* the crash */ }
          await vg.varyOff()
          pool.crash = undefined
          const after = await varyOn(pool, 'vg')
          const count = after.vg?.descriptor.pvs.length
          t.ok(after.rc === 'LVM_SUCCESS' || after.rc === 'LVM_CHKVVGOUT', `k=${k} ${mode}: ${after.rc}`)
          t.ok(count === oldCount || count === newCount, `k=${k} ${mode}: ${count} PVs`)
          t.ok(after.vvgOut.every((o) => o.status === 'LVM_PVACTIVE' || o.status === 'LVM_INVPVID'),
            `k=${k} ${mode}: ${after.vvgOut.map((o) => o.status).join(',')}`)
          await after.vg?.varyOff()
        }
      }
      t.ok(completed, 'the operation completes when the crash point is past its last write')
    })
  }
}
