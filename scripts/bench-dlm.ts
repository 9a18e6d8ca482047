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
import { EtcdDlmClient } from '../src/dlm/etcd-client.js'
import { startEtcd } from '../test/helpers/etcd.js'

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

interface Locker {
  lock(resource: string, mode: 'EX'): Promise<{ unlock(): Promise<void> }>
}

async function pairs(client: Locker, concurrency: number): Promise<{ pairsPerSecond: number, p50Us: number,
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

const ETCD_TTL_SECONDS = 2

/** The same measurements through etcd (when /usr/bin/etcd exists): pairs/s and lease-expiry death. */
async function etcdFigures(): Promise<Record<string, unknown> | null> {
  const teardowns: Array<() => unknown> = []
  try {
    const url = await startEtcd({ teardown: (fn) => teardowns.push(fn) })
    if (url === null) return null
    const client = await EtcdDlmClient.connect({ hosts: url, ttlSeconds: ETCD_TTL_SECONDS })
    teardowns.unshift(() => client.close())
    const serialEtcd = await pairs(client, 1)
    const pipelinedEtcd = await pairs(client, 16)
    const rd = await client.attach('rd:vg1')
    const samples: number[] = []
    for (let round = 0; round < 3; round++) {
      const holder = await EtcdDlmClient.connect({ hosts: url, ttlSeconds: ETCD_TTL_SECONDS })
      const holderRd = await holder.attach('rd:vg1')
      await holder.lock('VG:etcd', 'EX', { rd: holderRd })
      const waiting = client.lock('VG:etcd', 'EX', { rd })
      await new Promise((resolve) => setTimeout(resolve, 100))
      const t0 = performance.now()
      await holder.abandon()
      const lock = await waiting
      samples.push(performance.now() - t0)
      const collection = await client.collect(rd)
      await client.validate(rd, collection.handle)
      await lock.unlock()
    }
    samples.sort((a, b) => a - b)
    return { serial: serialEtcd, pipelined16: pipelinedEtcd, leaseTtlS: ETCD_TTL_SECONDS,
      deathToGrantMs: { median: Math.round(percentile(samples, 0.5)), max: Math.round(samples.at(-1) ?? 0),
        samples: samples.map((ms) => Math.round(ms)) } }
  } finally {
    for (const fn of teardowns) await fn()
  }
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
  const etcd = argv.includes('--no-etcd') ? null : await etcdFigures()
  const result = {
    durationMs, workers, serial, pipelined, twoClients, etcd,
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
      ...(etcd === null ? ['etcd: skipped (no /usr/bin/etcd or --no-etcd)'] : [
        'through etcd (one local member):',
        line('serial (1 in flight)', etcd['serial'] as { pairsPerSecond: number, p99Us: number }),
        line('pipelined (16 workers)', etcd['pipelined16'] as { pairsPerSecond: number, p99Us: number }),
        `death-to-grant (lease expiry, TTL ${ETCD_TTL_SECONDS} s): ` +
          `median ${(etcd['deathToGrantMs'] as { median: number }).median} ms, ` +
          `max ${(etcd['deathToGrantMs'] as { max: number }).max} ms over 3`,
      ]),
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
