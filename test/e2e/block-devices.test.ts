// mount --block-devices (docs/block-devices.md): a linear LV is also a loop device over its PV
// bytes, named DEV_DIR/VG/LV. Through the real CLI and daemon: bytes and an ext4 file system
// written through the device read back through the LV file and the other way round, fio verify;
// everything that must see the LV's writes is refused while the device is held and works once
// it is closed (lvconvert, replicate, fault, lvremove, umount); lvextend grows a held device;
// a daemon killed -9 leaves the held device bound, the next daemon takes it over, and it
// detaches at its last close, leaving no loop device behind.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readAt, scrubMismatches, sha256, skip, writeAt } from '../helpers/e2e.js'
import { repoRoot } from '../helpers/mount-child.js'
import { createLvs, createVg, makeVg, type VgFixture } from '../helpers/vg-mount.js'

interface Status {
  blockDevices?: Array<{ lv: string; device: string; link: string; sizeBytes: number; holders: string[] }>
}

function status(fixture: VgFixture): Status {
  return JSON.parse(fixture.ok(['status', fixture.vg, '--json'])) as Status
}

/** Loop devices bound over a file of the fixture (a test must leave none). */
function loopsOver(fixture: VgFixture): string[] {
  const out = execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
  return out.split('\n').filter((line) => line.includes(fixture.dir))
}

function blockFixture(t: Test, lvs: Parameters<typeof createLvs>[1]): VgFixture & { link(lv: string): string;
  mount(): void; hold(lv: string): () => void } {
  const fixture = makeVg(t, { pvCount: 2, pvBytes: 256 << 20 })
  fixture.env['LVMFS_DEV_DIR'] = join(fixture.dir, 'dev')
  const held: number[] = []
  t.teardown(() => { for (const fd of held.splice(0)) closeSync(fd) })
  createVg(fixture)
  createLvs(fixture, lvs)
  return Object.assign(fixture, {
    link: (lv: string) => join(fixture.dir, 'dev', fixture.vg, lv),
    mount: () => {
      fixture.ok(['mount', fixture.vg, fixture.mountpoint, '--block-devices', '--devices', fixture.pvs.join(',')])
    },
    hold: (lv: string) => {
      const fd = openSync(join(fixture.dir, 'dev', fixture.vg, lv), 'r')
      held.push(fd)
      return () => {
        held.splice(held.indexOf(fd), 1)
        closeSync(fd)
      }
    },
  })
}

function refusedBusy(t: Test, fixture: VgFixture, args: string[], what: string): void {
  const result = fixture.cli(args[0] === 'fault' ? args : [...args, '--devices', fixture.pvs.join(',')])
  t.equal(result.code, 5, `${what}: refused (exit 5)`)
  t.match(result.stderr, /ENGINE_BLOCKDEV_OPEN: .*the block device \/dev\/loop\d+ of logical volume "lin" is open/,
    `${what}: ENGINE_BLOCKDEV_OPEN naming the device and the LV`)
  t.match(result.stderr, new RegExp(`process ${process.pid} `), `${what}: the holder is named`)
}

/**
 * Writes through the block device and flushes its page cache: the device and the LV file share
 * the bytes but not a cache (docs/block-devices.md), so what is written buffered to one shows in
 * the other once flushed.
 */
function writeFlushed(path: string, offset: number, data: Buffer): void {
  writeAt(path, offset, data)
  const fd = openSync(path, 'r+')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function pvHashes(fixture: VgFixture): string[] {
  return fixture.pvs.map((pv) => sha256(readFileSync(pv)))
}

t.test('bytes and ext4 through the block device, fio verify, and back through the LV file', { skip }, async (t) => {
  const fixture = blockFixture(t, [{ name: 'lin', size: '64M' }, { name: 'mir', size: '16M', copies: 2 }])
  fixture.mount()
  const link = fixture.link('lin')
  t.match(readlinkSync(link), /^\/dev\/loop\d+$/, `${link} names a loop device`)
  t.notOk(existsSync(fixture.link('mir')), 'a mirrored LV gets no block device')
  const report = status(fixture).blockDevices ?? []
  t.same(report.map((device) => [device.lv, device.device, device.sizeBytes]), [['lin', readlinkSync(link), 64 << 20]],
    'status lists the device with the LV size')
  const lvFile = join(fixture.mountpoint, 'lin')
  const data = randomBytes(8 << 20)
  writeFlushed(link, 4 << 20, data)
  t.equal(sha256(readAt(lvFile, 4 << 20, data.length)), sha256(data), 'the LV file reads what the device wrote')
  const back = randomBytes(1 << 20)
  writeAt(lvFile, 30 << 20, back)
  t.equal(sha256(readAt(link, 30 << 20, back.length)), sha256(back), 'the device reads what the LV file wrote')

  const fio = spawnSync('fio', ['--name=blockdev', `--filename=${link}`, '--rw=randwrite', '--bs=4k', '--size=16M',
    '--offset=40M', '--ioengine=libaio', '--iodepth=16', '--direct=1', '--verify=crc32c', '--do_verify=1',
    '--verify_state_save=0', '--output-format=json'], { cwd: fixture.dir, encoding: 'utf8' })
  const job = (JSON.parse(fio.stdout || '{"jobs":[{"error":-1}]}') as { jobs: Array<{ error: number }> }).jobs[0]!
  t.equal(fio.status === 0 ? job.error : -1, 0, `fio randwrite + crc32c verify on the device: no error ${fio.stderr}`)

  execFileSync('mkfs.ext4', ['-q', '-F', link])
  const ext4 = join(fixture.dir, 'ext4')
  mkdirSync(ext4)
  execFileSync('mount', [link, ext4])
  try {
    execFileSync('cp', ['-a', join(repoRoot, 'src'), join(ext4, 'tree')])
  } finally {
    execFileSync('umount', [ext4])
  }
  const fsck = spawnSync('e2fsck', ['-fn', lvFile], { encoding: 'utf8' })
  t.equal(fsck.status, 0, `e2fsck -fn of the LV file is clean: ${fsck.stdout}${fsck.stderr}`)
  fixture.ok(['umount', fixture.vg])
  t.same(loopsOver(fixture), [], 'umount released the loop device')
  t.notOk(existsSync(link), 'and removed its name')
})

t.test('held: what must see writes is refused; closed: it works; lvextend grows a held device', { skip }, async (t) => {
  const fixture = blockFixture(t, [{ name: 'lin', size: '32M' }])
  fixture.mount()
  const link = fixture.link('lin')
  const data = randomBytes(4 << 20)
  writeFlushed(link, 0, data)
  const release = fixture.hold('lin')
  const before = pvHashes(fixture)
  refusedBusy(t, fixture, ['lvconvert', `${fixture.vg}/lin`, '--copies', '2'], 'lvconvert --copies 2')
  refusedBusy(t, fixture, ['replicate', `${fixture.vg}/lin`, 'snap', '--type', 'clone'], 'replicate clone')
  refusedBusy(t, fixture, ['lvremove', fixture.vg, 'lin'], 'lvremove')
  refusedBusy(t, fixture, ['pvmove', fixture.vg, fixture.pvs[0]!, fixture.pvs[1]!], 'pvmove')
  refusedBusy(t, fixture, ['lvchange', `${fixture.vg}/lin`, '--permission', 'r'], 'lvchange --permission r')
  refusedBusy(t, fixture, ['fault', fixture.vg, fixture.pvs[0]!, '--fail-writes'], 'fault --fail-writes')
  const umount = fixture.cli(['umount', fixture.vg])
  t.equal(umount.code, 5, 'umount refused while the device is held')
  t.match(umount.stderr, /LVM_LVOPEN.*\n.*Block devices: \/dev\/loop\d+ \(lin\) is held by process/, 'naming the device')
  t.same(pvHashes(fixture), before, 'the refusals changed nothing on the PVs')

  const device = readlinkSync(link)
  fixture.ok(['lvextend', fixture.vg, 'lin', '--size', '+8M', '--devices', fixture.pvs.join(',')])
  t.equal(Number(execFileSync('blockdev', ['--getsize64', link], { encoding: 'utf8' })), 40 << 20,
    'lvextend grew the held device (the LV stayed one run)')
  t.equal(readlinkSync(link), device, 'the same device')

  release()
  fixture.ok(['lvconvert', `${fixture.vg}/lin`, '--copies', '2', '--devices', fixture.pvs.join(',')])
  t.notOk(existsSync(link), 'lvconvert, the device closed: the device is gone')
  t.same(loopsOver(fixture), [], 'and its loop device released')
  t.equal(sha256(readAt(join(fixture.mountpoint, 'lin'), 0, data.length)), sha256(data), 'the data is on the mirror')
  t.equal(scrubMismatches(fixture, 'lin'), 0, 'both copies hold the same bytes')
  fixture.ok(['lvconvert', `${fixture.vg}/lin`, '--copies', '1', '--devices', fixture.pvs.join(',')])
  t.match(readlinkSync(link), /^\/dev\/loop\d+$/, 'back to one copy in one run: a device again')
  t.equal(sha256(readAt(link, 0, data.length)), sha256(data), 'with the same bytes')
})

t.test('kill -9 of the daemon: a held device stays bound, the next daemon takes it over, it detaches at the last close',
  { skip }, async (t) => {
    const fixture = blockFixture(t, [{ name: 'lin', size: '16M' }])
    fixture.mount()
    const link = fixture.link('lin')
    const device = readlinkSync(link)
    const release = fixture.hold('lin')
    process.kill(fixture.daemonPid()!, 'SIGKILL')
    for (let i = 0; i < 200 && spawnSync('kill', ['-0', String(fixture.daemonPid())]).status === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    t.equal(loopsOver(fixture).length, 1, 'the held device is still bound after the kill')
    fixture.ok(['cleanup', fixture.mountpoint])
    fixture.mount()
    t.equal(readlinkSync(link), device, 'the new daemon took the same device over')
    t.equal(loopsOver(fixture).length, 1, 'no second device')
    const data = randomBytes(1 << 20)
    writeFlushed(link, 2 << 20, data)
    t.equal(sha256(readAt(join(fixture.mountpoint, 'lin'), 2 << 20, data.length)), sha256(data), 'it still maps the LV')
    process.kill(fixture.daemonPid()!, 'SIGKILL')
    for (let i = 0; i < 200 && spawnSync('kill', ['-0', String(fixture.daemonPid())]).status === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    release()
    for (let i = 0; i < 100 && loopsOver(fixture).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    t.same(loopsOver(fixture), [], 'the last close detached it')
    const cleanup = fixture.ok(['cleanup', fixture.mountpoint])
    t.match(cleanup, new RegExp(`removed ${link.replace(/[/.]/g, '\\$&')}`), 'cleanup removed its name')
  })

t.test('--block-devices does not combine with a shared mount', { skip }, async (t) => {
  const fixture = makeVg(t, { pvCount: 1, pvBytes: 64 << 20 })
  const result = fixture.cli(['mount', 'anyvg', fixture.mountpoint, '--lvs', 'a', '--block-devices',
    '--devices', fixture.pvs.join(',')])
  t.equal(result.code, 3, 'usage error')
  t.match(result.stderr, /--block-devices does not apply to shared mounts/, 'saying why')
})
