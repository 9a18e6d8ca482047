/** Test launcher of the lock broker (what `lvmfs lockd --daemon` does, without the built CLI). */
import { Broker, socketPathFromEnv } from '../../src/dlm/broker.js'

const broker = new Broker({
  socketPath: socketPathFromEnv(),
  graceMs: Number(process.env['LVMFS_LOCKD_GRACE_MS'] ?? 5000),
})
if (await broker.start()) {
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
  })
  await broker.stop()
}
