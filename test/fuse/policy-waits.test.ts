/**
 * Requests TypeScript holds are bounded and never block the native path: a gate policy that
 * never answers ends in EIO with a log line naming the offset; a writer killed while its write
 * waits at a gate is answered at once (FUSE_INTERRUPT) and the late resume is refused; a volume
 * unmapped while a write waits answers EIO; native reads keep flowing while every reader's own
 * slot is held by gated writes; a throwing policy callback strands nothing.
 */
import { readFileSync, readdirSync } from 'node:fs'
import t from 'tap'
import { setFdFault, FaultBit } from '../../src/fuse/native-session.js'
import { fuseAvailable } from '../helpers/mount-child.js'
import { blockedInFuse, capture, ddWrite, mountGatedVolume, until, type GatedVolume } from '../helpers/in-process-mount.js'

const skip = fuseAvailable()
const REGION = 1 << 20

interface Waiting { region: number; open: () => void }

type GatePolicy = (volume: () => GatedVolume) => { onGate(nodeid: number, region: number): Promise<void> }

function controlledGates(): { waiting: Waiting[]; policy: GatePolicy } {
  const waiting: Waiting[] = []
  return {
    waiting,
    policy: (volume) => ({
      onGate: (nodeid, region) => new Promise<void>((resolve) => {
        waiting.push({ region, open: () => { volume().session.setGate(nodeid, region, true); resolve() } })
      }),
    }),
  }
}

t.test('a gate policy that never answers: EIO after the policy timeout, logged with the offset', { skip }, async (t) => {
  const volume = await mountGatedVolume(t, { sizeBytes: 4 * REGION, gateBytes: REGION,
    policy: () => ({ onGate: () => new Promise<void>(() => {}) }), mount: { policyTimeoutMs: 300 } })
  const write = ddWrite(volume.dir, volume.file, 300, 0x11)
  const result = await write.done
  t.not(result.code, 0, 'the write failed')
  t.match(result.stderr, /Input\/output error/, 'with EIO')
  const line = volume.log.lines.find((l) => /gate policy did not answer/.test(l.message))
  t.ok(line, 'a log line says the gate policy did not answer')
  t.equal(line?.object['offset'], 300 * 4096, 'naming the offset of the write')
  // (A RELEASE of the exited dd may be in TypeScript's hands for a moment.)
  await until('no slot left held', () => volume.session.stats().jsHeldSlots === 0)
  t.pass('no slot left held')
})

t.test('a writer killed at a gate is answered at once; the late resume is refused', { skip }, async (t) => {
  const gates = controlledGates()
  const volume = await mountGatedVolume(t, { sizeBytes: 4 * REGION, gateBytes: REGION, policy: gates.policy })
  const write = ddWrite(volume.dir, volume.file, 0, 0x22)
  await blockedInFuse(write.child.pid!)
  await until('the gate is asked', () => gates.waiting.length === 1)
  t.equal(volume.session.stats().jsHeldSlots, 1, 'the gated write holds a slot')
  write.child.kill('SIGKILL')
  const result = await write.done
  t.equal(result.signal, 'SIGKILL', 'the writer died instead of hanging in D state')
  t.notOk(volume.log.lines.some((line) => /did not answer/.test(line.message)),
    'answered by the interrupt, not by the policy watchdog')
  await until('the interrupted slot is returned', () => volume.session.stats().jsHeldSlots === 0)
  gates.waiting[0]!.open()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(readFileSync(volume.backing).subarray(0, 4096).every((b) => b === 0), true,
    'the interrupted write never reached the backing file when its gate opened later')
  const again = await ddWrite(volume.dir, volume.file, 1, 0x23).done
  t.equal(again.code, 0, 'the next write into the region succeeds')
  t.equal(readFileSync(volume.backing)[4096], 0x23)
})

t.test('a write resumed after its volume was unmapped fails with EIO', { skip }, async (t) => {
  const volume = await mountGatedVolume(t, { sizeBytes: 4 * REGION, gateBytes: REGION, policy: (v) => ({
    onGate: async () => { v().session.unmapVolume(v().fs.nodeid) },
  }) })
  const result = await ddWrite(volume.dir, volume.file, 2, 0x33).done
  t.not(result.code, 0)
  t.match(result.stderr, /Input\/output error/, 'EIO, not ENOENT')
})

t.test('native reads keep flowing while gated writes hold every reader\'s own slot', { skip }, async (t) => {
  const gates = controlledGates()
  const volume = await mountGatedVolume(t, { sizeBytes: 8 * REGION, gateBytes: REGION, policy: gates.policy })
  // Four readers, one own slot each: eight writes held at the gate of region 0.
  const writers = Array.from({ length: 8 }, (_v, i) => ddWrite(volume.dir, volume.file, i, 0x40 + i))
  let exited = 0
  for (const writer of writers) void writer.done.then(() => { exited++ })
  await until('eight gated writes', () => gates.waiting.length === 8)
  t.equal(volume.session.stats().jsHeldSlots, 8, 'eight slots held by TypeScript')
  const read = await capture('dd', [`if=${volume.file}`, 'of=/dev/null', 'bs=4096', 'count=256', 'skip=512',
    'iflag=direct', 'status=none'])
  t.equal(read.error, undefined, 'a native read of 1 MiB completes meanwhile')
  // (jsHeldSlots may count the reader's asynchronous RELEASE too: ask the writers instead.)
  t.equal(exited, 0, 'while every write is still held at its gate')
  for (const gate of gates.waiting) gate.open()
  const results = await Promise.all(writers.map((w) => w.done))
  t.same(results.map((r) => r.code), Array(8).fill(0), 'every held write then succeeds')
  const bytes = readFileSync(volume.backing)
  t.same(Array.from({ length: 8 }, (_v, i) => bytes[i * 4096]), Array.from({ length: 8 }, (_v, i) => 0x40 + i),
    'with its own bytes on the backing file')
})

// A stranded request would hang the `ls` below: the subtest's own timeout fails it.
t.test('a policy callback that throws strands no request', { skip, timeout: 60_000 }, async (t) => {
  const volume = await mountGatedVolume(t, { sizeBytes: 2 * REGION, gateBytes: 0, policy: () => ({
    onReadError: () => { throw new Error('policy bug') },
  }) })
  setFdFault(volume.fs.fd, FaultBit.READ, 0, REGION)
  const failed = await capture('dd', [`if=${volume.file}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none'])
  t.ok(failed.error, 'the faulted read fails')
  t.ok(volume.log.lines.some((l) => /native event handling failed/.test(l.message)), 'the throw is logged')
  const listed = await capture('ls', [volume.file])
  t.equal(listed.error, undefined, 'requests TypeScript answers are still served')
  const ok = await capture('dd', [`if=${volume.file}`, 'of=/dev/null', 'bs=4096', 'count=1', 'skip=300',
    'iflag=direct', 'status=none'])
  t.equal(ok.error, undefined, 'and native reads outside the fault')
})

t.test('native threads are named and block every signal but the wake-up one', { skip }, async (t) => {
  await mountGatedVolume(t, { sizeBytes: REGION, gateBytes: 0, policy: () => ({}) })
  const threads = readdirSync('/proc/self/task').map((tid) => ({
    name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(),
    blocked: BigInt('0x' + /SigBlk:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1]!),
  })).filter((thread) => thread.name.startsWith('lvmfs-'))
  const names = new Set(threads.map((thread) => thread.name))
  t.ok(names.has('lvmfs-reader') && names.has('lvmfs-resume') && names.has('lvmfs-control'), `named: ${[...names].join(', ')}`)
  for (const signal of [2, 15, 17, 10, 1]) {  // SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGHUP
    t.ok(threads.every((thread) => (thread.blocked >> BigInt(signal - 1)) & 1n), `signal ${signal} blocked in every native thread`)
  }
  // SIGKILL and SIGSTOP cannot be blocked, and glibc never lets a thread block the two signals it
  // keeps for itself (32, 33); the one other unblocked signal is the real-time wake-up.
  const unmaskable = new Set([9, 19, 32, 33])
  const unblocked = (mask: bigint): number[] => Array.from({ length: 64 }, (_v, i) => i + 1)
    .filter((signal) => !unmaskable.has(signal) && ((mask >> BigInt(signal - 1)) & 1n) === 0n)
  const readers = threads.filter((thread) => thread.name === 'lvmfs-reader')
  t.ok(readers.length > 0 && readers.every((thread) => unblocked(thread.blocked).length === 1 &&
    unblocked(thread.blocked)[0]! >= 34), 'readers leave exactly one real-time signal unblocked, to be woken')
})
