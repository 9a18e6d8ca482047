/**
 * kill -9 tests (reliability T10, process level). A child process works on VGs on PV files and
 * the parent SIGKILLs it at a random point, then reopens the files in process and checks:
 *  - copy: progress is monotone across kills, the job resumes from its checkpoint, and it
 *    never reports complete with bytes differing from the source;
 *  - synchronous mirror: the target holds every acknowledged write (stamped blocks);
 *  - asynchronous mirror: killed during propagation, the mark never decreases and the next
 *    cycle resumes from it with no gap (target equals source);
 *  - clone: killed amid copy-on-writes, origin and clones equal the model of acknowledged
 *    writes (the one write in flight may be either old or new, byte by byte).
 * The seed is printed; REPL_CRASH_SEED=<n> replays the write sequences.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createVg, openRepl, prng, PP } from '../../helpers/replication-fixture.js'
import { BLOCK_BYTES, readStamp } from '../../helpers/replication-child.js'
import { runAndKill as runAndKillChild } from '../../helpers/kill-child.js'

const CHILD = fileURLToPath(new URL('../../helpers/replication-child.ts', import.meta.url))
const seed = Number(process.env['REPL_CRASH_SEED'] ?? Date.now() % 100000)
const random = prng(seed)

/** Runs the writer child until a line satisfies `killAfter`, then SIGKILLs it (helpers/kill-child). */
async function runAndKill(args: string[], killAfter: (line: string) => boolean,
  delayMsMax = 20): Promise<string[]> {
  return await runAndKillChild({ script: CHILD, args, killAfter, random, delayMsMax })
}

t.comment(`seed=${seed} (replay: REPL_CRASH_SEED=${seed})`)

t.test('copy: killed at random points, resumes; progress monotone; complete means equal bytes', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 16 * 1024 * 1024)
  let fx = await openRepl(dir, ['vg0'])
  const lps = 40
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: lps })
  const image = Buffer.alloc(lps * PP)
  for (let lp = 0; lp < lps; lp++) image.fill(lp + 1, lp * PP, lp * PP + 1000 + lp)
  await fx.repl.write('vg0', 's', image, 0)
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'copy', type: 'copy' })
  if (result.status !== 'LSM_ERR_JOB_STARTED') return t.fail('job expected')
  await fx.close()
  let previous = 0
  let kills = 0
  for (let run = 0; run < 12; run++) {
    const killAt = 3 + Math.floor(random() * 8)
    let seen = 0
    const lines = await runAndKill(['copy', dir, result.jobId], (line) => line.startsWith('copied') && ++seen >= killAt)
    if (lines.includes('done')) break
    kills++
    fx = await openRepl(dir, ['vg0'])
    const status = await fx.repl.job(result.jobId)
    t.ok(status.percent >= previous, `run ${run}: progress ${status.percent}% >= ${previous}%`)
    previous = status.percent
    if (status.state === 'COMPLETE') {
      await fx.close()
      break
    }
    t.throws(() => fx.repl.assertOpenable('vg0', 'copy', false), { code: 'LSM_ERR_REPLICA_BUSY' }, 'unfinished copy refuses opens')
    await fx.close()
  }
  t.ok(kills > 0, `${kills} kill(s) during the copy`)
  fx = await openRepl(dir, ['vg0'])
  const final = await fx.repl.waitJob(result.jobId)
  t.equal(final.state, 'COMPLETE')
  const back = Buffer.alloc(lps * PP)
  await fx.repl.read('vg0', 'copy', back, 0)
  t.ok(back.equals(image), 'the complete copy equals the source bit for bit')
  await fx.close()
})

t.test('sync mirror: killed while writing, the target holds every acknowledged write', async (t) => {
  for (let run = 0; run < 3; run++) {
    const dir = join(t.testdir(), `run${run}`)
    const { mkdirSync } = await import('node:fs')
    mkdirSync(dir, { recursive: true })
    await createVg(dir, 'vg0')
    const fx = await openRepl(dir, ['vg0'])
    await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 4 })
    const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-sync' })
    if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
    await fx.close()
    const journal = join(dir, 'acks')
    let seen = 0
    const killAt = 1 + Math.floor(random() * 3)
    await runAndKill(['sync', dir, journal, String(seed + run)], (line) => line === 'writing' && ++seen >= killAt, 400)
    const acked = new Map<number, number>()
    for (const line of readFileSync(journal, 'utf8').split('\n').filter(Boolean)) {
      const [block, seq] = line.split(' ').map(Number)
      acked.set(block!, Math.max(acked.get(block!) ?? 0, seq!))
    }
    const check = await openRepl(dir, ['vg0'])
    const target = Buffer.alloc(4 * PP)
    await check.repl.read('vg0', 'm', target, 0)
    let lost = 0
    for (const [block, seq] of acked) {
      const stamp = readStamp(target.subarray(block * BLOCK_BYTES, (block + 1) * BLOCK_BYTES))
      if (stamp === undefined || stamp === null || stamp.index !== block || stamp.seq < seq) lost++
    }
    t.ok(acked.size > 0, `run ${run}: ${acked.size} blocks acknowledged before the kill`)
    t.equal(lost, 0, `run ${run}: no acknowledged write missing on the target`)
    await check.close()
  }
})

t.test('async mirror: killed during propagation, the mark never decreases and resumes with no gap', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  let fx = await openRepl(dir, ['vg0'])
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 8 })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  for (let write = 0; write < 40; write++) {
    await fx.repl.write('vg0', 's', Buffer.alloc(3000, write + 1), Math.floor(random() * (8 * PP - 3000)))
  }
  let mark = (await fx.repl.lag('vg0', 'm')).lwm
  await fx.close()
  for (let run = 0; run < 3; run++) {
    let seen = 0
    // Some runs end before the kill (8 chunks to copy): their mark rises.
    const killAt = 1 + Math.floor(random() * 11)
    await runAndKill(['async', dir], (line) => line === 'chunk' && ++seen >= killAt, 5)
    fx = await openRepl(dir, ['vg0'])
    const now = (await fx.repl.lag('vg0', 'm')).lwm
    t.ok(now >= mark, `run ${run}: mark ${now} >= ${mark}`)
    mark = now
    await fx.repl.write('vg0', 's', Buffer.alloc(5000, 0x80 + run), run * PP + 17)
    await fx.close()
  }
  fx = await openRepl(dir, ['vg0'])
  await fx.repl.propagate('vg0', 'm')
  const source = Buffer.alloc(8 * PP)
  const target = Buffer.alloc(8 * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg0', 'm', target, 0)
  t.ok(target.equals(source), 'after the resumed cycle the target equals the source (no gap)')
  const lag = await fx.repl.lag('vg0', 'm')
  t.equal(lag.commits, 0, 'lag 0')
  await fx.close()
})

t.test('clone: killed amid copy-on-writes, origin and clones equal the model', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 16 * 1024 * 1024)
  const fx = await openRepl(dir, ['vg0'])
  // Many chunks, so copy-on-writes continue through the first hundred writes and the kill
  // lands among them.
  const lps = 60
  await fx.vgs.get('vg0')!.lvCreate({ name: 'o', lpCount: lps })
  const base = Buffer.alloc(lps * PP)
  for (let lp = 0; lp < lps; lp++) base.fill(0x10 + lp, lp * PP, (lp + 1) * PP)
  await fx.repl.write('vg0', 'o', base, 0)
  await fx.repl.replicate({ vg: 'vg0', lv: 'o', name: 'c1', type: 'clone' })
  await fx.repl.replicate({ vg: 'vg0', lv: 'o', name: 'c2', type: 'clone' })
  await fx.close()
  const journal = join(dir, 'clone-journal')
  let seen = 0
  const killAt = 1 + Math.floor(random() * 3)
  await runAndKill(['clone', dir, journal, String(seed)], (line) => line === 'writing' && ++seen >= killAt, 100)
  const model = new Map(['o', 'c1', 'c2'].map((name) => [name, Buffer.from(base)]))
  let pending: { name: string, offset: number, length: number, byte: number } | undefined
  let acked = 0
  for (const line of readFileSync(journal, 'utf8').split('\n').filter(Boolean)) {
    if (line === 'A') {
      model.get(pending!.name)!.fill(pending!.byte, pending!.offset, pending!.offset + pending!.length)
      pending = undefined
      acked++
      continue
    }
    const [, name, offset, length, byte] = line.split(' ')
    pending = { name: name!, offset: Number(offset), length: Number(length), byte: Number(byte) }
  }
  const check = await openRepl(dir, ['vg0'])
  for (const [name, expected] of model) {
    const back = Buffer.alloc(lps * PP)
    await check.repl.read('vg0', name, back, 0)
    let wrong = 0
    for (let at = 0; at < back.length; at++) {
      if (back[at] === expected[at]) continue
      const inFlight = pending !== undefined && pending.name === name && at >= pending.offset &&
        at < pending.offset + pending.length && back[at] === pending.byte
      if (!inFlight) wrong++
    }
    t.equal(wrong, 0, `${name}: equals the model of ${acked} acknowledged writes`)
  }
  t.ok(acked > 0, `${acked} writes acknowledged before the kill`)
  const owned = check.vgs.get('vg0')!.lvByName('c1')!.lps.length + check.vgs.get('vg0')!.lvByName('c2')!.lps.length - 2
  t.ok(owned < 2 * lps, `the kill came while chunks were still shared (${owned} of ${2 * lps} owned)`)
  await check.close()
})
