/**
 * Metadata benchmark (`npm run bench:meta [-- --json] [-- --pvs 32 --lvs 1000 --runs 7]`).
 *
 * Builds a VG of 32 PVs (1 GiB sparse files, 4 MiB PPs, default metadata layout) holding 1,000
 * LVs (every fourth one mirrored), then measures, each as the median of several runs:
 *  - vary-on (read every label, VGDA and VGSA slot, choose, build the VG) + vary-off, against
 *    reading the same number of bytes raw from the same files at the same offsets;
 *  - one descriptor commit across all PVs (an LV rename: every copy written in parallel, each
 *    fdatasync'd), against writing the same bytes to the same offsets, each fdatasync'd;
 * and reports bytes read per vary-on and bytes written per commit. Targets: vary-on < 0.5 s,
 * commit < 100 ms. libuv's thread pool is raised to 32 (before any I/O) for both lvmfs and the
 * raw baselines, so 32 fdatasyncs can be in flight at once.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '32'

const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
const { open, truncate } = await import('node:fs/promises')
const { tmpdir } = await import('node:os')
const { join } = await import('node:path')
const lvm = await import('../src/lvm/index.js')
const { OnlineVg, commitStats } = await import('../src/lvm/online-vg.js')
const { vgdaSlotOffset } = await import('../src/format/index.js')

const args = process.argv.slice(2)
const json = args.includes('--json')
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const PVS = option('--pvs', 32)
const LVS = option('--lvs', 1000)
const RUNS = option('--runs', 7)
const PV_BYTES = 1 << 30
const PP_BYTES = 4 << 20

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6

async function build(dir: string): Promise<string[]> {
  const paths = Array.from({ length: PVS }, (_, i) => join(dir, `pv${String(i).padStart(2, '0')}.img`))
  for (const path of paths) {
    writeFileSync(path, '')
    await truncate(path, PV_BYTES)
    await lvm.pvCreate(path)
  }
  await lvm.vgCreate({ name: 'bench', paths, ppSizeBytes: PP_BYTES })
  const { vg } = await lvm.varyOnVg({ vgName: 'bench', devices: paths })
  if (!(vg instanceof OnlineVg)) throw new Error('vary-on failed')
  // One commit with all LVs: creating them one by one would take 1,000 commits.
  let d = vg.descriptor
  const lvs = []
  const active = d.pvs.map((_, i) => i)
  for (let i = 0; i < LVS; i++) {
    const copies = i % 4 === 0 ? 2 : 1
    const lps = lvm.allocateLps(d, { lpCount: 1 + (i % 3), copies, strict: 'y', allowedPvs: active })
    lvs.push({ lvId: i + 1, name: `lv${String(i).padStart(4, '0')}`, copies: copies as 1 | 2, strict: 'y' as const,
      schedule: 'p' as const, mwc: copies > 1 ? 'active' as const : 'off' as const, lps, ext: {} })
    d = { ...d, lvs: [...lvs], nextLvId: i + 2 }
  }
  await vg.commitDescriptor(d)
  await vg.varyOff()
  return paths
}

async function measureVaryOn(paths: string[]): Promise<{ msMedian: number; bytesRead: number }> {
  const times: number[] = []
  let bytesRead = 0
  for (let run = 0; run < RUNS; run++) {
    const stats = { bytesRead: 0 }
    const start = process.hrtime.bigint()
    const result = await lvm.varyOnVg({ vgName: 'bench', devices: paths, stats })
    await result.vg?.varyOff()
    times.push(ms(start))
    if (result.rc !== 'LVM_SUCCESS') throw new Error(`vary-on: ${result.rc}`)
    bytesRead = stats.bytesRead
  }
  return { msMedian: median(times), bytesRead }
}

/** Raw baseline: the same bytes from the same files (metadata region), in parallel per PV. */
async function measureRawRead(paths: string[], bytesRead: number): Promise<number> {
  const perPv = Math.ceil(bytesRead / paths.length)
  const times: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    await Promise.all(paths.map(async (path) => {
      const handle = await open(path, 'r')
      const buffer = Buffer.alloc(perPv)
      await handle.read(buffer, 0, perPv, 0)
      await handle.close()
    }))
    times.push(ms(start))
  }
  return median(times)
}

async function measureCommit(paths: string[]): Promise<{ msMedian: number; msMax: number; bytes: number;
  statusMsMedian: number }> {
  const { vg } = await lvm.varyOnVg({ vgName: 'bench', devices: paths })
  if (vg === undefined) throw new Error('vary-on failed')
  const times: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    await vg.lvRename(run % 2 === 0 ? 'lv0001' : 'renamed', run % 2 === 0 ? 'renamed' : 'lv0001')
    times.push(ms(start))
  }
  const bytes = commitStats.lastCommitBytes
  // Status (VGSA) commits: what the I/O failure path pays to mark a PP stale.
  const statusTimes: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    if (run % 2 === 0) await vg.markStale([{ pvIndex: 1, pp: 0 }])
    else await vg.clearStale([{ pvIndex: 1, pp: 0 }])
    statusTimes.push(ms(start))
  }
  await vg.varyOff()
  return { msMedian: median(times), msMax: Math.max(...times), bytes, statusMsMedian: median(statusTimes) }
}

/** Raw baseline: the same bytes per PV at the VGDA slot offset, parallel, each fdatasync'd. */
async function measureRawWrite(paths: string[], bytes: number): Promise<number> {
  const perPv = Math.ceil(bytes / paths.length)
  const offset = vgdaSlotOffset({ vgdaOffsetBytes: 64 * 1024, vgdaSlotBytes: 512 * 1024 } as never, 1, 1)
  const handles = await Promise.all(paths.map((path) => open(path, 'r+')))
  const buffer = Buffer.alloc(perPv, 0x5a)
  const times: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    await Promise.all(handles.map(async (handle) => {
      await handle.write(buffer, 0, perPv, offset)
      await handle.datasync()
    }))
    times.push(ms(start))
  }
  await Promise.all(handles.map((handle) => handle.close()))
  return median(times)
}

const dir = mkdtempSync(join(tmpdir(), 'lvmfs-bench-meta-'))
try {
  const buildStart = process.hrtime.bigint()
  const paths = await build(dir)
  const buildMs = ms(buildStart)
  const varyOn = await measureVaryOn(paths)
  const rawReadMs = await measureRawRead(paths, varyOn.bytesRead)
  const commit = await measureCommit(paths)
  // The raw write baseline overwrites an unused slot (area 1, slot 1 is never in a 32-PV placement).
  const rawWriteMs = await measureRawWrite(paths, commit.bytes)
  const statusRecordBytes = 64 + 4 + PVS * (24 + Math.ceil(Math.floor((PV_BYTES - (3 << 20)) / PP_BYTES) / 8 / 4) * 4)
  const result = {
    pvs: PVS, lvs: LVS, runs: RUNS, threadPool: Number(process.env['UV_THREADPOOL_SIZE']), buildMs,
    varyOn: { msMedian: varyOn.msMedian, bytesRead: varyOn.bytesRead, rawReadMs,
      ratio: varyOn.msMedian / rawReadMs, targetMs: 500, met: varyOn.msMedian < 500 },
    commit: { msMedian: commit.msMedian, msMax: commit.msMax, bytesWritten: commit.bytes, rawWriteMs,
      ratio: commit.msMedian / rawWriteMs, targetMs: 100, met: commit.msMedian < 100 },
    statusCommit: { msMedian: commit.statusMsMedian, recordBytes: statusRecordBytes },
  }
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n')
  } else {
    const f = (x: number): string => x.toFixed(1)
    process.stdout.write(`VG of ${PVS} PVs, ${LVS} LVs (built in ${f(buildMs)} ms), median of ${RUNS} runs\n` +
      `vary-on + vary-off  ${f(varyOn.msMedian)} ms  (${varyOn.bytesRead} bytes read; raw read of the same bytes ` +
      `${f(rawReadMs)} ms, ratio ${f(result.varyOn.ratio)}x)  target < 500 ms: ${result.varyOn.met ? 'met' : 'MISSED'}\n` +
      `descriptor commit   ${f(commit.msMedian)} ms (max ${f(commit.msMax)})  (${commit.bytes} bytes written; raw ` +
      `parallel write+fdatasync ${f(rawWriteMs)} ms, ratio ${f(result.commit.ratio)}x)  target < 100 ms: ` +
      `${result.commit.met ? 'met' : 'MISSED'}\n` +
      `status commit       ${f(commit.statusMsMedian)} ms  (${statusRecordBytes}-byte VGSA record per copy)\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
