/**
 * The mirror crash torture (issue 12), shared by scripts/torture-mirror.ts and
 * test/e2e/mirror-kill9.test.ts. Black box: it drives the real CLI and daemon (`lvmfs vgcreate`,
 * `lvcreate`, `mount --foreground`, and `scrub`/`status`/`umount` over the control socket the CLI
 * itself forwards them to) and reads the LV back through the mount; it knows nothing of the
 * engine's internals beyond the daemon's "background resync finished" log line.
 *
 * One VG on two sparse PV files holds one 2-copy LV with MWC active. Each point:
 *   1. mount (the daemon runs MWC recovery at vary-on) and wait for the automatic resync;
 *   2. check the model of the previous point: every sector holds the content of its last
 *      acknowledged write, or (only under a write unanswered at the kill) of that write; never a
 *      torn sector or an older write; then (every `scrubEvery` points) `scrub` reports 0
 *      mismatches between the copies;
 *   3. start a writer session (torture-writer.ts), kill -9 the daemon after a random delay, wait
 *      for the writer's answers (EIO/ENOTCONN), reap the daemon, detach the dead mount (umount -l
 *      after odd points; after even ones the next mount must detach it itself).
 * The VG and the LV's content carry over from point to point, and so does the model. After the
 * last point the VG is mounted once more, read whole against the model, scrubbed and unmounted
 * cleanly.
 *
 * Cost control: daemons start from a preloaded CLI process (cli-standby.ts) spawned while the
 * previous point runs, and one writer process serves every session, so a point costs no node
 * start on its critical path.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync,
  writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { callControl } from '../../src/engine/control-protocol.js'
import { SECTOR_BYTES, isSplice, prng, sectorContent } from './torture-content.js'

export const defaultRepoRoot = fileURLToPath(new URL('../..', import.meta.url))

export interface TortureOptions {
  /** Kill points (default 1000). */
  readonly points?: number
  readonly seed?: number
  /** Working directory: PV files, logs, runtime files; created if missing. */
  readonly dir: string
  /** The checkout whose src/cli/main.ts is tortured (default: this one). */
  readonly repoRoot?: string
  readonly lvSizeBytes?: number
  /** PP size (vgcreate --pp-size); the MWC region is min(PP, 4 MiB). Default 1M: 128 regions in 128 MiB. */
  readonly ppSize?: string
  /** Scrub after every Nth remount (default 1); always after the last. */
  readonly scrubEvery?: number
  /** Read the whole LV against the model every Nth remount (default 1); always after the last. */
  readonly fullReadEvery?: number
  /** At the other remounts: the sectors written in the last point plus this many random ones. */
  readonly sampleSectors?: number
  /** At those remounts, check at most this many sectors of each acknowledged write (its first, its
   * last, random others; default all). Sectors under writes unanswered at the kill are all read. */
  readonly sectorsPerWrite?: number
  /** The kill lands this long after the writer opened the file: uniform in [0, max] ms (a quarter of
   * the points in the first 30 ms, while the first gates and MWC records are written). */
  readonly killDelayMaxMs?: number
  /** Activity-log size of the LV (lvcreate --al-extents; default 32, 0: the CLI's default). Far
   * below the LV's 128 regions, so extents are evicted and native gates closed all the time. */
  readonly alExtents?: number
  /** Writes in flight (default 4). */
  readonly depth?: number
  /** Stop starting points once this much time has passed (the last point's mount is still checked). */
  readonly budgetMs?: number
  readonly log?: (line: string) => void
  /** Run the daemons from an esbuild bundle of the checkout (default true; false: through tsx). */
  readonly bundle?: boolean
  /** The second copy's PV: this NBD URI (its export blank and large enough) instead of a file. */
  readonly remotePv?: string
}

export interface TortureSummary {
  readonly points: number
  readonly seed: number
  readonly elapsedMs: number
  readonly setupMs: number
  readonly pointMs: { mean: number; max: number; p50: number }
  /** Mean milliseconds per phase over the points. */
  readonly phaseMs: Record<string, number>
  readonly acknowledged: number
  readonly acknowledgedBytes: number
  /** Writes unanswered at the kill (failed with EIO/ENOTCONN), and what their sectors read back as. */
  readonly inFlightAtKill: number
  readonly inFlightSectors: { newContent: number; oldContent: number }
  /** Sector reads that found the splice a short acknowledgement allows (see isSplice). */
  readonly splicedSectors: number
  readonly sectorsChecked: number
  readonly scrubs: number
}

export class TortureFailure extends Error {
  constructor(message: string, readonly point: number, readonly seed: number, readonly dir: string) {
    super(`point ${point} (seed ${seed}): ${message}`)
  }
}

interface WriteRecord {
  readonly gen: number
  readonly point: number
  readonly firstSector: number
  readonly sectors: number
  ackedBytes?: number
  failed?: string
}

interface Session {
  readonly events: string[]
  readonly opened: Promise<void>
  readonly ended: Promise<string>
}

/**
 * How children are started. Under tap, @tapjs/processinfo puts its loader into NODE_OPTIONS of
 * every process spawned (whatever env is passed); it runs module hooks in every daemon start and
 * made each cost seconds instead of half of one. `env -u NODE_OPTIONS` drops it on the way.
 */
const TAP_HOOKED = process.env['NODE_OPTIONS']?.includes('@tapjs') === true
const NODE = TAP_HOOKED ? 'env' : process.execPath
const NODE_PREFIX = TAP_HOOKED ? ['-u', 'NODE_OPTIONS', process.execPath] : []

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([promise, new Promise<T>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })]).finally(() => clearTimeout(timer))
}

function mountedAt(path: string): number {
  const absolute = resolve(path)
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .filter((line) => line.split(' ')[4]?.replace(/\\040/g, ' ') === absolute).length
}

/** Detaches whatever is mounted at `path`, dead or alive (umount -l, as `lvmfs cleanup` does). */
function detach(path: string): void {
  for (let i = 0; i < 8 && mountedAt(path) > 0; i++) spawnSync('umount', ['-l', path])
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * esbuild plugin: `import { Etcd3 } from 'etcd3'` becomes a class that requires the real package
 * when first constructed (its only value import in src/; another one fails the bundle, which then
 * falls back to tsx).
 */
function lazyEtcd3(root: string): import('esbuild').Plugin {
  return {
    name: 'lazy-etcd3',
    setup(build) {
      build.onResolve({ filter: /^etcd3$/ }, () => ({ path: 'etcd3', namespace: 'lazy-etcd3' }))
      build.onLoad({ filter: /.*/, namespace: 'lazy-etcd3' }, () => ({ loader: 'js', contents: `
        import { createRequire } from 'node:module'
        const real = () => createRequire(${JSON.stringify(join(root, 'package.json'))})('etcd3')
        export class Etcd3 { constructor(...args) { return new (real().Etcd3)(...args) } }` }))
    },
  }
}

export class MirrorTorture {
  readonly seed: number
  readonly vg: string
  readonly mountpoint: string
  readonly pvs: string[]
  readonly lvFile: string
  private readonly root: string
  private readonly env: NodeJS.ProcessEnv
  private readonly random: () => number
  private readonly sectors: number
  private readonly tag: number
  private readonly log: (line: string) => void
  /** The generation every sector holds (exact at the start of each point). */
  private readonly current: Uint32Array
  /** Sectors under a write unanswered at the last kill: that write's generation. */
  private uncertain = new Map<number, number>()
  /**
   * Sectors where an acknowledged write ended: it was answered short of the sector's end (see
   * isSplice), so the first `bytes` must hold `gen` and the rest may still hold `under`. Such a
   * sector is right as that splice, or whole `gen`, until a later acknowledged write covers it.
   */
  private readonly splits = new Map<number, { gen: number; bytes: number; under: number }>()
  private readonly writes = new Map<number, WriteRecord>()
  private lastSessionWrites: WriteRecord[] = []
  private nextGen = 1
  private daemon: ChildProcess | undefined
  /** Preloaded CLI processes for the next mounts, oldest first. */
  private readonly standbys: Array<{ child: ChildProcess; ready: Promise<ChildProcess> }> = []
  private writer: ChildProcess | undefined
  private writerLine: ((line: string) => void) | undefined
  private closed = false
  /** How node runs a script of the checkout: plain node on an esbuild bundle, or through tsx. */
  private bundleDir: string | undefined
  private readonly stats = { acknowledged: 0, acknowledgedBytes: 0, inFlight: 0, newContent: 0, oldContent: 0,
    sectorsChecked: 0, scrubs: 0, spliced: 0 }

  constructor(private readonly options: TortureOptions) {
    this.seed = options.seed ?? Math.floor(Math.random() * 2 ** 31)
    this.random = prng(this.seed)
    this.tag = (this.seed ^ 0x5a5a5a5a) >>> 0
    this.root = options.repoRoot ?? defaultRepoRoot
    this.log = options.log ?? ((line) => process.stdout.write(line + '\n'))
    this.vg = `k9t${process.pid}`
    this.mountpoint = join(options.dir, 'mnt')
    this.pvs = [join(options.dir, 'pv0.img'), options.remotePv ?? join(options.dir, 'pv1.img')]
    this.lvFile = join(this.mountpoint, 'mir')
    this.env = { ...process.env, LVMFS_RUN_DIR: join(options.dir, 'run'), LVMFS_LOG_DIR: join(options.dir, 'log'),
      LVMFS_LOCK_DIR: join(options.dir, 'locks'), UV_THREADPOOL_SIZE: '8' }
    this.sectors = Math.floor(this.lvSizeBytes / SECTOR_BYTES)
    this.current = new Uint32Array(this.sectors)
  }

  get lvSizeBytes(): number {
    return this.options.lvSizeBytes ?? 128 << 20
  }

  get logFile(): string {
    return join(this.options.dir, 'log', `${this.vg}.log`)
  }

  private get socket(): string {
    return join(this.options.dir, 'run', `${this.vg}.sock`)
  }

  /** node arguments that run `script` (a .ts file of the checkout, relative to its root). */
  private nodeArgs(script: string): string[] {
    if (this.bundleDir === undefined) return ['--import', 'tsx', join(this.root, script)]
    return [join(this.bundleDir, script.replace(/^.*\//, '').replace(/\.ts$/, '.mjs'))]
  }

  /**
   * Bundles the CLI, the standby and the writer with esbuild (tsx's own dependency) into
   * build/torture-PID/ of the checkout: a node start then loads one file instead of resolving and
   * transforming a few hundred modules through tsx (about 0.5 s instead of 1.3 s of CPU a daemon,
   * on the critical path of every point). The bundle sits two levels under the checkout, as
   * src/cli/ does, so the paths the code derives from import.meta.url (package.json, the native
   * addon) stay the same. One change: `etcd3` (grpc and protobufjs, more than half of a daemon's
   * start here, needed only by shared VGs with the etcd lock backend) is loaded on first use
   * instead of at start. Without esbuild, or with `bundle: false`, scripts run through tsx.
   */
  private async bundle(): Promise<void> {
    if (this.options.bundle === false) return
    const dir = join(this.root, 'build', `torture-${process.pid}`)
    try {
      const esbuild = await import('esbuild')
      await esbuild.build({ entryPoints: ['src/cli/main.ts', 'test/helpers/cli-standby.ts',
        'test/helpers/torture-writer.ts'].map((path) => ({ in: join(this.root, path),
        out: path.replace(/^.*\//, '').replace(/\.ts$/, '') })), bundle: true, platform: 'node',
      format: 'esm', packages: 'external', outdir: dir, outExtension: { '.js': '.mjs' }, logLevel: 'error',
      sourcemap: 'inline', target: `node${process.versions.node.split('.')[0]}`, plugins: [lazyEtcd3(this.root)] })
      this.bundleDir = dir
    } catch (error) {
      rmSync(dir, { recursive: true, force: true })
      this.log(`torture: no esbuild bundle (${(error as Error).message.split('\n')[0]}); running through tsx`)
    }
  }

  private cli(args: string[]): string {
    const result = spawnSync(NODE, [...NODE_PREFIX, ...this.nodeArgs('src/cli/main.ts'), ...args],
      { cwd: this.root, env: this.env, encoding: 'utf8', timeout: 120_000 })
    if (result.status !== 0) {
      throw new Error(`lvmfs ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr}`)
    }
    return result.stdout
  }

  /** Runs the whole torture; throws TortureFailure at the first failed check. */
  async run(): Promise<TortureSummary> {
    const started = Date.now()
    const points = this.options.points ?? 1000
    this.log(`torture: seed ${this.seed} (replay with --seed ${this.seed}), ${points} point(s), dir ${this.options.dir}`)
    await this.bundle()
    this.setup()
    const setupMs = Date.now() - started
    const durations: number[] = []
    const phases: Record<string, number> = {}
    let point = 0
    for (;;) {
      const pointStarted = Date.now()
      this.phase = {}
      this.mark = pointStarted
      const lap = (name: string): void => this.lap(name)
      const last = point >= points || (this.options.budgetMs !== undefined && point > 0 &&
        Date.now() - started + (Date.now() - started - setupMs) / point > this.options.budgetMs)
      await this.mount(point)
      // Two standbys ahead: each has two points' time to load while the machine is busy.
      if (!last) this.refillStandbys(Math.min(2, points - point))
      await this.waitResync(point)
      lap('resync')
      const full = last || point % (this.options.fullReadEvery ?? 1) === 0
      this.verify(point, full)
      lap('verify')
      if (last || point % (this.options.scrubEvery ?? 1) === 0) {
        await this.scrub(point)
        lap('scrub')
      }
      if (last) {
        await this.unmount()
        break
      }
      point++
      const kill = await this.crashPoint(point)
      const phase = this.phase
      const duration = Date.now() - pointStarted
      durations.push(duration)
      for (const [name, ms] of Object.entries(phase)) phases[name] = (phases[name] ?? 0) + ms
      this.log(`point ${point}: ${duration} ms (${Object.entries(phase).map(([name, ms]) => `${name} ${ms}`).join(', ')}); ` +
        `${kill.acknowledged} acknowledged, ${kill.inFlight} in flight at the kill`)
    }
    const sorted = [...durations].sort((a, b) => a - b)
    const mean = durations.length === 0 ? 0 : Math.round(durations.reduce((a, b) => a + b, 0) / durations.length)
    const summary: TortureSummary = {
      points: point, seed: this.seed, elapsedMs: Date.now() - started, setupMs,
      pointMs: { mean, max: sorted.at(-1) ?? 0, p50: sorted[Math.floor(sorted.length / 2)] ?? 0 },
      phaseMs: Object.fromEntries(Object.entries(phases).map(([name, ms]) =>
        [name, Math.round(ms / Math.max(1, point))])),
      acknowledged: this.stats.acknowledged, acknowledgedBytes: this.stats.acknowledgedBytes,
      inFlightAtKill: this.stats.inFlight,
      inFlightSectors: { newContent: this.stats.newContent, oldContent: this.stats.oldContent },
      splicedSectors: this.stats.spliced, sectorsChecked: this.stats.sectorsChecked, scrubs: this.stats.scrubs,
    }
    this.log(`torture: ${summary.points} point(s) passed in ${(summary.elapsedMs / 1000).toFixed(1)} s ` +
      `(setup ${setupMs} ms; per point mean ${mean} ms, p50 ${summary.pointMs.p50}, max ${summary.pointMs.max}; ` +
      `phases ${JSON.stringify(summary.phaseMs)}); ${summary.acknowledged} writes acknowledged ` +
      `(${(summary.acknowledgedBytes / 2 ** 20).toFixed(0)} MiB), ${summary.inFlightAtKill} in flight at a kill ` +
      `(their sectors: ${summary.inFlightSectors.newContent} new, ${summary.inFlightSectors.oldContent} old), ` +
      `${summary.sectorsChecked} sectors checked, ${summary.scrubs} scrubs with 0 mismatches`)
    return summary
  }

  private phase: Record<string, number> = {}
  private mark = 0

  /** Adds the time since the last lap to phase `name` of the current point. */
  private lap(name: string): void {
    const now = Date.now()
    this.phase[name] = (this.phase[name] ?? 0) + now - this.mark
    this.mark = now
  }

  private fail(point: number, message: string): never {
    throw new TortureFailure(message, point, this.seed, this.options.dir)
  }

  private setup(): void {
    const dir = this.options.dir
    for (const sub of ['', 'mnt', 'run', 'log', 'locks']) mkdirSync(join(dir, sub), { recursive: true })
    for (const pv of this.pvs) {
      if (pv === this.options.remotePv) continue
      writeFileSync(pv, '')
      truncateSync(pv, this.lvSizeBytes + (32 << 20))
    }
    const devices = this.pvs.join(',')
    this.cli(['vgcreate', this.vg, ...this.pvs, '--pp-size', this.options.ppSize ?? '1M', '--devices', devices])
    const lvcreate = ['lvcreate', this.vg, 'mir', '--size', `${this.lvSizeBytes / 2 ** 20}M`, '--copies', '2',
      '--mwc', 'active', '--devices', devices]
    const alExtents = this.options.alExtents ?? 32
    try {
      this.cli(alExtents === 0 ? lvcreate : [...lvcreate, '--al-extents', String(alExtents)])
    } catch (error) {
      if (!/unknown option '--al-extents'/.test((error as Error).message)) throw error
      this.log('torture: this checkout has no --al-extents; the LV keeps its default MWC log size')
      this.cli(lvcreate)
    }
    this.startWriter()
    this.refillStandbys(1)
  }

  private refillStandbys(wanted: number): void {
    while (this.standbys.length < wanted) this.standbys.push(this.spawnStandby())
  }

  private spawnStandby(): { child: ChildProcess; ready: Promise<ChildProcess> } {
    mkdirSync(join(this.options.dir, 'log'), { recursive: true })
    const logFd = openSync(this.logFile, 'a')
    const child = spawn(NODE, [...NODE_PREFIX, ...this.nodeArgs('test/helpers/cli-standby.ts')],
      { cwd: this.root, env: this.env, stdio: ['ignore', logFd, logFd, 'ipc'] })
    closeSync(logFd)
    const ready = new Promise<ChildProcess>((resolve, reject) => {
      child.once('message', () => resolve(child))
      child.once('exit', (code, signal) => reject(new Error(`the standby CLI process exited (${code ?? signal}) ` +
        `before it was ready; see ${this.logFile}`)))
    })
    ready.catch(() => undefined) // awaited (and reported) by a later mount
    return { child, ready }
  }

  private async mount(point: number): Promise<void> {
    const standby = this.standbys.shift() ?? this.spawnStandby()
    this.daemon = standby.child
    let child: ChildProcess
    try {
      child = await withTimeout(standby.ready, 60_000, 'the standby CLI process')
    } catch (error) {
      this.fail(point, (error as Error).message)
    }
    this.lap('standby')
    const ready = new Promise<{ ready?: unknown; error?: { message: string } }>((resolve) => {
      child.once('message', (message) => resolve(message as { ready?: unknown; error?: { message: string } }))
      child.once('exit', (code, signal) => resolve({ error: { message: `the daemon exited (${code ?? signal}) before it mounted` } }))
    })
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0
    child.send({ argv: ['mount', this.vg, this.mountpoint, '--foreground', '--devices', this.pvs.join(',')] })
    const message = await withTimeout(ready, 120_000, 'the mount').catch((error: Error) => ({ error }))
    if (message.error !== undefined) {
      this.fail(point, `remount failed: ${message.error.message}\n${this.logTail()}`)
    }
    if (child.connected) child.disconnect()
    const mounts = mountedAt(this.mountpoint)
    if (mounts !== 1) this.fail(point, `${mounts} mounts at ${this.mountpoint} after the remount (a dead one left under it?)`)
    this.lap('mount')
  }

  private logOffset = 0

  private logSince(): string {
    try {
      const fd = openSync(this.logFile, 'r')
      try {
        const size = statSync(this.logFile).size
        const buffer = Buffer.alloc(Math.max(0, size - this.logOffset))
        readSync(fd, buffer, 0, buffer.length, this.logOffset)
        return buffer.toString('utf8')
      } finally {
        closeSync(fd)
      }
    } catch {
      return ''
    }
  }

  private logTail(): string {
    return `daemon log since this mount (${this.logFile}):\n${this.logSince().split('\n').slice(-30).join('\n')}`
  }

  /** Waits for the daemon's automatic background resync to finish, then checks nothing is stale. */
  private async waitResync(point: number): Promise<void> {
    const deadline = Date.now() + 120_000
    for (;;) {
      const messages = this.logSince().split('\n').filter((line) => line.startsWith('{')).map((line) => {
        try {
          return (JSON.parse(line) as { msg?: string }).msg
        } catch {
          return undefined
        }
      })
      if (messages.includes('background resync failed')) this.fail(point, `the automatic resync failed\n${this.logTail()}`)
      if (messages.includes('background resync finished')) break
      if (this.daemon?.exitCode !== null || this.daemon?.signalCode !== null) {
        this.fail(point, `the daemon died after mounting\n${this.logTail()}`)
      }
      if (Date.now() > deadline) this.fail(point, `the automatic resync did not finish in 120 s\n${this.logTail()}`)
      await sleep(5)
    }
    const status = await callControl(this.socket, 'status') as { pvs: Array<{ path: string; state: string }>;
      lvs: Array<{ name: string; stalePartitions: number }>; resyncs: unknown[] }
    const bad = status.pvs.filter((pv) => pv.state !== 'active')
    if (bad.length > 0) this.fail(point, `PV(s) not active after remount: ${JSON.stringify(bad)}`)
    const stale = status.lvs.find((lv) => lv.name === 'mir')?.stalePartitions ?? -1
    if (stale !== 0) this.fail(point, `LV mir has ${stale} stale partition(s) after the automatic resync (a kill -9 loses no PV)`)
  }

  private describeGen(gen: number): string {
    if (gen === 0) return 'gen 0 (never written)'
    const write = this.writes.get(gen)
    if (write === undefined) return `gen ${gen} (unknown write)`
    const state = write.failed !== undefined ? `unanswered at the kill (${write.failed})`
      : `acknowledged ${write.ackedBytes} bytes`
    return `gen ${gen} (point ${write.point}, LV bytes ${write.firstSector * SECTOR_BYTES}+${write.sectors * SECTOR_BYTES}, ${state})`
  }

  /** Checks sectors against the model and resolves the sectors of the writes unanswered at the kill. */
  private verify(point: number, full: boolean): void {
    const check = new Uint8Array(this.sectors)
    if (full) {
      check.fill(1)
    } else {
      const most = this.options.sectorsPerWrite ?? Infinity
      for (const write of this.lastSessionWrites) {
        if (write.sectors <= most) {
          check.fill(1, write.firstSector, write.firstSector + write.sectors)
          continue
        }
        check[write.firstSector] = 1
        check[write.firstSector + write.sectors - 1] = 1
        for (let i = 2; i < most; i++) check[write.firstSector + Math.floor(this.random() * write.sectors)] = 1
      }
      for (const sector of this.uncertain.keys()) check[sector] = 1
      for (const sector of this.splits.keys()) check[sector] = 1
      for (let i = 0; i < (this.options.sampleSectors ?? 256); i++) check[Math.floor(this.random() * this.sectors)] = 1
    }
    const fd = openSync(this.lvFile, 'r')
    const chunk = Buffer.alloc(1 << 20)
    const problems: string[] = []
    try {
      for (let sector = 0; sector < this.sectors;) {
        if (check[sector] === 0) {
          sector++
          continue
        }
        let end = sector + 1
        while (end < this.sectors && check[end] === 1 && end - sector < chunk.length / SECTOR_BYTES) end++
        const bytes = (end - sector) * SECTOR_BYTES
        let done = 0
        while (done < bytes) {
          const got = readSync(fd, chunk, done, bytes - done, sector * SECTOR_BYTES + done)
          if (got === 0) this.fail(point, `short read of the LV at byte ${sector * SECTOR_BYTES + done}`)
          done += got
        }
        for (let s = sector; s < end; s++) {
          this.stats.sectorsChecked++
          const sectorBytes = chunk.subarray((s - sector) * SECTOR_BYTES, (s - sector + 1) * SECTOR_BYTES)
          const content = sectorContent(sectorBytes, this.tag, s)
          const expected = this.current[s]!
          const pending = this.uncertain.get(s)
          const split = this.splits.get(s)
          if ('torn' in content && split !== undefined &&
              isSplice(sectorBytes, this.tag, s, split.gen, split.bytes, split.under)) {
            this.stats.spliced++
          } else if ('torn' in content) {
            problems.push(`LV byte ${s * SECTOR_BYTES} (sector ${s}) holds no single write's content (${content.header}); ` +
              `expected ${this.describeGen(expected)}${pending === undefined ? '' : ` or ${this.describeGen(pending)}`}` +
              (split === undefined ? '' : `, or its first ${split.bytes} bytes from gen ${split.gen} and the rest from gen ${split.under}`))
          } else if (content.gen !== pending && (content.gen !== expected || split !== undefined)) {
            problems.push(`LV byte ${s * SECTOR_BYTES} (sector ${s}) holds ${this.describeGen(content.gen)}; expected ` +
              `${this.describeGen(expected)}${pending === undefined ? '' : ` or ${this.describeGen(pending)}`}`)
          } else if (pending !== undefined) {
            if (content.gen === pending) this.stats.newContent++
            else this.stats.oldContent++
            this.current[s] = content.gen
            this.splits.delete(s)
          }
          if (problems.length >= 20) break
        }
        if (problems.length >= 20) break
        sector = end
      }
    } finally {
      closeSync(fd)
    }
    if (problems.length > 0) {
      this.dumpModel()
      this.fail(point, `${problems.length}${problems.length >= 20 ? '+' : ''} sector(s) wrong after the remount:\n  ` +
        problems.join('\n  '))
    }
    this.uncertain.clear()
  }

  private dumpModel(): void {
    try {
      writeFileSync(join(this.options.dir, 'model.json'), JSON.stringify({ seed: this.seed, tag: this.tag,
        lastSessionWrites: this.lastSessionWrites, uncertain: [...this.uncertain], splits: [...this.splits] }, null, 1))
    } catch { /* best effort */ }
  }

  private async scrub(point: number): Promise<void> {
    let out = ''
    const result = await callControl(this.socket, 'cli', { argv: ['scrub', `${this.vg}/mir`, '--json', '--devices',
      this.pvs.join(',')], isTTY: false, columns: 80 }, (event, data) => {
      if (event === 'stdout') out += String(data)
    }) as { exitCode: number }
    if (result.exitCode !== 0) this.fail(point, `scrub exited ${result.exitCode}: ${out}`)
    const report = JSON.parse(out.trim().split('\n').pop()!) as { mismatches: unknown[]; skippedLps: unknown[] }
    this.stats.scrubs++
    if (report.mismatches.length > 0 || report.skippedLps.length > 0) {
      this.dumpModel()
      this.fail(point, `scrub found ${report.mismatches.length} mismatching region(s) between the copies` +
        ` (skipped LPs: ${JSON.stringify(report.skippedLps)}): ${JSON.stringify(report.mismatches).slice(0, 2000)}`)
    }
  }

  private async unmount(): Promise<void> {
    const daemon = this.daemon
    await callControl(this.socket, 'umount', { force: false })
    if (daemon) await withTimeout(exited(daemon), 30_000, 'the daemon exiting after umount')
    this.daemon = undefined
  }

  private startWriter(): void {
    const writer = spawn(NODE, [...NODE_PREFIX, ...this.nodeArgs('test/helpers/torture-writer.ts'), '--serve'],
      { cwd: this.root, env: this.env, stdio: ['pipe', 'pipe', 'inherit'] })
    this.writer = writer
    createInterface({ input: writer.stdout! }).on('line', (line) => this.writerLine?.(line))
  }

  private startSession(point: number): Session {
    const events: string[] = []
    let opened!: () => void
    let ended!: (line: string) => void
    const session: Session = { events, opened: new Promise((resolve) => { opened = resolve }),
      ended: new Promise((resolve) => { ended = resolve }) }
    this.writerLine = (line) => {
      if (line.startsWith('S ')) opened()
      else if (line.startsWith('E ')) { opened(); ended(line) }
      else events.push(line)
    }
    this.writer!.stdin!.write(JSON.stringify({ session: point, file: this.lvFile, sizeBytes: this.lvSizeBytes,
      tag: this.tag, seed: Math.floor(this.random() * 2 ** 31), firstGen: this.nextGen,
      depth: this.options.depth ?? 4 }) + '\n')
    return session
  }

  /** Writer session, kill -9 at a random moment, reap, detach; updates the model. */
  private async crashPoint(point: number): Promise<{ acknowledged: number; inFlight: number }> {
    const max = this.options.killDelayMaxMs ?? 400
    const delay = this.random() < 0.25 ? this.random() * Math.min(30, max) : this.random() * max
    const daemon = this.daemon!
    if (!this.writer || this.writer.exitCode !== null || this.writer.signalCode !== null) {
      this.fail(point, 'the writer process is gone')
    }
    const session = this.startSession(point)
    await withTimeout(session.opened, 30_000, 'the writer opening the volume file')
    if (session.events.length === 1 && session.events[0]!.startsWith('F 0')) {
      this.fail(point, `the writer could not open ${this.lvFile}: ${session.events[0]}`)
    }
    this.lap('open')
    await sleep(delay)
    const eventsBeforeKill = session.events.length
    daemon.kill('SIGKILL')
    this.lap('write')
    await withTimeout(session.ended, 60_000, 'the writer answering after the kill')
    this.lap('answers')
    await withTimeout(exited(daemon), 30_000, 'reaping the killed daemon')
    this.daemon = undefined
    this.lap('reap')
    // Odd points detach the dead mount (umount -l, as `lvmfs cleanup`); even points leave it to the
    // next `lvmfs mount`, which must detach it itself rather than stack a second mount on it.
    if (point % 2 === 1) detach(this.mountpoint)
    this.lap('detach')
    // Fold the session into the model.
    const records: WriteRecord[] = []
    let acknowledged = 0
    let inFlight = 0
    session.events.forEach((line, index) => {
      const [kind, genText, a, b] = line.split(' ')
      const gen = Number(genText)
      if (kind === 'I') {
        const record: WriteRecord = { gen, point, firstSector: Number(a) / SECTOR_BYTES,
          sectors: Number(b) / SECTOR_BYTES }
        this.writes.set(gen, record)
        records.push(record)
        this.nextGen = Math.max(this.nextGen, gen + 1)
        return
      }
      const record = this.writes.get(gen)
      if (record === undefined) this.fail(point, `the writer answered a write it never issued: ${line}`)
      if (kind === 'A') {
        const bytes = Number(a)
        record.ackedBytes = bytes
        acknowledged++
        this.stats.acknowledged++
        this.stats.acknowledgedBytes += bytes
        const full = Math.floor(bytes / SECTOR_BYTES)
        for (let s = record.firstSector; s < record.firstSector + full; s++) {
          this.current[s] = gen
          this.uncertain.delete(s)
          this.splits.delete(s)
        }
        for (let s = record.firstSector + full; s < record.firstSector + record.sectors; s++) this.uncertain.set(s, gen)
        const partial = bytes % SECTOR_BYTES
        const cut = record.firstSector + full
        if (partial !== 0) this.splits.set(cut, { gen, bytes: partial, under: this.current[cut]! })
      } else if (kind === 'F') {
        if (index < eventsBeforeKill) this.fail(point, `a write failed while the daemon was alive: ${line}`)
        record.failed = a ?? 'error'
        inFlight++
        this.stats.inFlight++
        for (let s = record.firstSector; s < record.firstSector + record.sectors; s++) this.uncertain.set(s, gen)
      }
    })
    this.lastSessionWrites = records
    this.pruneWrites()
    return { acknowledged, inFlight }
  }

  /** Keeps the write records that some sector still refers to (for failure messages). */
  private pruneWrites(): void {
    if (this.writes.size < 200_000) return
    const live = new Set<number>(this.current)
    for (const gen of this.uncertain.values()) live.add(gen)
    for (const gen of this.writes.keys()) if (!live.has(gen)) this.writes.delete(gen)
  }

  /** Kills every process this torture started and detaches the mount; idempotent. Files stay. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const children = [this.daemon, ...this.standbys.map((standby) => standby.child), this.writer]
      .filter((child): child is ChildProcess => child !== undefined && child.exitCode === null &&
        child.signalCode === null)
    if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null && existsSync(this.socket)) {
      // A live daemon (a failed check): unmount it cleanly so the PVs stay as they were.
      await withTimeout(callControl(this.socket, 'umount', { force: true }), 30_000, 'umount').catch(() => undefined)
      await withTimeout(exited(this.daemon), 30_000, 'daemon exit').catch(() => undefined)
    }
    this.writer?.stdin?.end()
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    await Promise.all(children.map((child) => withTimeout(exited(child), 10_000, 'child exit').catch(() => undefined)))
    detach(this.mountpoint)
    if (this.bundleDir !== undefined) rmSync(this.bundleDir, { recursive: true, force: true })
  }

  /** Removes the working directory (after a successful run). */
  removeFiles(): void {
    if (mountedAt(this.mountpoint) === 0) rmSync(this.options.dir, { recursive: true, force: true })
  }
}

/**
 * Runs a torture inside a tap test: `options.dir` (a fresh directory) is removed when the run
 * passes and left, named in a comment, when it fails; the seed is printed for a replay with
 * MIRROR_KILL9_SEED; point lines are shown every 10th point.
 */
export async function tortureInTest(t: { comment(message: string): void, teardown(fn: () => unknown): void },
  options: Omit<TortureOptions, 'seed' | 'log'> & { seed: number }): Promise<TortureSummary> {
  const torture = new MirrorTorture({ ...options,
    log: (line) => { if (!/^point \d*[1-9]:/.test(line)) t.comment(line) } })
  let passed = false
  t.teardown(async () => {
    await torture.close()
    if (passed) rmSync(options.dir, { recursive: true, force: true })
    else t.comment(`the PV files, daemon log and model.json are left in ${options.dir}`)
  })
  t.comment(`seed ${options.seed} (replay: MIRROR_KILL9_SEED=${options.seed})`)
  const summary = await torture.run()
  passed = true
  return summary
}
