/** Shared pieces of the end-to-end tests of the mounted volume group (test/e2e/). */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs'
import { fuseAvailable } from './mount-child.js'
import type { VgFixture } from './vg-mount.js'

export const skip = fuseAvailable() || (spawnSync('fio', ['--version']).status !== 0 ? 'fio is not installed' : false)

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(length)
    readSync(fd, buffer, 0, length, offset)
    return buffer
  } finally {
    closeSync(fd)
  }
}

/** Writes through the mount from this process (not the daemon's, so no self-request guard). */
export function writeAt(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, constants.O_WRONLY)
  try {
    let done = 0
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done)
  } finally {
    closeSync(fd)
  }
}

export function scrubMismatches(fixture: VgFixture, lv: string): number {
  const report = JSON.parse(fixture.ok(['scrub', `${fixture.vg}/${lv}`, '--json']).trim().split('\n').pop()!) as
    { mismatches: unknown[] }
  return report.mismatches.length
}

export function stalePps(fixture: VgFixture, pvIndex: number): number {
  const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { pvs: Array<{ stalePps: number }> }
  return status.pvs[pvIndex]!.stalePps
}

/** LPs of `lv` whose copy on PV `pvIndex` is stale (VGSA stale bit), ascending. */
export function staleLps(fixture: VgFixture, lv: string, pvIndex: number): number[] {
  const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { lvs: Array<{ name: string;
    staleCopies: Array<{ pvIndex: number; fromLp: number; toLp: number }> }> }
  const lps = new Set<number>()
  for (const run of status.lvs.find((candidate) => candidate.name === lv)?.staleCopies ?? []) {
    if (run.pvIndex !== pvIndex) continue
    for (let lp = run.fromLp; lp <= run.toLp; lp++) lps.add(lp)
  }
  return [...lps].sort((a, b) => a - b)
}

export function pvState(fixture: VgFixture, pvIndex: number): string {
  const status = JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as { pvs: Array<{ state: string }> }
  return status.pvs[pvIndex]!.state
}
