/**
 * Device discovery order: --devices, then LVMFS_DEVICES, then /etc/lvmfs/devices (here a
 * file passed in), with globs in the last component and comments.
 */
import t from 'tap'
import { join } from 'node:path'
import { resolveDeviceList } from '../../../src/io/index.js'

void t.test('--devices wins, then LVMFS_DEVICES, then the devices file', async (t) => {
  const dir = t.testdir({ 'a.img': '', 'b.img': '', 'c.raw': '', devices: '' })
  const file = join(dir, 'devices')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(file, `# PV files\n${join(dir, '*.img')}\n\n${join(dir, 'c.raw')}  # raw\n`)
  t.same(resolveDeviceList('/x,/y', { LVMFS_DEVICES: '/z' }, file), ['/x', '/y'])
  t.same(resolveDeviceList(undefined, { LVMFS_DEVICES: '/z:/w' }, file), ['/z', '/w'])
  t.same(resolveDeviceList(undefined, {}, file), [join(dir, 'a.img'), join(dir, 'b.img'), join(dir, 'c.raw')])
  t.same(resolveDeviceList(`${join(dir, '?.img')},${join(dir, 'a.img')}`, {}, file),
    [join(dir, 'a.img'), join(dir, 'b.img')], 'duplicates removed')
  t.throws(() => resolveDeviceList(undefined, {}, join(dir, 'missing')), { code: 'ENGINE_USAGE' })
})
