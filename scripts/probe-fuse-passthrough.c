// Probe: does FUSE passthrough (FUSE_DEV_IOC_BACKING_OPEN) take a loop block device as its
// backing, or only regular files? Evidence for docs/block-devices.md. Mounts an empty FUSE file
// system at MNT, answers INIT with FUSE_PASSTHROUGH, tries each PATH as a backing file, prints
// the kernel's answer and detaches. Root only.
//   cc -O2 -o probe scripts/probe-fuse-passthrough.c && ./probe MNT /dev/loopN FILE
// Linux 6.18 (FUSE 7.45): /dev/loopN -> EINVAL, a regular file -> backing id 1.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>
struct in_hdr { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid; uint16_t total_extlen, padding; };
struct out_hdr { uint32_t len; int32_t error; uint64_t unique; };
struct init_in { uint32_t major, minor, max_readahead, flags, flags2, unused[11]; };
struct init_out { uint32_t major, minor, max_readahead, flags; uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran; uint16_t max_pages, map_alignment; uint32_t flags2, max_stack_depth; uint16_t request_timeout; uint16_t unused16; uint32_t unused[5]; };
struct backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define BACKING_OPEN _IOW(229, 1, struct backing_map)
int main(int argc, char **argv) {
  int fd = open("/dev/fuse", O_RDWR);
  char opts[128]; snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
  if (mount("probe", argv[1], "fuse.probe", 0, opts)) { perror("mount"); return 1; }
  static char buf[1 << 21];
  ssize_t n = read(fd, buf, sizeof buf);
  struct in_hdr *h = (struct in_hdr *)buf; struct init_in *in = (struct init_in *)(buf + sizeof *h);
  printf("INIT %zd op %u kernel %u.%u flags %#x flags2 %#x\n", n, h->opcode, in->major, in->minor, in->flags, in->flags2);
  struct { struct out_hdr h; struct init_out o; } rep; memset(&rep, 0, sizeof rep);
  rep.h.len = sizeof rep; rep.h.unique = h->unique;
  rep.o.major = 7; rep.o.minor = in->minor; rep.o.max_readahead = in->max_readahead;
  rep.o.flags = (1u << 30) /* INIT_EXT */ | (1u << 22) /* MAX_PAGES */;
  rep.o.flags2 = 1u << 5; /* PASSTHROUGH = bit 37 */
  rep.o.max_stack_depth = 1; rep.o.max_write = 1 << 20; rep.o.max_pages = 256; rep.o.max_background = 16;
  if (write(fd, &rep, sizeof rep) < 0) perror("init reply");
  for (int i = 2; i < argc; i++) {
    int bfd = open(argv[i], O_RDWR);
    struct backing_map map = { .fd = bfd };
    int id = ioctl(fd, BACKING_OPEN, &map);
    printf("%s: fd %d -> backing id %d (%s)\n", argv[i], bfd, id, id < 0 ? strerror(errno) : "ok");
  }
  umount2(argv[1], MNT_DETACH);
  return 0;
}
