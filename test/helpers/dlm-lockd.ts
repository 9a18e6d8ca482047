/**
 * Test launcher of the lock broker (what `lvmfs lockd --daemon` does, without the built CLI). It
 * never creates the socket directory and exits after 3 s without clients, so a broker that a
 * client spawned late cannot outlive the test that removed its directory.
 */
import { Broker, socketPathFromEnv } from '../../src/dlm/broker.js'

let stop: () => void = () => {}
const stopped = new Promise<void>((resolve) => {
  stop = resolve
})
const broker = new Broker({
  socketPath: socketPathFromEnv(),
  graceMs: Number(process.env['LVMFS_LOCKD_GRACE_MS'] ?? 5000),
  createDirectory: false,
  idleExitMs: 3000,
  onIdle: () => stop(),
})
if (await broker.start()) {
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  await stopped
  await broker.stop()
}
