/**
 * Child process for the replication crash tests; the parent kills it with SIGKILL.
 *
 *   copy  <dir> <jobId>            resumes/runs the copy job; prints "copied <doneLps>" per LP
 *   sync  <dir> <journal> <seed>   stamped 4 KiB block writes to vg0/s (sync mirror vg0/m);
 *                                  after each write resolves appends "<block> <seq>" to journal
 *   async <dir>                    propagation cycles of vg0/m; prints each step
 *   clone <dir> <journal> <seed>   random writes to vg0/o, vg0/c1, vg0/c2; journal lines
 *                                  "B <lv> <offset> <length> <byte>" before, "A" after each
 *
 * Every mode runs until killed (copy and async stop by themselves when done: "done").
 */
import { appendFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { openRepl, prng } from './replication-fixture.js'

import { BLOCK_BYTES, stampBlock } from './block-stamps.js'
export { BLOCK_BYTES, readStamp, stampBlock } from './block-stamps.js'

async function copy(dir: string, jobId: string): Promise<void> {
  const fx = await openRepl(dir, ['vg0'], { checkpointLps: 3, onStep: async (event) => {
    if (event.kind === 'copied') process.stdout.write(`copied ${event.doneLps}\n`)
    await sleep(2)
  } })
  await fx.repl.waitJob(jobId)
  process.stdout.write('done\n')
  await fx.close()
}

async function sync(dir: string, journal: string, seed: number): Promise<void> {
  const fx = await openRepl(dir, ['vg0'])
  const random = prng(seed)
  const blocks = fx.repl.volumeSizeBytes('vg0', 's') / BLOCK_BYTES
  const block = Buffer.alloc(BLOCK_BYTES)
  for (let seq = 1; ; seq++) {
    const index = Math.floor(random() * blocks)
    stampBlock(block, index, seq)
    await fx.repl.write('vg0', 's', block, index * BLOCK_BYTES)
    appendFileSync(journal, `${index} ${seq}\n`)
    if (seq % 20 === 1) process.stdout.write('writing\n')
  }
}

async function asyncPropagate(dir: string): Promise<void> {
  const fx = await openRepl(dir, ['vg0'], { onStep: async (event) => {
    process.stdout.write(`${event.kind}\n`)
    await sleep(3)
  } })
  await fx.repl.propagate('vg0', 'm')
  process.stdout.write('done\n')
  await fx.close()
}

async function clone(dir: string, journal: string, seed: number): Promise<void> {
  const fx = await openRepl(dir, ['vg0'])
  const random = prng(seed)
  const names = ['o', 'c1', 'c2']
  const size = fx.repl.volumeSizeBytes('vg0', 'o')
  for (let step = 0; ; step++) {
    const name = names[Math.floor(random() * names.length)]!
    const length = 1 + Math.floor(random() * 8192)
    const offset = Math.floor(random() * (size - length))
    const byte = 1 + Math.floor(random() * 254)
    appendFileSync(journal, `B ${name} ${offset} ${length} ${byte}\n`)
    await fx.repl.write('vg0', name, Buffer.alloc(length, byte), offset)
    appendFileSync(journal, 'A\n')
    if (step % 10 === 9) process.stdout.write('writing\n')
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
const [mode, dir, a, b] = process.argv.slice(2)
const run = !isMain ? Promise.resolve() : mode === 'copy' ? copy(dir!, a!) : mode === 'sync' ? sync(dir!, a!, Number(b)) :
  mode === 'async' ? asyncPropagate(dir!) : mode === 'clone' ? clone(dir!, a!, Number(b)) :
    Promise.reject(new Error(`unknown mode ${mode}`))
run.catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`)
  process.exit(1)
})
