/**
 * Files next to the broker socket:
 *  - `<socket>.lock`: the pid of the running broker; only one broker runs per socket path.
 *  - `<socket>.sessions`: the client sessions connected to the broker, rewritten (tmp + rename) on
 *    every connect and disconnect. A broker that starts and finds sessions listed there knows it
 *    restarted under live clients and enters its grace period until they have re-asserted.
 *
 * Fault model: a broker killed with -9 leaves both files; a stale lock (dead pid) is taken over.
 * Two brokers racing to take over the same stale lock are told apart by re-reading the file after
 * an atomic rename (the loser puts a fresh lock it moved back and exits).
 */
import { existsSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, closeSync } from 'node:fs'

export function lockPathFor(socketPath: string): string {
  return `${socketPath}.lock`
}

export function sessionsPathFor(socketPath: string): string {
  return `${socketPath}.sessions`
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readPid(path: string): number {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10)
  } catch {
    return Number.NaN
  }
}

/** Takes the broker lock; false when a live broker already holds it. */
export function acquireBrokerLock(socketPath: string): boolean {
  const path = lockPathFor(socketPath)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeFileSync(fd, String(process.pid))
      closeSync(fd)
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const stalePid = readPid(path)
    if (isAlive(stalePid)) return false
    const moved = `${path}.stale.${process.pid}`
    try {
      renameSync(path, moved)
    } catch {
      continue
    }
    if (readPid(moved) !== stalePid) {
      // We moved a lock another broker took meanwhile: put it back and give way.
      try {
        linkSync(moved, path)
      } catch {
        // someone else holds the path now; either way we are not the broker
      }
      unlinkSync(moved)
      return false
    }
    unlinkSync(moved)
  }
  return false
}

export function releaseBrokerLock(socketPath: string): void {
  const path = lockPathFor(socketPath)
  if (readPid(path) === process.pid) unlinkSync(path)
}

export function brokerPid(socketPath: string): number | null {
  const pid = readPid(lockPathFor(socketPath))
  return isAlive(pid) ? pid : null
}

export function readSessions(socketPath: string): string[] {
  const path = sessionsPathFor(socketPath)
  if (!existsSync(path)) return []
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { sessions?: unknown }
    return Array.isArray(parsed.sessions) ? parsed.sessions.filter((s) => typeof s === 'string') : []
  } catch {
    return []
  }
}

export function writeSessions(socketPath: string, sessions: Iterable<string>): void {
  const path = sessionsPathFor(socketPath)
  const tmp = `${path}.tmp.${process.pid}`
  writeFileSync(tmp, JSON.stringify({ sessions: [...sessions] }), { mode: 0o600 })
  renameSync(tmp, path)
}
