/**
 * bench:fuse — fio and dd against (a) the raw backing file with O_DIRECT, (b) lvmfs's
 * passthrough example, (c) a C libfuse3 single-file server, (d) fuse-native, all in one run.
 * Prints a table (or one JSON object per line with --json) with ratios against raw and the
 * targets of issue 2: (b) >= 90% of (c) sequential, >= 80% of (c) 4 KiB random, >= 10x (d).
 * Usage: npm run bench:fuse -- [--json] [--runtime 15] [--size-mb 2048] [--targets raw,lvmfs,libfuse3,fuse-native]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runWorkload, STANDARD_WORKLOADS } from './bench/fio.js'
import { startFuseNative, startLibfuse3, startLvmfsPassthrough, type RunningServer } from './bench/servers.js'

const { values } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  runtime: { type: 'string', default: '15' },
  'size-mb': { type: 'string', default: '2048' },
  targets: { type: 'string', default: 'raw,lvmfs,libfuse3,fuse-native' },
  dir: { type: 'string', default: '/var/tmp' },
} })
const runtimeSeconds = Number(values.runtime)
const sizeBytes = Number(values['size-mb']) * 2 ** 20
const work = mkdtempSync(join(values.dir, 'lvmfs-bench-fuse-'))
const backing = join(work, 'backing.img')
execFileSync('dd', ['if=/dev/zero', `of=${backing}`, 'bs=1M', `count=${sizeBytes / 2 ** 20}`, 'conv=fsync', 'status=none'])

const starters: Record<string, (backing: string, mountpoint: string) => Promise<RunningServer>> = {
  lvmfs: startLvmfsPassthrough, libfuse3: startLibfuse3, 'fuse-native': startFuseNative,
}
const results = new Map<string, Map<string, number>>()
try {
  for (const target of values.targets.split(',')) {
    const server = target === 'raw' ? undefined : await starters[target]!(backing, join(work, `mnt-${target}`))
    const file = server?.file ?? backing
    const row = new Map<string, number>()
    try {
      for (const workload of STANDARD_WORKLOADS) {
        // fuse-native cannot keep up with a full-length run of every workload; a shorter one is as telling.
        row.set(workload.name, runWorkload(file, sizeBytes, workload, runtimeSeconds))
        if (!values.json) process.stderr.write(`${target} ${workload.name}: ${row.get(workload.name)!.toFixed(0)}\n`)
      }
    } finally {
      await server?.stop()
    }
    results.set(target, row)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

const raw = results.get('raw')
const lines: string[] = []
for (const [target, row] of results) {
  for (const workload of STANDARD_WORKLOADS) {
    const value = row.get(workload.name)!
    const ratioToRaw = raw ? value / raw.get(workload.name)! : null
    const ratioToLibfuse3 = results.get('libfuse3') ? value / results.get('libfuse3')!.get(workload.name)! : null
    const ratioToFuseNative = results.get('fuse-native') ? value / results.get('fuse-native')!.get(workload.name)! : null
    if (values.json) {
      process.stdout.write(JSON.stringify({ target, test: workload.name, value: Math.round(value), unit: workload.unit,
        ratioToRaw, ratioToLibfuse3, ratioToFuseNative }) + '\n')
    } else {
      lines.push(`| ${target} | ${workload.name} | ${value.toFixed(0)} ${workload.unit} | ` +
        `${ratioToRaw?.toFixed(2) ?? '-'} | ${ratioToLibfuse3?.toFixed(2) ?? '-'} | ${ratioToFuseNative?.toFixed(1) ?? '-'} |`)
    }
  }
}
if (!values.json) {
  process.stdout.write('| target | test | value | vs raw | vs libfuse3 | vs fuse-native |\n|---|---|---|---|---|---|\n')
  process.stdout.write(lines.join('\n') + '\n')
}
