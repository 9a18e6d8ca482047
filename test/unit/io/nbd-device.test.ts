/**
 * NbdDevice against nbdkit (memory and file plugins on a unix socket): the BlockDevice contract
 * byte for byte, durability requests, and every failure named: bad URIs, refused connections,
 * read-only exports, a server that stops answering (timeout) or dies.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  absoluteDevicePath, isRemoteDevicePath, openDevice, parseNbdUri, resolveDeviceList, statDeviceEntry,
} from '../../../src/io/index.js'
import { nbdTimeoutMs } from '../../../src/io/nbd-device.js'
import { nbdkitUnavailable, serveNbdkit, type Nbdkit } from '../../helpers/nbdkit.js'

const skip = nbdkitUnavailable()

async function serve(t: Test, args: string[]): Promise<Nbdkit> {
  return await serveNbdkit(t, args)
}

void t.test('device names: which are URIs, how they parse, and what is wrong with bad ones', async (t) => {
  t.ok(isRemoteDevicePath('nbd://host:10809/export'))
  t.ok(isRemoteDevicePath('nbd+unix:///?socket=/run/x.sock'))
  t.notOk(isRemoteDevicePath('/dev/sdb'))
  t.notOk(isRemoteDevicePath('nbdfile.img'))
  t.same(parseNbdUri('nbd://10.0.0.2:10809/e'), { transport: 'tcp', host: '10.0.0.2' })
  t.same(parseNbdUri('nbd+unix:///e?socket=/s'), { transport: 'unix', socket: '/s' })
  t.throws(() => parseNbdUri('nbd:///export'), { code: 'LVM_INV_DEVENT', context: { path: 'nbd:///export' } })
  t.throws(() => parseNbdUri('nbd+unix:///export'), { code: 'LVM_INV_DEVENT', message: /socket/ })
  t.equal((await statDeviceEntry('nbd://h/e')).kind, 'remote')
  t.equal((await statDeviceEntry('nbd+unix:///e')).kind, 'invalid', 'a unix URI without its socket is invalid')
  t.equal(absoluteDevicePath('nbd://h:1/e'), 'nbd://h:1/e', 'URIs stay as given')
  t.equal(absoluteDevicePath('x.img'), join(process.cwd(), 'x.img'))
  t.same(resolveDeviceList(undefined, { LVMFS_DEVICES: '/a.img,nbd://h:10809/e' }), ['/a.img', 'nbd://h:10809/e'],
    'a LVMFS_DEVICES list holding a URI splits on commas only')
  t.same(resolveDeviceList('nbd+unix:///?socket=/s'), ['nbd+unix:///?socket=/s'], 'a URI is never a glob')
  t.equal(nbdTimeoutMs({}, {}), 30_000)
  t.equal(nbdTimeoutMs({}, { LVMFS_NBD_TIMEOUT_MS: '1500' }), 1500)
  t.throws(() => nbdTimeoutMs({}, { LVMFS_NBD_TIMEOUT_MS: 'soon' }), { code: 'ENGINE_USAGE',
    context: { field: 'LVMFS_NBD_TIMEOUT_MS' } })
})

void t.test('reads, writes, durable writes, flush and discard round-trip through the server', { skip }, async (t) => {
  const { uri } = await serve(t, ['memory', '64M'])
  const device = await openDevice(uri)
  t.equal(device.kind, 'remote')
  t.equal(device.fd, -1, 'no fd: the native data path never sees it')
  t.equal(device.sizeBytes, 64 << 20)
  // 9 MiB crosses the 4 MiB request split.
  const data = Buffer.alloc(9 << 20)
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i ^ 0x5a5a5a5a, i)
  await device.write(data, 4096)
  await device.sync()
  const back = Buffer.alloc(data.length)
  await device.read(back, 4096)
  t.ok(back.equals(data), 'the bytes read back are the bytes written')
  const small = Buffer.from('durable record')
  await device.writeDurable!(small, 60 << 20)
  const smallBack = Buffer.alloc(small.length)
  await device.read(smallBack, 60 << 20)
  t.same(smallBack, small, 'a FUA write reads back')
  await device.discard(4096, 1 << 20)
  const zeros = Buffer.alloc(1 << 20, 0xff)
  await device.read(zeros, 4096)
  t.ok(zeros.every((byte) => byte === 0), 'a discarded range reads back as zeros')
  await device.read(back.subarray(0, 4096), (1 << 20) + 4096)
  t.ok(back.subarray(0, 4096).equals(data.subarray(1 << 20, (1 << 20) + 4096)), 'bytes after it are kept')
  await t.rejects(device.read(Buffer.alloc(8192), (64 << 20) - 4096), { code: 'ENGINE_IO',
    context: { path: uri, errno: 'EIO' } }, 'a read past the end is refused before it is sent')
  await device.close()
  await device.close()
  await t.rejects(device.read(Buffer.alloc(512), 0), { code: 'ENGINE_IO', context: { errno: 'EBADF' } })
})

void t.test('opening fails with the device named: refused, read-only export, unknown scheme', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvmfs-nbd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await t.rejects(openDevice(`nbd+unix:///?socket=${join(dir, 'none.sock')}`), { code: 'ENGINE_IO',
    context: { op: 'connect', path: `nbd+unix:///?socket=${join(dir, 'none.sock')}` } })
  await t.rejects(openDevice('nbd://127.0.0.1:1/'), { code: 'ENGINE_IO', context: { errno: 'ECONNREFUSED' } })
  await t.rejects(openDevice('nbds+vsock://1/'), { code: 'ENGINE_NOT_FOUND' },
    'a scheme lvmfs does not take is a file name, which does not exist')
  const { uri } = await serve(t, ['-r', 'memory', '1M'])
  await t.rejects(openDevice(uri), { code: 'ENGINE_IO', context: { errno: 'EROFS', path: uri } })
  const readOnly = await openDevice(uri, { readOnly: true })
  await t.rejects(readOnly.write(Buffer.alloc(512), 0), { code: 'ENGINE_IO', context: { errno: 'EROFS' } })
  await readOnly.close()
})

void t.test('a server that stops answering fails requests with ETIMEDOUT; one that dies, at once', { skip },
  async (t) => {
    const stopped = await serve(t, ['memory', '8M'])
    const device = await openDevice(stopped.uri, { remoteTimeoutMs: 500 })
    await device.read(Buffer.alloc(4096), 0)
    t.equal(device.unreachable, false, 'answering: reachable')
    await stopped.stop()
    await t.rejects(device.write(Buffer.alloc(4096, 1), 0), { code: 'ENGINE_IO', context: { errno: 'ETIMEDOUT' } })
    t.equal(device.unreachable, true, 'a timed-out connection makes the device unreachable (its PV goes MISSING)')
    await t.rejects(device.read(Buffer.alloc(4096), 0), { code: 'ENGINE_IO', context: { errno: 'ETIMEDOUT' } },
      'the connection stays failed: the server\'s view of the timed-out request is unknown')
    await device.close()
    stopped.child.kill('SIGCONT')

    const dying = await serve(t, ['memory', '8M'])
    const second = await openDevice(dying.uri, { remoteTimeoutMs: 60_000 })
    await second.read(Buffer.alloc(4096), 0)
    dying.child.kill('SIGKILL')
    await new Promise((resolve) => dying.child.once('exit', resolve))
    await t.rejects(second.read(Buffer.alloc(4096), 0), { code: 'ENGINE_IO' }, 'a dead server fails the request')
    t.equal(second.unreachable, true, 'and makes the device unreachable')
    await second.close()
  })
