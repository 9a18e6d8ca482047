// Mounts the passthrough example: node --import tsx scripts/passthrough.ts BACKING MOUNTPOINT
import { PassthroughFileSystem } from '../src/fuse/examples/passthrough-fs.js'
import { FuseSession } from '../src/fuse/session.js'

const [backingPath, mountpoint, threads] = process.argv.slice(2)
if (!backingPath || !mountpoint) {
  process.stderr.write('usage: passthrough BACKING MOUNTPOINT [THREADS]\n')
  process.exit(3)
}
const fs = new PassthroughFileSystem({ backingPath, name: 'lv0' })
const session = await FuseSession.mount(fs, { mountpoint, threads: Number(threads ?? 32),
  log: { warn: (o, m) => console.error(m, o), error: (o, m) => console.error(m, o) } })
fs.attach(session)
process.stdout.write(`mounted ${backingPath} at ${mountpoint}\n`)
const stop = (): void => { void session.unmount({ lazy: true }).finally(() => process.exit(0)) }
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
await session.closed
fs.close()
