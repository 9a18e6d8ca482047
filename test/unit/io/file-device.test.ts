/**
 * FileDevice on regular files and (when root and losetup are available) loop devices:
 * whole-buffer reads and writes, range checks, discard, close, device-entry classification,
 * and exclusive claims (lock files for files, O_EXCL for block devices).
 */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { linkSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { openFileDevice, statDeviceEntry } from '../../../src/io/index.js'

async function sparseFile(dir: string, name: string, sizeBytes: number): Promise<string> {
  const path = join(dir, name)
  writeFileSync(path, '')
  await truncate(path, sizeBytes)
  return path
}

function withLockDir(t: { teardown(fn: () => void): void }, dir: string): void {
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
  t.teardown(() => {
    if (saved === undefined) delete process.env['LVMFS_LOCK_DIR']
    else process.env['LVMFS_LOCK_DIR'] = saved
  })
}

void t.test('regular file: write, sync, read back, range checks, discard, close', async (t) => {
  const dir = t.testdir()
  const path = await sparseFile(dir, 'pv.img', 1 << 20)
  const device = await openFileDevice(path)
  t.equal(device.kind, 'file')
  t.equal(device.sizeBytes, 1 << 20)
  const data = Buffer.alloc(8192, 0xab)
  await device.write(data, 4096)
  await device.sync()
  const back = Buffer.alloc(8192)
  await device.read(back, 4096)
  t.same(back, data)
  await t.rejects(device.read(Buffer.alloc(10), (1 << 20) - 5), { code: 'ENGINE_IO' })
  await t.rejects(device.write(Buffer.alloc(10), -1), { code: 'ENGINE_IO' })
  await device.discard(4096, 4096)
  await device.read(back, 4096)
  t.ok(back.subarray(0, 4096).every((b) => b === 0), 'discarded range reads zeros')
  t.ok(back.subarray(4096).every((b) => b === 0xab), 'bytes after the range are kept')
  await device.close()
  await device.close()
  await t.rejects(device.read(back, 0), { code: 'ENGINE_IO' })
})

void t.test('device entries are classified before opening', async (t) => {
  const dir = t.testdir({ sub: {} })
  symlinkSync(join(dir, 'loop'), join(dir, 'loop'))
  t.equal((await statDeviceEntry('/dev/null')).kind, 'other')
  t.equal((await statDeviceEntry(join(dir, 'sub'))).kind, 'other')
  t.equal((await statDeviceEntry(join(dir, 'none'))).kind, 'absent')
  t.equal((await statDeviceEntry(join(dir, 'loop'))).kind, 'invalid')
  t.equal((await statDeviceEntry('')).kind, 'invalid')
  await t.rejects(openFileDevice('/dev/null'), { code: 'LVM_NOTCHARDEV' })
  await t.rejects(openFileDevice(join(dir, 'none')), { code: 'ENGINE_NOT_FOUND' })
  await t.rejects(openFileDevice(join(dir, 'loop')), { code: 'LVM_INV_DEVENT' })
})

void t.test('exclusive claims on files: second claim refused, links collide, stale claims taken over', async (t) => {
  const dir = t.testdir()
  withLockDir(t, dir)
  const path = await sparseFile(dir, 'pv.img', 65536)
  linkSync(path, join(dir, 'link.img'))
  const first = await openFileDevice(path, { exclusive: true })
  await t.rejects(openFileDevice(path, { exclusive: true }), { code: 'ENGINE_BUSY' })
  await t.rejects(openFileDevice(join(dir, 'link.img'), { exclusive: true }), { code: 'ENGINE_BUSY' })
  const shared = await openFileDevice(path, { readOnly: true })
  await shared.close()
  await first.close()
  const again = await openFileDevice(path, { exclusive: true })
  await again.close()
  const st = statSync(path)
  mkdirSync(join(dir, 'locks'), { recursive: true })
  writeFileSync(join(dir, 'locks', `pv-${st.dev}-${st.ino}.lock`), '2147483646\n')
  const takeover = await openFileDevice(path, { exclusive: true })
  await takeover.close()
})

void t.test('a claim held by another live process is refused with its pid', async (t) => {
  const dir = t.testdir()
  withLockDir(t, dir)
  const path = await sparseFile(dir, 'pv.img', 65536)
  const child = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  const st = statSync(path)
  mkdirSync(join(dir, 'locks'), { recursive: true })
  writeFileSync(join(dir, 'locks', `pv-${st.dev}-${st.ino}.lock`), `${child.pid}\n`)
  await t.rejects(openFileDevice(path, { exclusive: true }), { code: 'ENGINE_BUSY', context: { pid: child.pid } })
})

function losetupAvailable(): boolean {
  try {
    return process.getuid?.() === 0 && execFileSync('losetup', ['-f'], { encoding: 'utf8' }).startsWith('/dev/loop')
  } catch {
    return false
  }
}

const loopSkip = losetupAvailable() ? false : 'needs root and losetup'

void t.test('loop device: size and sector size from the kernel, O_EXCL claims', { skip: loopSkip }, async (t) => {
  const dir = t.testdir()
  const path = await sparseFile(dir, 'backing.img', 8 << 20)
  let loop: string
  try {
    loop = execFileSync('losetup', ['-f', '--show', path], { encoding: 'utf8' }).trim()
  } catch (error) {
    t.pass(`skipped: losetup failed: ${String(error)}`)
    return
  }
  t.teardown(() => { execFileSync('losetup', ['-d', loop]) })
  const device = await openFileDevice(loop, { exclusive: true })
  t.equal(device.kind, 'block')
  t.equal(device.sizeBytes, 8 << 20)
  t.ok([512, 4096].includes(device.sectorBytes))
  await t.rejects(openFileDevice(loop, { exclusive: true }), { code: 'ENGINE_BUSY' })
  await device.write(Buffer.alloc(4096, 7), 0)
  await device.sync()
  await device.discard(0, 1 << 20)
  await device.close()
})
