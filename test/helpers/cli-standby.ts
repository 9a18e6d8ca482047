/**
 * A preloaded `lvmfs` process for loops that start many daemons (the mirror crash torture): it
 * imports the whole CLI first (most of the second a `node --import tsx src/cli/main.ts` start
 * costs), says {"standby":true} on its IPC channel, and then runs the one argv it is sent there
 * exactly as src/cli/main.ts would. Sent `mount VG MNT --foreground ...`, it is the daemon
 * spawnDaemon (src/engine/daemon.ts) starts: the mount command sends its ready message (or its
 * error) over the same IPC channel and logs to the VG's log file.
 */
const { runCli } = await import('../../src/cli/program.js')
process.once('message', (message: { argv: string[] }) => {
  void runCli(message.argv).then((code) => { process.exitCode = code })
})
process.send?.({ standby: true })
