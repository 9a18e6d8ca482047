/**
 * `npm run bench:dlm [-- --json] [--duration-ms N] [--workers N] [--deaths N]`
 *
 * Measures, through a real `lockd` broker process on a temporary socket:
 *  - uncontended lock+unlock pairs per second, one request in flight (serial) and with N workers
 *    pipelining on one connection, with p50/p99 pair latency;
 *  - the time from a holder's SIGKILL to the grant of the EX it blocked (death-to-grant).
 * Targets (issue 6): >= 20,000 pairs/s through the broker; death-to-grant < 1 s.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerPid } from '../src/dlm/broker-files.js'
import { DlmClient } from '../src/dlm/client.js'

const argv = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const index = argv.indexOf(name)
  return index >= 0 ? Number(argv[index + 1]) : fallback
}
const json = argv.includes('--json')
const durationMs = flag('--duration-ms', 3000)
const workers = flag('--workers', 64)
const deaths = flag('--deaths', 5)

const root = new URL('../', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'lvmfs-bench-dlm-'))
const socketPath = join(dir, 'lockd.sock')
const brokerCommand = { command: process.execPath, args: ['--import', 'tsx', join(root, 'test/helpers/dlm-lockd.ts')] }

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN
}

async function pairs(client: DlmClient, concurrency: number): Promise<{ pairsPerSecond: number, p50Us: number,
  p99Us: number, pairs: number }> {
  const latenciesUs: number[] = []
  const started = performance.now()
  const end = started + durationMs
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    const resource = `bench:${concurrency}:${worker}`
    while (performance.now() < end) {
      const t0 = performance.now()
      const lock = await client.lock(resource, 'EX')
      await lock.unlock()
      latenciesUs.push((performance.now() - t0) * 1000)
    }
  }))
  const elapsedS = (performance.now() - started) / 1000
  latenciesUs.sort((a, b) => a - b)
  return { pairsPerSecond: Math.round(latenciesUs.length / elapsedS), p50Us: Math.round(percentile(latenciesUs, 0.5)),
    p99Us: Math.round(percentile(latenciesUs, 0.99)), pairs: latenciesUs.length }
}

async function deathToGrant(survivor: DlmClient): Promise<number[]> {
  const times: number[] = []
  const env = { ...process.env, LVMFS_LOCKD_SOCKET: socketPath }
  const rd = await survivor.attach('rd:vg1')
  for (let round = 0; round < deaths; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/dlm-child.ts'),
      'hold-ex', 'VG:bench', '01'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('held')) resolve()
      })
      child.once('exit', () => reject(new Error('holder exited early')))
    })
    const waiting = survivor.lock('VG:bench', 'EX', { rd })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const t0 = performance.now()
    child.kill('SIGKILL')
    const lock = await waiting
    times.push(performance.now() - t0)
    const collection = await survivor.collect(rd)
    await survivor.validate(rd, collection.handle)
    await lock.unlock()
  }
  return times
}

const client = await DlmClient.connect({ socketPath, brokerCommand, label: 'bench' })
try {
  const serial = await pairs(client, 1)
  const pipelined = await pairs(client, workers)
  const second = await DlmClient.connect({ socketPath, brokerCommand, label: 'bench-2' })
  const twoStart = performance.now()
  const [first, other] = await Promise.all([pairs(client, workers / 2), pairs(second, workers / 2)])
  const twoClients = { pairsPerSecond: first.pairsPerSecond + other.pairsPerSecond,
    p50Us: Math.max(first.p50Us, other.p50Us), p99Us: Math.max(first.p99Us, other.p99Us),
    elapsedMs: Math.round(performance.now() - twoStart) }
  await second.close()
  const deathMs = (await deathToGrant(client)).sort((a, b) => a - b)
  const result = {
    durationMs, workers, serial, pipelined, twoClients,
    deathToGrantMs: { median: Math.round(percentile(deathMs, 0.5)), max: Math.round(deathMs.at(-1) ?? 0),
      samples: deathMs.map((ms) => Math.round(ms)) },
    targets: { pairsPerSecond: 20_000, deathToGrantMs: 1000 },
  }
  if (json) process.stdout.write(JSON.stringify(result) + '\n')
  else {
    const line = (name: string, r: { pairsPerSecond: number, p99Us: number, p50Us?: number }): string =>
      `${name.padEnd(34)} ${String(r.pairsPerSecond).padStart(8)} pairs/s` +
      `   p50 ${r.p50Us ?? '-'} us   p99 ${r.p99Us} us`
    process.stdout.write([
      'lock+unlock through the lockd broker (uncontended, one resource per worker)',
      line('serial (1 in flight)', serial),
      line(`pipelined (${workers} workers, 1 connection)`, pipelined),
      line(`2 connections x ${workers / 2} workers`, twoClients),
      `death-to-grant (SIGKILL of EX holder): median ${result.deathToGrantMs.median} ms, ` +
        `max ${result.deathToGrantMs.max} ms over ${deaths}`,
      '',
    ].join('\n'))
  }
} finally {
  await client.close()
  const pid = brokerPid(socketPath)
  if (pid !== null) process.kill(pid, 'SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  rmSync(dir, { recursive: true, force: true })
}
