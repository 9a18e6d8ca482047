// The crash torture's content model (test/helpers/torture-content.ts). CI once failed on a sector
// whose first 1472 bytes held the write acknowledged short (1045952 of 1048576 bytes: the kernel
// split the O_DIRECT write where the unaligned user buffer's pages split, and the daemon died
// between the two FUSE requests) and the rest the write before it. That is what the daemon was
// told to keep, so the checker must accept exactly that splice and nothing looser.
import t from 'tap'
import { SECTOR_BYTES, fillSectors, isSplice, sectorContent } from '../../helpers/torture-content.js'

const tag = 1608041287
const sectorIndex = 9727

function splice(prefixGen: number, prefixBytes: number, suffixGen: number): Buffer {
  const sector = Buffer.alloc(SECTOR_BYTES)
  if (suffixGen !== 0) fillSectors(sector, tag, sectorIndex, suffixGen)
  const prefix = Buffer.alloc(SECTOR_BYTES)
  fillSectors(prefix, tag, sectorIndex, prefixGen)
  prefix.copy(sector, 0, 0, prefixBytes)
  return sector
}

t.test('isSplice: the acknowledged prefix over the older write, at exactly the acknowledged length', async (t) => {
  const sector = splice(2195, 1472, 1680)
  t.ok('torn' in sectorContent(sector, tag, sectorIndex), 'a splice is no single write')
  t.ok(isSplice(sector, tag, sectorIndex, 2195, 1472, 1680), 'the splice the short acknowledgement allows')
  t.notOk(isSplice(sector, tag, sectorIndex, 2195, 1408, 1680), 'another cut')
  t.notOk(isSplice(sector, tag, sectorIndex, 1680, 1472, 2195), 'the generations the other way round')
  t.notOk(isSplice(sector, tag, sectorIndex, 2195, 1472, 1679), 'another older write')
  t.notOk(isSplice(splice(2195, 1472, 1680), tag, sectorIndex + 1, 2195, 1472, 1680), 'another sector')
  t.ok(isSplice(splice(7, 512, 0), tag, sectorIndex, 7, 512, 0), 'over a never-written sector (zeros)')
})
