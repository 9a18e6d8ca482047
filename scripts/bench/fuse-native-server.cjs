// Baseline (d) of bench:fuse: fuse-native serving one backing file as "lv0", the way it is
/* eslint-disable @typescript-eslint/no-require-imports -- fuse-native is CommonJS only */
// commonly configured. Usage: node fuse-native-server.cjs BACKING MOUNTPOINT
'use strict'
const Fuse = require('fuse-native')
const fs = require('node:fs')

const [backing, mountpoint] = process.argv.slice(2)
const fd = fs.openSync(backing, 'r+')
const size = fs.fstatSync(fd).size
const now = new Date()
const fileStat = { mtime: now, atime: now, ctime: now, size, mode: 0o100644, uid: 0, gid: 0, nlink: 1 }
const dirStat = { mtime: now, atime: now, ctime: now, size: 4096, mode: 0o040755, uid: 0, gid: 0, nlink: 2 }

const ops = {
  readdir: (path, cb) => cb(0, path === '/' ? ['lv0'] : []),
  getattr: (path, cb) => {
    if (path === '/') return cb(0, dirStat)
    if (path === '/lv0') return cb(0, fileStat)
    return cb(Fuse.ENOENT)
  },
  open: (path, flags, cb) => cb(0, 42),
  release: (path, handle, cb) => cb(0),
  read: (path, handle, buf, len, pos, cb) => {
    fs.read(fd, buf, 0, len, pos, (err, n) => cb(err ? Fuse.EIO : n))
  },
  write: (path, handle, buf, len, pos, cb) => {
    fs.write(fd, buf, 0, len, pos, (err, n) => cb(err ? Fuse.EIO : n))
  },
  fsync: (path, datasync, handle, cb) => fs.fdatasync(fd, (err) => cb(err ? Fuse.EIO : 0)),
  truncate: (path, length, cb) => cb(0),
  ftruncate: (path, handle, length, cb) => cb(0),
}

const fuse = new Fuse(mountpoint, ops, { force: true, mkdir: true, directIO: true })
fuse.mount((err) => {
  if (err) { console.error('mount failed', err); process.exit(1) }
  process.stdout.write('{"ready":true}\n')
})
const stop = () => fuse.unmount(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
