/**
 * The FUSE transport the suite runs with. `npm test` runs test/fuse and the e2e tests that
 * apply twice (scripts/test-transports.sh): over /dev/fuse, then with LVMFS_TRANSPORT=uring,
 * which `lvmfs mount` takes as its --transport default and the in-process mounts below read.
 */
import type { FuseTransport } from '../../src/fuse/index.js'

export function testTransport(): FuseTransport {
  return process.env['LVMFS_TRANSPORT'] === 'uring' ? 'uring' : 'dev'
}
