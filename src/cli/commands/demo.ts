import type { Command } from 'commander'
import { existsSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { cleanupMountpoint, mountsAt } from '../../fuse/index.js'
import { isServed } from '../daemon-cli.js'
import { stdout } from '../io-context.js'
import { runCli } from '../program.js'

const VG = 'demo'
const PV_BYTES = 1024 ** 3

function hints(dir: string, mnt: string, pvs: string[]): string {
  return `
lvmfs demo: volume group "${VG}" is mounted at ${mnt}
  ${mnt}/mirror   512 MiB, 2 copies on different PVs, MWC active
  ${mnt}/linear   512 MiB, 1 copy

Things to try (as root):
  dd if=/dev/urandom of=${mnt}/mirror bs=1M count=64 oflag=direct conv=notrunc
  fio --name=t --filename=${mnt}/linear --rw=randrw --bs=4k --iodepth=32 --ioengine=libaio --direct=1 --runtime=10
  mkfs.ext4 -F ${mnt}/linear && mkdir -p /mnt/demo-ext4 && mount -o loop ${mnt}/linear /mnt/demo-ext4
  lvmfs status ${VG}
  lvmfs fault ${VG} ${pvs[0]} --fail-writes      # a disk fails: writes go on, partitions go stale
  lvmfs status ${VG}
  lvmfs fault ${VG} ${pvs[0]} --clear && lvmfs varyonvg ${VG} --devices ${pvs.join(',')} && lvmfs syncvg ${VG}
  lvmfs lvcreate ${VG} extra --size 128M --devices ${pvs.join(',')}   # appears in ${mnt} at once
  lvmfs umount ${mnt}
  lvmfs demo --clean                              # unmount and delete ${dir}
`
}

async function run(argv: string[]): Promise<void> {
  const code = await runCli(argv)
  if (code !== 0) throw Object.assign(new Error(`lvmfs ${argv.join(' ')} failed with exit code ${code}`), { exitCode: code })
}

async function clean(dir: string, mnt: string): Promise<void> {
  if (await isServed(VG)) await runCli(['umount', VG, '--force'])
  if (mountsAt(mnt).length > 0) cleanupMountpoint(mnt, { force: true })
  rmSync(dir, { recursive: true, force: true })
  stdout().write(`removed ${dir}\n`)
}

/** `lvmfs demo [--clean] [--dir DIR]`: a VG on three sparse 1 GiB files, mounted; or remove it. */
export function register(program: Command): void {
  program.command('demo')
    .description('create and mount a demo volume group on sparse files under ./lvmfs-demo (or remove it)')
    .option('--clean', 'unmount the demo and delete its files')
    .option('--dir <dir>', 'where to put it', 'lvmfs-demo')
    .action(async (options: { clean?: boolean; dir: string }) => {
      const dir = resolve(options.dir)
      const mnt = join(dir, 'mnt')
      if (options.clean === true) return await clean(dir, mnt)
      const pvs = [0, 1, 2].map((i) => join(dir, `pv${i}.img`))
      const devices = pvs.join(',')
      if (await isServed(VG)) {
        stdout().write(hints(dir, mnt, pvs))
        return
      }
      mkdirSync(mnt, { recursive: true })
      if (!pvs.every((pv) => existsSync(pv))) {
        for (const pv of pvs) {
          writeFileSync(pv, '')
          truncateSync(pv, PV_BYTES)
        }
        await run(['pvcreate', ...pvs])
        await run(['vgcreate', VG, ...pvs, '--pp-size', '4M', '--devices', devices])
        await run(['lvcreate', VG, 'mirror', '--size', '512M', '--copies', '2', '--mwc', 'active', '--devices', devices])
        await run(['lvcreate', VG, 'linear', '--size', '512M', '--devices', devices])
      }
      await run(['mount', VG, mnt, '--devices', devices])
      stdout().write(hints(dir, mnt, pvs))
    })
}
