// kill -9 of the daemon during random writes into a 2-copy LV whose second copy is on an NBD
// export served from another network namespace (test/helpers/mirror-torture.ts, the loop of
// mirror-kill9.test.ts): after each remount every acknowledged write reads back as the model
// says, writes unanswered at the kill read all-old or all-new, and scrub finds the local and
// the remote copy identical. Fewer points than the local test: the remote leg is the new part.
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fuseAvailable } from '../../helpers/mount-child.js'
import { tortureInTest } from '../../helpers/mirror-torture.js'
import { makeRemoteHost, remoteHostUnavailable, startNbdServer } from '../../helpers/remote-host.js'

const seed = Number(process.env['MIRROR_KILL9_SEED'] ?? Math.floor(Math.random() * 2 ** 31))

t.test('kill -9 of the daemon with one copy on a remote PV: acknowledged writes survive, copies identical',
  { skip: fuseAvailable() || remoteHostUnavailable(), timeout: 240_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lvmfs-remote-kill9-'))
    const lvSizeBytes = 32 << 20
    const exportFile = join(dir, 'remote-pv.img')
    writeFileSync(exportFile, '')
    truncateSync(exportFile, lvSizeBytes + (32 << 20))
    const host = makeRemoteHost(t)
    const server = await startNbdServer(t, host, exportFile, 10809)
    const summary = await tortureInTest(t, { dir, seed, points: 20, budgetMs: 25_000, lvSizeBytes, ppSize: '512K',
      scrubEvery: 5, fullReadEvery: 5, sampleSectors: 256, sectorsPerWrite: 8, killDelayMaxMs: 200,
      remotePv: server.uri })
    t.ok(summary.points > 0, `${summary.points} kill point(s) passed`)
    t.ok(summary.acknowledged > 0, `${summary.acknowledged} writes acknowledged, ${summary.inFlightAtKill} in flight at a kill`)
    t.ok(summary.scrubs >= 1, `${summary.scrubs} scrub(s), each with 0 mismatches between the local and remote copy`)
  })
