// Issue 12, in CI: kill -9 of the daemon during random writes into a 2-copy LV with MWC active, at
// up to 100 random moments (as many as fit in about 60 s, to keep the suite near 15 minutes),
// with the loop of scripts/torture-mirror.ts
// (test/helpers/mirror-torture.ts). After each remount (MWC recovery at vary-on, then the
// automatic resync), every sector under a write unanswered at the kill reads all-old or all-new,
// and 8 sectors of each write acknowledged since (first, last, random) and 256 random sectors read
// back as the model says. Every 10th remount, and after the last, the whole LV is read back and
// `scrub` must report 0 mismatches.
// The seed is printed; MIRROR_KILL9_SEED=N replays its choices (not the kill timing).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fuseAvailable } from '../helpers/mount-child.js'
import { tortureInTest } from '../helpers/mirror-torture.js'

const seed = Number(process.env['MIRROR_KILL9_SEED'] ?? Math.floor(Math.random() * 2 ** 31))

t.test('kill -9 of the daemon during random writes, 100 points: every acknowledged write reads back, scrub finds 0 mismatches',
  { skip: fuseAvailable(), timeout: 300_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lvmfs-kill9-'))
    const summary = await tortureInTest(t, { dir, seed, points: 100, budgetMs: 60_000, lvSizeBytes: 64 << 20,
      ppSize: '512K', scrubEvery: 10, fullReadEvery: 10, sampleSectors: 256, sectorsPerWrite: 8, killDelayMaxMs: 200 })
    t.ok(summary.points > 0, `${summary.points} kill point(s) passed; per point ${summary.pointMs.mean} ms mean ` +
      `(${summary.points < 100 ? 'the time budget ended the run before 100' : 'all 100 fit'})`)
    t.ok(summary.acknowledged > 0 && summary.inFlightAtKill > 0,
      `${summary.acknowledged} writes acknowledged, ${summary.inFlightAtKill} in flight at a kill`)
    t.ok(summary.scrubs >= 1, `${summary.scrubs} scrub(s), each with 0 mismatches`)
  })
