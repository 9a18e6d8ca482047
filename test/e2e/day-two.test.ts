// End to end: the day-two placement verbs on a mounted VG. lvconvert adds a copy (resynced while
// fio writes and verifies) and drops the copies on a named PV under fio again; pvmove, killed -9
// with the daemon part way, resumes after a remount with the partitions left, and the emptied PV
// leaves the VG. Each claim is checked on the PV files themselves (read-only scan, PP bytes).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { mountsAt } from '../../src/fuse/mounts.js'
import { pvCreate, scanDevices, vgCreate, varyOnVg, type LvDescriptor, type VgDescriptor,
  type VgStatus } from '../../src/lvm/index.js'
import { readAt, sha256, skip, writeAt } from '../helpers/e2e.js'
import { repoRoot } from '../helpers/mount-child.js'
import { makeVg, mountVg, type CliResult, type VgFixture } from '../helpers/vg-mount.js'

const MIB = 1 << 20
const PP = 4 * MIB

/**
 * PVs, VG and LVs (one copy each, on PV 0) made in this process: each CLI run costs a node start
 * (seconds on a loaded machine), and the suite is at its time limit. Backups go to the fixture.
 */
async function createVgWithLvs(fixture: VgFixture, lvs: Array<{ name: string; lps: number }>): Promise<void> {
  fixture.env['LVMFS_BACKUP_DIR'] = join(fixture.dir, 'backup')
  for (const path of fixture.pvs) await pvCreate(path)
  await vgCreate({ name: fixture.vg, paths: fixture.pvs, ppSizeBytes: PP })
  const vg = (await varyOnVg({ vgName: fixture.vg, devices: fixture.pvs })).vg!
  try {
    for (const lv of lvs) await vg.lvCreate({ name: lv.name, lpCount: lv.lps, copies: 1, pvIndexes: [0] })
  } finally {
    await vg.varyOff()
  }
}

interface Layout {
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
  lv(name: string): LvDescriptor
  isStale(pvIndex: number, pp: number): boolean
  /** The bytes of PP `pp` of PV `pvIndex`, read from the PV file. */
  ppBytes(pvIndex: number, pp: number): Buffer
}

/** What the PV files say, by a read-only scan (safe next to a running or dead daemon). */
async function layoutOf(fixture: VgFixture): Promise<Layout> {
  const { devices, vgs } = await scanDevices(fixture.pvs)
  const result = vgs.find((vg) => vg.name === fixture.vg)?.result
  const descriptor = result?.descriptor
  const status = result?.status
  if (descriptor === undefined || status === undefined) throw new Error(`no descriptor of ${fixture.vg} on the PVs`)
  const deviceOf = (pvIndex: number): { path: string; dataOffsetBytes: number } => {
    const found = devices.find((device) => device.label?.pvId === descriptor.pvs[pvIndex]!.pvId)
    if (found?.label === undefined) throw new Error(`PV ${pvIndex} has no labelled device`)
    return { path: found.path, dataOffsetBytes: found.label.dataOffsetBytes }
  }
  return {
    descriptor, status,
    lv: (name) => {
      const found = descriptor.lvs.find((lv) => lv.name === name)
      if (found === undefined) throw new Error(`no LV ${name} in the descriptor`)
      return found
    },
    isStale: (pvIndex, pp) => ((status.stale[pvIndex]![pp >> 3]! >> (pp & 7)) & 1) === 1,
    ppBytes: (pvIndex, pp) => {
      const device = deviceOf(pvIndex)
      return readAt(device.path, device.dataOffsetBytes + pp * descriptor.ppSizeBytes, descriptor.ppSizeBytes)
    },
  }
}

/** The CLI in the background (the fixture's cli() blocks), killed in teardown if still running;
 * `onLine` sees each stdout line as it comes (the progress events of --json). */
function cliChild(t: Test, fixture: VgFixture, args: string[], onLine: (line: string) => void = () => {}):
  { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args],
    { cwd: repoRoot, env: fixture.env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    const lines = (partial + chunk.toString()).split('\n')
    partial = lines.pop()!
    for (const line of lines) onLine(line)
  })
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const done = new Promise<CliResult>((resolve) => child.once('close', (code) => resolve({ code: code ?? -1, stdout,
    stderr })))
  return { child, done }
}

const isProgress = (line: string): boolean => line.includes('"event":"progress"')

interface FioResult {
  readonly code: number
  readonly error: number
  readonly writtenBytes: number
  readonly readBytes: number
}

/** One fio pass over the range: random writes of 4k..64k, each block once (checked with crc32c as
 * it goes, the backlog), then every block read back and checked. A new seed each pass, so a lost
 * write cannot hide behind the same bytes written by the pass before. */
function fioPass(t: Test, file: string, range: { offset: number; size: number }): Promise<FioResult> {
  const child = spawn('fio', ['--name=day-two', `--filename=${file}`, '--rw=randwrite', '--bsrange=4k-64k',
    '--ioengine=libaio', '--direct=1', '--iodepth=8', `--offset=${range.offset}`, `--size=${range.size}`,
    '--randrepeat=0', '--verify=crc32c', '--do_verify=1', '--verify_backlog=256', '--verify_fatal=1',
    '--verify_state_save=0', '--output-format=json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  return new Promise((resolve) => child.once('close', (code) => {
    const start = out.indexOf('{')
    let job: { error: number; write: { io_bytes: number }; read: { io_bytes: number } } | undefined
    try {
      job = start < 0 ? undefined : (JSON.parse(out.slice(start)) as { jobs: NonNullable<typeof job>[] }).jobs[0]
    } catch { /* reported below as error -1 with fio's output */ }
    if (job === undefined) t.comment(`fio output: ${out}`)
    resolve({ code: code ?? -1, error: job?.error ?? -1, writtenBytes: job?.write.io_bytes ?? 0,
      readBytes: job?.read.io_bytes ?? 0 })
  }))
}

/**
 * fio passes back to back until `until` settles, then one more (writes after the change, too).
 * Passes bounded by size, not one time-bounded run: a CLI start on a loaded machine takes from
 * one to several seconds, and the load must last as long as the command, whatever it takes.
 */
async function fioUntil(t: Test, file: string, range: { offset: number; size: number },
  until: Promise<unknown>): Promise<{ passes: FioResult[]; duringChange: number }> {
  let settled = false
  void until.finally(() => { settled = true })
  const passes: FioResult[] = []
  // A guard only: a pass takes a second or so, the commands a few.
  while (!settled && passes.length < 100) {
    passes.push(await fioPass(t, file, range))
    if (passes.at(-1)!.code !== 0) return { passes, duringChange: passes.length }
  }
  const duringChange = passes.length
  passes.push(await fioPass(t, file, range))
  return { passes, duringChange }
}

function fioClean(t: Test, run: { passes: FioResult[]; duringChange: number }, size: number, what: string): void {
  const bad = run.passes.filter((pass) => pass.code !== 0 || pass.error !== 0 || pass.writtenBytes !== size ||
    pass.readBytes !== size)
  t.same(bad, [], `${what}: ${run.passes.length} fio pass(es) (${run.duringChange} while the command ran), each ` +
    'exiting 0 with no I/O or verify error, having written and read back every block of the range')
}

const lastLine = (stdout: string): string => stdout.trim().split('\n').pop() ?? ''

/** Until the killed daemon is gone (not even a zombie), so nothing writes the PVs any more. */
async function waitDead(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0)
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return
    } catch {
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`daemon ${pid} still alive after SIGKILL`)
}

// One VG and mount for both parts (a mount and its teardown cost several seconds); the pvmove
// part kills the daemon, so it comes last.
t.test('day-two placement verbs on a mounted VG', { skip }, async (t: Test) => {
  const fixture = makeVg(t, { pvCount: 3, pvBytes: 128 * MIB })
  const devices = fixture.pvs.join(',')
  // 16 LPs for pvmove: the kill lands on its first progress line, with many moves still to come.
  const dataLps = 16
  await createVgWithLvs(fixture, [{ name: 'lv', lps: 8 }, { name: 'data', lps: dataLps }])
  mountVg(t, fixture)

  await t.test('lvconvert adds a copy while fio writes, then drops the copies on a named PV under fio',
    async (t: Test) => {
      const file = join(fixture.mountpoint, 'lv')
      // The resync is rate-limited and fio starts at its first progress line, so fio writes into
      // LPs resynced already and into LPs still to come, whatever a CLI start costs.
      let adding: ReturnType<typeof fioUntil> | undefined
      const convert = cliChild(t, fixture, ['lvconvert', `${fixture.vg}/lv`, '--copies', '2', '--rate', '12M',
        '--json', '--devices', devices], (line) => {
        if (adding !== undefined || !isProgress(line)) return
        adding = fioUntil(t, file, { offset: 0, size: 32 * MIB }, convert.done)
      })
      const add = await convert.done
      t.equal(add.code, 0, `lvconvert --copies 2 while fio writes: ${add.stderr}`)
      t.match(JSON.parse(lastLine(add.stdout)), { copies: 2, mwc: 'active',
        resync: { copiedBytes: 32 * MIB, failed: [] } }, 'the new copy is resynced whole')
      t.ok(adding, 'fio started during the resync')
      if (adding !== undefined) fioClean(t, await adding, 32 * MIB, 'adding a copy')
      const lvs = (JSON.parse(fixture.ok(['lvs', fixture.vg, '--json', '--devices', devices])) as
        { lvs: Array<{ lv: string; copies: number; stalePps: number }> }).lvs.find((row) => row.lv === 'lv')
      t.match(lvs, { copies: 2, stalePps: 0 }, 'lvs: 2 copies, none stale')

      const two = await layoutOf(fixture)
      const mirrored = two.lv('lv')
      t.equal(mirrored.unsyncedCopies, undefined, 'no copy is left marked unsynced')
      mirrored.lps.forEach((refs, lp) => {
        t.equal(refs.length, 2, `LP ${lp} has two PPs`)
        t.not(refs[0]!.pvIndex, refs[1]!.pvIndex, `LP ${lp}: its copies are on different PVs`)
        t.notOk(refs.some((ref) => two.isStale(ref.pvIndex, ref.pp)), `LP ${lp}: no stale bit on disk`)
        t.ok(two.ppBytes(refs[0]!.pvIndex, refs[0]!.pp).equals(two.ppBytes(refs[1]!.pvIndex, refs[1]!.pp)),
          `LP ${lp}: the two PPs are byte-identical on the PV files`)
      })
      t.ok(mirrored.lps.every((refs) => refs[0]!.pvIndex === 0), 'the first copy is on the first PV')

      // fio stays in the first half; the second half must read the same after the drop.
      const tail = sha256(readAt(file, 16 * MIB, 16 * MIB))
      const drop = cliChild(t, fixture, ['lvconvert', `${fixture.vg}/lv`, '--copies', '1', '--pv', fixture.pvs[0]!,
        '--json', '--devices', devices])
      const dropping = fioUntil(t, file, { offset: 0, size: 16 * MIB }, drop.done)
      const dropped = await drop.done
      t.equal(dropped.code, 0, `lvconvert --copies 1 --pv ${fixture.pvs[0]} while fio writes: ${dropped.stderr}`)
      fioClean(t, await dropping, 16 * MIB, 'dropping a copy')
      const one = (await layoutOf(fixture)).lv('lv')
      t.match(one, { copies: 1, mwc: 'off' }, 'one copy left, MWC off')
      t.ok(one.lps.every((refs) => refs.length === 1 && refs[0]!.pvIndex !== 0),
        'no PP of the LV is left on the first PV')
      t.equal(sha256(readAt(file, 16 * MIB, 16 * MIB)), tail, 'the data fio did not touch reads the same')
    })

  await t.test('pvmove killed -9 with the daemon part way resumes after a remount; the emptied PV leaves',
    async (t: Test) => {
      const [pvA, , pvC] = fixture.pvs as [string, string, string]
      const file = join(fixture.mountpoint, 'data')
      const pattern = randomBytes(dataLps * PP)
      writeAt(file, 0, pattern)
      const expected = sha256(pattern)
      t.equal(sha256(readAt(file, 0, pattern.length)), expected, 'the pattern reads back before the move')
      const onA = (layout: Layout): number => layout.descriptor.lvs.flatMap((lv) => lv.lps.flat())
        .filter((ref) => ref.pvIndex === 0).length
      t.equal(onA(await layoutOf(fixture)), dataLps, 'PV A holds the data LV and nothing else')

      const pid = fixture.daemonPid()!
      let progressLines = 0
      const interrupted = await cliChild(t, fixture, ['pvmove', fixture.vg, pvA, pvC, '--json', '--devices', devices],
        (line) => {
          // Each progress line follows an LP's commit: at least one move is durable.
          if (isProgress(line) && progressLines++ === 0) process.kill(pid, 'SIGKILL')
        }).done
      t.ok(progressLines > 0, `the daemon was killed after a progress line (pvmove exited ${interrupted.code})`)
      t.not(interrupted.code, 0, 'the interrupted pvmove fails')
      await waitDead(pid)
      const left = onA(await layoutOf(fixture))
      t.ok(left > 0 && left < dataLps, `the kill landed part way: ${dataLps - left} LP(s) moved, ${left} left on ` +
        `PV A (${progressLines} progress line(s) seen)`)

      // The dead mount is still in the table: mount detaches it (mountVg checks there is one).
      t.equal(mountsAt(fixture.mountpoint).length, 1, 'the killed daemon left its mount behind')
      mountVg(t, fixture)
      const resumed = fixture.ok(['pvmove', fixture.vg, pvA, pvC, '--json', '--devices', devices])
      t.same(JSON.parse(lastLine(resumed)), { vg: fixture.vg, pv: pvA, movedLps: left, movedBytes: left * PP,
        remainingLps: 0, aborted: false }, 'running pvmove again moves exactly the LPs left')
      t.equal(sha256(readAt(file, 0, pattern.length)), expected, 'the LV reads the pattern after the move')

      const after = await layoutOf(fixture)
      const moved = after.lv('data')
      t.equal(onA(after), 0, 'no PP is left on PV A')
      t.ok(moved.lps.every((refs) => refs.length === 1 && refs[0]!.pvIndex === 2), 'every LP went to PV C')
      t.equal(sha256(Buffer.concat(moved.lps.map((refs) => after.ppBytes(refs[0]!.pvIndex, refs[0]!.pp)))), expected,
        'the PPs on PV C hold the pattern')
      fixture.ok(['vgreduce', fixture.vg, pvA, '--devices', devices])
      const reduced = await layoutOf(fixture)
      t.same(reduced.descriptor.pvs.map((pv) => pv.pvId), after.descriptor.pvs.slice(1).map((pv) => pv.pvId),
        'PV A is no longer a member of the VG')
    })
})
