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
