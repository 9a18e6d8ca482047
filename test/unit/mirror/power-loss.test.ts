/**
 * Simulated power loss (reliability T1 (c)) on the real VolumeGroup: PVs are memory devices
 * behind FaultyDevice sharing one CrashController, which "crashes the machine" at write number
 * K (that write dropped, torn or completed, nothing after it reaches any device). K sweeps the
 * writes of a workload of mirrored writes and flushes, so crashes land on data writes, MWC
 * records and VGSA commits alike. After each crash the VG is varied on again from the surviving
 * bytes and checked: both copies identical in every region (MWC recovery), and every write
 * acknowledged by a completed flush reads back.
 */
import t, { type Test } from 'tap'
import { CrashController, type CrashMode } from '../../../src/io/index.js'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'
import { MirrorEngine } from '../../../src/mirror/index.js'
import type { VolumeGroup } from '../../../src/lvm/index.js'

const BLOCK = 4096

async function copyOf(vg: VolumeGroup, copyIndex: number): Promise<Buffer> {
  const lv = vg.lvByName('m')!
  const out = Buffer.alloc(lv.lps.length * vg.ppSizeBytes)
  for (let lp = 0; lp < lv.lps.length; lp++) {
    const copy = lv.lps[lp]![copyIndex]!
    await vg.device(copy.pvIndex)!.read(out.subarray(lp * vg.ppSizeBytes, (lp + 1) * vg.ppSizeBytes),
      vg.ppOffsetBytes(copy.pvIndex, copy.pp))
  }
  return out
}

function block(index: number, seq: number): Buffer {
  const out = Buffer.alloc(BLOCK, seq & 0xff)
  out.writeUInt32LE(index, 0)
  out.writeUInt32LE(seq, 4)
  return out
}

/** Runs the workload until the crash; returns block -> last seq acknowledged by a flush. */
async function workload(engine: MirrorEngine, seed: number): Promise<Map<number, number>> {
  const acked = new Map<number, number>()
  const lv = engine.open('m')
  const blocks = lv.sizeBytes / BLOCK
  let state = seed
  const random = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32
  const pending = new Map<number, number>()
  try {
    for (let seq = 1; seq <= 60; seq++) {
      const index = Math.floor(random() * blocks)
      await lv.write(block(index, seq), index * BLOCK)
      pending.set(index, seq)
      if (seq % 3 === 0) {
        await lv.flush()
        for (const [key, value] of pending) acked.set(key, value)
        pending.clear()
      }
    }
  } catch {
    // The machine crashed: everything after the crash point failed.
  }
  return acked
}

async function crashAt(t: Test, atWrite: number, mode: CrashMode): Promise<{ writes: number }> {
  const pool = new Pool(2)
  await makeVg(pool, 'vg0')
  const setup = (await varyOn(pool, 'vg0')).vg!
  await setup.lvCreate({ name: 'm', lpCount: 6, copies: 2, mwc: 'active' })
  await setup.varyOff()
  pool.crash = new CrashController(atWrite, mode)
  const first = await varyOn(pool, 'vg0')
  let acked = new Map<number, number>()
  if (first.vg !== undefined) {
    try {
      const engine = await MirrorEngine.start(first.vg, { mwcCacheLtgs: 4 })
      acked = await workload(engine, atWrite)
    } catch {
      // Crashed during vary-on recovery itself.
    }
  }
  const writes = pool.crash.writes
  pool.crash = undefined
  const again = await varyOn(pool, 'vg0')
  t.equal(again.rc, 'LVM_SUCCESS', `K=${atWrite} ${mode}: vary-on after the power loss`)
  const vg = again.vg!
  await MirrorEngine.start(vg)
  const copy0 = await copyOf(vg, 0)
  const copy1 = await copyOf(vg, 1)
  const lv = vg.lvByName('m')!
  const stale = lv.lps.some((copies) => copies.some((copy) => vg.isStale(copy.pvIndex, copy.pp)))
  if (!stale) t.ok(copy0.equals(copy1), `K=${atWrite} ${mode}: copies identical`)
  let lost = 0
  for (const [index, seq] of acked) {
    const copies = lv.lps[Math.floor(index * BLOCK / vg.ppSizeBytes)]!
    const fresh = copies.findIndex((copy) => !vg.isStale(copy.pvIndex, copy.pp))
    const source = fresh === 0 ? copy0 : copy1
    if (source.readUInt32LE(index * BLOCK + 4) < seq) lost += 1
  }
  t.equal(lost, 0, `K=${atWrite} ${mode}: no acknowledged write lost (${acked.size} acked)`)
  await vg.varyOff()
  return { writes }
}

void t.test('power loss at every Kth write of a mirrored workload', async (t) => {
  const modes: CrashMode[] = ['dropped', 'torn', 'complete']
  const total = (await crashAt(t, Number.MAX_SAFE_INTEGER, 'dropped')).writes
  t.ok(total > 100, `the workload issues ${total} device writes`)
  let run = 0
  for (let atWrite = 1; atWrite <= total; atWrite += Math.max(1, Math.floor(total / 40))) {
    await crashAt(t, atWrite, modes[run++ % modes.length]!)
  }
})
