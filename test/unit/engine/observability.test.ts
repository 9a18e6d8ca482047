/**
 * Metrics, events and status --watch of a daemon run in this process (runDaemon) on PV files:
 * known I/O from child processes (this process is the daemon: its own threads must not touch
 * the mount), then a scrape parsed line by line, and the event stream of a PV going missing,
 * coming back and its mirror resynced.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runInContext } from '../../../src/cli/io-context.js'
import { runCli } from '../../../src/cli/program.js'
import { forwardedCommandHandlers } from '../../../src/cli/forward.js'
import { callControl } from '../../../src/engine/control-protocol.js'
import { runDaemon } from '../../../src/engine/daemon.js'
import type { MountedVg } from '../../../src/engine/mounted-vg.js'
import { socketPath } from '../../../src/engine/runtime-paths.js'
import { pvCreate, varyOnVg, vgCreate } from '../../../src/lvm/index.js'
import { captureCli } from '../../helpers/mirror-cli-fixture.js'
import { ddWrite, run, until } from '../../helpers/in-process-mount.js'
import { fuseAvailable, makeMountpoint, repoRoot } from '../../helpers/mount-child.js'

const MiB = 1024 * 1024
const VG = 'obsvg'

interface Daemon {
  readonly mounted: MountedVg
  readonly mountpoint: string
  readonly dir: string
  readonly pvs: string[]
  readonly metricsUrl: string
  /** Unmounts; resolves with runDaemon's exit code. */
  stop(): Promise<number>
}

/** VG obsvg on two PV files: lin (1 copy) and mir (2 copies, MWC off), 4 LPs of 1 MiB each, mounted. */
async function startDaemon(t: Test): Promise<Daemon> {
  const dir = t.testdir()
  // A socket path has at most 107 bytes: tap's fixture directory is too deep for one.
  const runDir = mkdtempSync(join(tmpdir(), 'lvmfs-obs-'))
  t.teardown(() => rmSync(runDir, { recursive: true, force: true }))
  process.env['LVMFS_RUN_DIR'] = runDir
  process.env['LVMFS_LOG_DIR'] = join(dir, 'log')
  process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
  const pvs = [join(dir, 'a.img'), join(dir, 'b.img')]
  for (const path of pvs) {
    writeFileSync(path, '')
    truncateSync(path, 16 * MiB)
    await pvCreate(path)
  }
  await vgCreate({ name: VG, paths: pvs, ppSizeBytes: MiB })
  const vg = (await varyOnVg({ vgName: VG, devices: pvs, flags: {} })).vg!
  await vg.lvCreate({ name: 'lin', lpCount: 4, copies: 1 })
  // MWC off: with MWC active, a write while a PV is marked missing fails in the activity log
  // (its soft limit reads the missing PV's MWC area), which is the mirror layer's to fix.
  await vg.lvCreate({ name: 'mir', lpCount: 4, copies: 2, mwc: 'off' })
  await vg.varyOff()
  const mountpoint = makeMountpoint(t)
  let mounted: MountedVg | undefined
  let ready: () => void = () => {}
  const isReady = new Promise<void>((resolve) => { ready = resolve })
  const exit = runDaemon({ vgName: VG, mountpoint, devices: pvs, flags: { autoResync: false }, threads: 4,
    metrics: '127.0.0.1:0', handlers: (m) => { mounted = m; return forwardedCommandHandlers(m) },
    onReady: () => ready() })
  let stopped = false
  const stop = async (): Promise<number> => {
    if (!stopped) {
      stopped = true
      await callControl(socketPath(VG), 'umount', { force: true }).catch(() => undefined)
    }
    return await exit
  }
  // Before the first await that can fail; teardowns run in order, so the daemon stops before
  // makeMountpoint's teardown detaches what may be left.
  t.teardown(() => stop().catch(() => 5))
  await Promise.race([isReady, exit.then(() => { throw new Error('the daemon exited before it was ready') })])
  const started = readFileSync(join(dir, 'log', `${VG}.log`), 'utf8').split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as { metrics?: { port: number } }).find((line) => line.metrics !== undefined)
  return { mounted: mounted!, mountpoint, dir, pvs, metricsUrl: `http://127.0.0.1:${started!.metrics!.port}/metrics`,
    stop }
}

/** `name{labels} value` lines of a scrape, by name and sorted label text. */
function parseScrape(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels = (match[2] ?? '').split(',').filter(Boolean).sort().join(',')
    samples.set(`${match[1]}{${labels}}`, Number(match[3]))
  }
  return samples
}

async function ok(command: { done: Promise<{ code: number | null; stderr: string }> }): Promise<void> {
  const result = await command.done
  if (result.code !== 0) throw new Error(`child failed: ${result.stderr}`)
}

t.test('a scrape counts the I/O of each LV, its latency and the PV states', { skip: fuseAvailable() },
  async (t) => {
    const daemon = await startDaemon(t)
    const lin = join(daemon.mountpoint, 'lin')
    await ok(ddWrite(daemon.dir, lin, 0, 0xab, 8))
    await ok(run('dd', [`if=${lin}`, 'of=/dev/null', 'bs=4096', 'count=4', 'iflag=direct', 'status=none']))
    const response = await fetch(daemon.metricsUrl)
    t.equal(response.status, 200)
    t.match(response.headers.get('content-type'), /^text\/plain/)
    const text = await response.text()
    const samples = parseScrape(text)
    const lv = (name: string, lvName = 'lin'): number | undefined => samples.get(`${name}{lv="${lvName}",vg="${VG}"}`)
    t.equal(lv('lvmfs_lv_writes_total'), 8)
    t.equal(lv('lvmfs_lv_write_bytes_total'), 8 * 4096)
    t.equal(lv('lvmfs_lv_reads_total'), 4)
    t.equal(lv('lvmfs_lv_read_bytes_total'), 4 * 4096)
    t.equal(lv('lvmfs_lv_writes_total', 'mir'), 0)
    t.equal(samples.get(`lvmfs_lv_io_errors_total{lv="lin",op="write",vg="${VG}"}`), 0)
    t.equal(lv('lvmfs_lv_stale_partitions', 'mir'), 0)
    // The histogram: cumulative buckets ending in +Inf, which with _count is every write.
    const write = `lv="lin",op="write",vg="${VG}"`
    t.equal(samples.get(`lvmfs_lv_io_latency_seconds_bucket{le="+Inf",${write}}`), 8)
    t.equal(samples.get(`lvmfs_lv_io_latency_seconds_count{${write}}`), 8)
    t.ok((samples.get(`lvmfs_lv_io_latency_seconds_sum{${write}}`) ?? 0) > 0, 'latency sum')
    const buckets = [...samples].filter(([key]) => key.startsWith('lvmfs_lv_io_latency_seconds_bucket{') &&
      key.endsWith(`,${write}}`)).map(([key, value]) => ({ le: Number(/le="([^"]+)"/.exec(key)![1]), value }))
      .sort((a, b) => a.le - b.le)
    t.equal(buckets[0]!.le, 1e-6, 'the first bucket: under 1 µs')
    t.ok(buckets.every((bucket, i) => i === 0 || bucket.value >= buckets[i - 1]!.value), 'cumulative')
    t.match(text, /# TYPE lvmfs_lv_io_latency_seconds histogram/)
    for (const pv of daemon.pvs) {
      t.equal(samples.get(`lvmfs_pv_state{pv="${pv}",state="active",vg="${VG}"}`), 1)
      t.equal(samples.get(`lvmfs_pv_state{pv="${pv}",state="missing",vg="${VG}"}`), 0)
      t.equal(samples.get(`lvmfs_pv_io_errors_total{pv="${pv}",vg="${VG}"}`), 0)
    }
    t.equal(samples.get(`lvmfs_vg_online{vg="${VG}"}`), 1)
    t.equal((await fetch(daemon.metricsUrl.replace('/metrics', '/'))).status, 404)
    t.equal(await daemon.stop(), 0)
  })

t.test('events: a PV missing, back, its mirror resynced, then the daemon exits; status --watch', {
  skip: fuseAvailable() }, async (t) => {
  const daemon = await startDaemon(t)
  const { vg } = daemon.mounted
  let output = ''
  const lines = (): Array<Record<string, unknown>> => output.split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
  const events = runInContext({ stdout: { write: (chunk: string) => { output += chunk; return true } },
    stderr: { write: () => true } }, () => runCli(['events', VG]))
  await until('the stream is live', () => lines().length > 0)
  const idle = await captureCli(['status', VG, '--watch', '--until-idle'])
  t.same([idle.code, idle.stdout], [0, 'idle\n'], 'status --watch --until-idle with nothing running')

  await vg.setPvState(1, 'missing')
  // A write to the mirror while its second copy is absent marks that copy stale.
  await ok(ddWrite(daemon.dir, join(daemon.mountpoint, 'mir'), 0, 0xcd, 1))
  await vg.setPvState(1, 'active')
  const resync = await callControl(socketPath(VG), 'cli', { argv: ['resync', `${VG}/mir`], isTTY: false,
    columns: 80 }) as { exitCode: number }
  t.equal(resync.exitCode, 0)
  // Ctrl-C ends a `lvmfs events` process cleanly (a child: this process's SIGINT stops the daemon).
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'events', VG],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await new Promise((resolve) => child.stdout.once('data', resolve))
  child.kill('SIGINT')
  t.equal(await exited, 0, 'lvmfs events exits 0 on SIGINT')
  t.equal(await daemon.stop(), 0)
  t.equal(await events, 0, 'lvmfs events ends with the daemon, exit 0')

  const received = lines()
  t.same(received.map((line) => line['seq']), received.map((_line, i) => i + 1), 'numbered in order')
  t.ok(received.every((line) => line['vg'] === VG && typeof line['time'] === 'string'))
  const brief = received.map((line) => {
    const { seq: _seq, time: _time, vg: _vg, ...rest } = line
    return rest
  })
  t.match(brief[0], { type: 'watching', pvs: [{ pvIndex: 0, state: 'active' }, { pvIndex: 1, state: 'active' }],
    lvs: [{ lv: 'lin', stalePartitions: 0 }, { lv: 'mir', stalePartitions: 0 }], resyncs: 0 })
  t.same(brief.slice(1).map((line) => [line['type'], line['lv'] ?? line['pvIndex'], line['stalePartitions']]), [
    ['pv-missing', 1, undefined],
    ['stale-partitions', 'mir', 4],
    ['pv-returned', 1, undefined],
    ['stale-partitions', 'mir', 1],
    ['resync-started', undefined, undefined],
    ['stale-partitions', 'mir', 0],
    ['resync-done', undefined, undefined],
  ])
  t.match(brief.find((line) => line['type'] === 'resync-done'), { what: `resync ${VG}/mir`, totalBytes: Number })
})

t.test('mount --metrics refuses an address that is not HOST:PORT before anything else', async (t) => {
  const result = await captureCli(['mount', 'novg', '/nonexistent', '--metrics', 'localhost'])
  t.equal(result.code, 3)
  t.match(result.stderr, /invalid --metrics "localhost"/)
})
