// probe-fuse-uring: the ceiling of FUSE over io_uring on this machine, against /dev/fuse, for a
// one-file server whose backing I/O is a plain file with O_DIRECT (issue 16, docs/fuse-uring.md).
//
//   cc -O2 -o /tmp/probe-fuse-uring scripts/probe-fuse-uring.c -l:liburing.a -lpthread
//   /tmp/probe-fuse-uring MODE MOUNTPOINT BACKING_FILE     (MODE: dev | uring; root)
//
// It mounts MOUNTPOINT with one regular file, `f`, the size of BACKING_FILE, and serves it until
// SIGINT/SIGTERM or unmount. `dev`: 32 threads, each on its own cloned /dev/fuse fd, read a
// request, pread/pwrite it and write the reply (lvmfs's transport today). `uring`: INIT asks for
// FUSE_OVER_IO_URING; one thread per possible CPU, pinned, owns one ring with DEPTH entries of
// its queue; a READ or WRITE goes to the backing file as an SQE on the same ring, and its
// completion commits the reply and fetches the next request (COMMIT_AND_FETCH): no thread waits
// on the disk, so the queue depth is the entry count, not the thread count. FORGET and INTERRUPT
// still arrive on /dev/fuse, which one thread keeps reading.
//
// A probe, not part of lvmfs: it answers only what fio and stat need and trusts the kernel.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

// Not in Debian 12's <linux/fuse.h> (7.38); the kernel's uapi since 7.42.
#define PROBE_OVER_IO_URING (1ULL << 41)
#define PROBE_CMD_REGISTER 1
#define PROBE_CMD_COMMIT_AND_FETCH 2
struct probe_ent_in_out { uint64_t flags, commit_id; uint32_t payload_sz, padding; uint64_t reserved; };
struct probe_req_header { char in_out[128]; char op_in[128]; struct probe_ent_in_out ent; };
struct probe_cmd_req { uint64_t flags, commit_id; uint16_t qid; uint8_t padding[6]; };
#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(229, 0, uint32_t)
#endif

enum { kMaxWrite = 1 << 20, kDevThreads = 32, kDepth = 32, kFileNode = 2 };
static int fuseFd = -1, backingFd = -1;
static uint64_t fileSize;
static int uringMode;
static volatile sig_atomic_t stopping;

static void Attr(struct fuse_attr* attr, uint64_t node) {
  memset(attr, 0, sizeof(*attr));
  attr->ino = node;
  attr->mode = node == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  attr->nlink = node == FUSE_ROOT_ID ? 2 : 1;
  attr->size = node == FUSE_ROOT_ID ? 0 : fileSize;
  attr->blocks = attr->size / 512;
  attr->blksize = 4096;
}

// Answers a request that needs no backing I/O into `out` (its payload); returns the payload
// size, or a negative errno. READ/WRITE are the caller's.
static int Answer(const struct fuse_in_header* in, const void* op, const void* rest, void* out) {
  switch (in->opcode) {
    case FUSE_INIT: {
      const struct fuse_init_in* init = op;
      struct fuse_init_out* reply = out;
      memset(reply, 0, sizeof(*reply));
      reply->major = FUSE_KERNEL_VERSION;
      reply->minor = init->minor;
      reply->max_readahead = init->max_readahead;
      uint64_t wanted = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_INIT_EXT |
                        FUSE_PARALLEL_DIROPS | FUSE_ASYNC_DIO;
      if (uringMode) wanted |= PROBE_OVER_IO_URING;
      uint64_t offered = init->flags | ((uint64_t)init->flags2 << 32);
      if (uringMode && !(offered & PROBE_OVER_IO_URING)) {
        fprintf(stderr, "probe: the kernel did not offer FUSE_OVER_IO_URING (enable_uring is N?)\n");
      }
      uint64_t granted = wanted & offered;
      reply->flags = (uint32_t)granted;
      reply->flags2 = (uint32_t)(granted >> 32);
      reply->max_background = 128;
      reply->congestion_threshold = 96;
      reply->max_write = kMaxWrite;
      reply->time_gran = 1;
      reply->max_pages = kMaxWrite / 4096;
      return sizeof(*reply);
    }
    case FUSE_LOOKUP: {
      const char* name = in->len > sizeof(*in) ? rest : "";
      if (in->nodeid != FUSE_ROOT_ID || strcmp(name, "f") != 0) return -ENOENT;
      struct fuse_entry_out* entry = out;
      memset(entry, 0, sizeof(*entry));
      entry->nodeid = kFileNode;
      entry->attr_valid = 3600;
      entry->entry_valid = 3600;
      Attr(&entry->attr, kFileNode);
      return sizeof(*entry);
    }
    case FUSE_GETATTR: {
      struct fuse_attr_out* attr = out;
      memset(attr, 0, sizeof(*attr));
      attr->attr_valid = 3600;
      Attr(&attr->attr, in->nodeid);
      return sizeof(*attr);
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      struct fuse_open_out* open = out;
      memset(open, 0, sizeof(*open));
      if (in->opcode == FUSE_OPEN) open->open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
      return sizeof(*open);
    }
    case FUSE_RELEASE: case FUSE_RELEASEDIR: case FUSE_FLUSH: case FUSE_FSYNC: return 0;
    case FUSE_READDIR: return 0;  // an empty listing: fio opens by name
    default: return -ENOSYS;
  }
}

static int NoReply(uint32_t opcode) {
  return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT;
}

// --- /dev/fuse ---------------------------------------------------------------------------------

static void* DevLoop(void* arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t* buffer;
  if (posix_memalign((void**)&buffer, 4096, 4096 + kMaxWrite) != 0) return NULL;
  // The request lands so that a WRITE's data starts page-aligned (for O_DIRECT on the backing).
  uint8_t* request = buffer + 4096 - sizeof(struct fuse_in_header) - sizeof(struct fuse_write_in);
  uint8_t* reply = buffer + 4096;
  while (!stopping) {
    ssize_t n = read(fd, request, 4096 + kMaxWrite - (request - buffer));
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
      break;
    }
    const struct fuse_in_header* in = (const void*)request;
    const void* op = request + sizeof(*in);
    if (NoReply(in->opcode)) continue;
    int result;
    if (in->opcode == FUSE_READ) {
      const struct fuse_read_in* read_in = op;
      result = (int)pread(backingFd, reply, read_in->size, (off_t)read_in->offset);
      if (result < 0) result = -errno;
    } else if (in->opcode == FUSE_WRITE) {
      const struct fuse_write_in* write_in = op;
      ssize_t written = pwrite(backingFd, request + sizeof(*in) + sizeof(*write_in), write_in->size,
                               (off_t)write_in->offset);
      struct fuse_write_out* wout = (void*)reply;
      memset(wout, 0, sizeof(*wout));
      wout->size = written < 0 ? 0 : (uint32_t)written;
      result = written < 0 ? -errno : (int)sizeof(*wout);
    } else {
      result = Answer(in, op, op, reply);
    }
    struct fuse_out_header out = {.unique = in->unique};
    struct iovec iov[2] = {{&out, sizeof(out)}, {reply, result > 0 ? (size_t)result : 0}};
    out.error = result < 0 ? result : 0;
    out.len = sizeof(out) + (result > 0 ? (uint32_t)result : 0);
    if (writev(fd, iov, result > 0 ? 2 : 1) < 0 && errno != ENOENT) perror("probe: writev");
  }
  free(buffer);
  return NULL;
}

// --- io_uring ----------------------------------------------------------------------------------

struct Entry {
  struct probe_req_header header __attribute__((aligned(64)));
  uint8_t* payload;
  uint64_t unique;
  uint32_t opcode;
};
struct Queue {
  int qid;
  struct io_uring ring;
  struct Entry entries[kDepth];
};
enum { kTagFuse = 0, kTagBacking = 1 };

static struct io_uring_sqe* Sqe(struct io_uring* ring) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

static void FuseCmd(struct Queue* queue, int index, uint32_t command) {
  struct Entry* entry = &queue->entries[index];
  struct io_uring_sqe* sqe = Sqe(&queue->ring);
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fuseFd, NULL, 0, 0);
  sqe->cmd_op = command;
  memset(sqe->cmd, 0, 80);  // SQE128: the command lives in the 80 bytes after the first 48
  static __thread struct iovec iov[kDepth][2];
  if (command == PROBE_CMD_REGISTER) {
    iov[index][0] = (struct iovec){&entry->header, sizeof(entry->header)};
    iov[index][1] = (struct iovec){entry->payload, kMaxWrite};
    sqe->addr = (uint64_t)(uintptr_t)iov[index];
    sqe->len = 2;
  }
  struct probe_cmd_req* req = (void*)sqe->cmd;
  req->qid = (uint16_t)queue->qid;
  req->commit_id = command == PROBE_CMD_COMMIT_AND_FETCH ? entry->unique : 0;
  io_uring_sqe_set_data64(sqe, ((uint64_t)index << 1) | kTagFuse);
}

static void Commit(struct Queue* queue, int index, int result) {
  struct Entry* entry = &queue->entries[index];
  struct fuse_out_header* out = (void*)entry->header.in_out;
  out->unique = entry->unique;
  out->error = result < 0 ? result : 0;
  out->len = sizeof(*out) + (result > 0 ? (uint32_t)result : 0);
  entry->header.ent.payload_sz = result > 0 ? (uint32_t)result : 0;
  FuseCmd(queue, index, PROBE_CMD_COMMIT_AND_FETCH);
}

static void OnRequest(struct Queue* queue, int index) {
  struct Entry* entry = &queue->entries[index];
  const struct fuse_in_header* in = (const void*)entry->header.in_out;
  const void* op = entry->header.op_in;
  entry->unique = in->unique;
  entry->opcode = in->opcode;
  if (in->opcode == FUSE_READ || in->opcode == FUSE_WRITE) {
    struct io_uring_sqe* sqe = Sqe(&queue->ring);
    if (in->opcode == FUSE_READ) {
      const struct fuse_read_in* read_in = op;
      io_uring_prep_read(sqe, backingFd, entry->payload, read_in->size, read_in->offset);
    } else {
      const struct fuse_write_in* write_in = op;
      io_uring_prep_write(sqe, backingFd, entry->payload, write_in->size, write_in->offset);
    }
    io_uring_sqe_set_data64(sqe, ((uint64_t)index << 1) | kTagBacking);
    return;
  }
  uint8_t scratch[256];
  // Since 7.42 a request's first argument is always its op header, possibly empty (LOOKUP's
  // name is then in the payload); before, a LOOKUP's name was that first argument.
  const void* rest = entry->header.ent.payload_sz > 0 ? (const void*)entry->payload : op;
  int result = Answer(in, op, rest, scratch);
  if (result > 0) memcpy(entry->payload, scratch, (size_t)result);
  Commit(queue, index, result);
}

static void OnBacking(struct Queue* queue, int index, int res) {
  struct Entry* entry = &queue->entries[index];
  if (entry->opcode == FUSE_WRITE && res >= 0) {
    struct fuse_write_out* wout = (void*)entry->payload;
    memset(wout, 0, sizeof(*wout));
    wout->size = (uint32_t)res;
    res = sizeof(*wout);
  }
  Commit(queue, index, res);
}

static void* UringLoop(void* arg) {
  struct Queue* queue = arg;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(queue->qid, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
  struct io_uring_params params = {.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN |
                                            IORING_SETUP_SINGLE_ISSUER};
  int err = io_uring_queue_init_params(kDepth * 4, &queue->ring, &params);
  if (err < 0) {
    fprintf(stderr, "probe: io_uring_queue_init: %s\n", strerror(-err));
    return NULL;
  }
  for (int i = 0; i < kDepth; i++) {
    if (posix_memalign((void**)&queue->entries[i].payload, 4096, kMaxWrite) != 0) return NULL;
    FuseCmd(queue, i, PROBE_CMD_REGISTER);
  }
  int registered = 0;
  while (!stopping) {
    io_uring_submit_and_wait(&queue->ring, 1);
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&queue->ring, head, cqe) {
      seen++;
      uint64_t data = io_uring_cqe_get_data64(cqe);
      int index = (int)(data >> 1);
      if ((data & 1) == kTagBacking) {
        OnBacking(queue, index, cqe->res);
      } else if (cqe->res == -EAGAIN && !registered) {
        FuseCmd(queue, index, PROBE_CMD_REGISTER);  // INIT not answered yet: try again
        usleep(1000);
      } else if (cqe->res < 0) {
        if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED)
          fprintf(stderr, "probe: queue %d entry %d: %s\n", queue->qid, index, strerror(-cqe->res));
        stopping = 1;
      } else {
        registered = 1;
        OnRequest(queue, index);
      }
    }
    io_uring_cq_advance(&queue->ring, seen);
  }
  io_uring_queue_exit(&queue->ring);
  return NULL;
}

static void OnSignal(int sig) { (void)sig; stopping = 1; }

int main(int argc, char** argv) {
  if (argc != 4 || (strcmp(argv[1], "dev") != 0 && strcmp(argv[1], "uring") != 0)) {
    fprintf(stderr, "usage: %s dev|uring MOUNTPOINT BACKING_FILE\n", argv[0]);
    return 2;
  }
  uringMode = strcmp(argv[1], "uring") == 0;
  backingFd = open(argv[3], O_RDWR | O_DIRECT);
  struct stat st;
  if (backingFd < 0 || fstat(backingFd, &st) != 0) return perror(argv[3]), 1;
  fileSize = (uint64_t)st.st_size;
  fuseFd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuseFd < 0) return perror("/dev/fuse"), 1;
  char options[128];
  snprintf(options, sizeof(options), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fuseFd);
  if (mount("probe", argv[2], "fuse.probe", MS_NOSUID | MS_NODEV, options) != 0) return perror("mount"), 1;
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  int devThreads = uringMode ? 1 : kDevThreads;
  pthread_t threads[kDevThreads + 64];
  int count = 0;
  for (int i = 0; i < devThreads; i++) {
    int fd = fuseFd;
    if (i > 0) {
      fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
      uint32_t source = (uint32_t)fuseFd;
      if (ioctl(fd, FUSE_DEV_IOC_CLONE, &source) != 0) return perror("FUSE_DEV_IOC_CLONE"), 1;
    }
    pthread_create(&threads[count++], NULL, DevLoop, (void*)(intptr_t)fd);
  }
  if (uringMode) {
    int queues = get_nprocs_conf();
    for (int q = 0; q < queues && q < 64; q++) {
      struct Queue* queue = calloc(1, sizeof(*queue));
      queue->qid = q;
      pthread_create(&threads[count++], NULL, UringLoop, queue);
    }
  }
  while (!stopping) pause();
  umount2(argv[2], MNT_DETACH);
  _exit(0);  // the threads are blocked in the kernel; the unmount ends the connection
}
