#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

extern char** environ;

namespace lvmfs {

// The calling process has many threads (libuv pool, readers), so a forked child may only call
// async-signal-safe functions before exec. posix_spawnp gets argv, envp and the fd moves ready
// made and does the fork/exec itself, without running any of our code in the child.

// The fd number the child sees its end of the socketpair under. It is a dup2 target distinct
// from the source fd, because dup2(fd, fd) leaves FD_CLOEXEC set on older glibc.
static int ChildCommFd(int source) { return source == 3 ? 4 : 3; }

// Starts fusermount3 with `commSource` dup2'ed onto `commTarget` (none if negative; the target
// is 3 or 4). The child starts with an empty signal mask and SIGPIPE at its default, whatever
// the calling thread blocked and whatever Node ignores.
static int SpawnFusermount(const char* const argv[], char* const envp[], int commSource,
                           int commTarget, pid_t* child) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int err = posix_spawn_file_actions_init(&actions);
  if (err != 0) return err;
  err = posix_spawnattr_init(&attr);
  if (err != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return err;
  }
  if (commSource >= 0) err = posix_spawn_file_actions_adddup2(&actions, commSource, commTarget);
  // Node marks fds 0-2 close-on-exec, which would leave fusermount3's error messages (say,
  // allow_other refused by /etc/fuse.conf) nowhere. Moving stderr through a spare number clears
  // the flag; dup2(2, 2) would not on older glibc. The comm fd is in place by then.
  const int spare = 5;
  if (err == 0 && fcntl(STDERR_FILENO, F_GETFD) >= 0) {
    err = posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, spare);
    if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, spare, STDERR_FILENO);
    if (err == 0) err = posix_spawn_file_actions_addclose(&actions, spare);
  }
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &empty);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &defaults);
  if (err == 0) {
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  // posix_spawnp takes char* const[] for historical reasons; it does not write to argv.
  if (err == 0) {
    err = posix_spawnp(child, "fusermount3", &actions, &attr, const_cast<char* const*>(argv),
                       envp);
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return err;
}

static int WaitChild(pid_t child) {
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

static int ReceiveFd(int socket) {
  char data = 0;
  struct iovec iov = {&data, 1};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t received;
  // MSG_CMSG_CLOEXEC: a child spawned by another thread meanwhile must not inherit /dev/fuse,
  // or that child would keep the mount alive after we close it.
  do {
    received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received <= 0) return -EIO;
  struct cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
    return -EIO;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(header), sizeof(fd));
  return fd;
}

static int MountWithFusermount(const MountOptions& options, std::string* error) {
  // SOCK_CLOEXEC: only fusermount3 may hold the other end. A copy leaked into a child spawned
  // concurrently elsewhere in the process would hide fusermount3's exit (no EOF on failure).
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    *error = "socketpair";
    return -errno;
  }
  std::string opts = "fsname=" + options.fsname + ",subtype=" + options.subtype +
                     ",max_read=" + std::to_string(options.maxRead);
  if (options.allowOther) opts += ",allow_other";
  if (options.defaultPermissions) opts += ",default_permissions";
  int commFd = ChildCommFd(pair[0]);
  // Our environment, with _FUSE_COMMFD replaced: fusermount3 reads only that variable from it,
  // but PATH and locale still matter to it.
  std::string commEntry = "_FUSE_COMMFD=" + std::to_string(commFd);
  std::vector<char*> envp;
  for (char** entry = environ; *entry != nullptr; entry++) {
    if (strncmp(*entry, "_FUSE_COMMFD=", 13) != 0) envp.push_back(*entry);
  }
  envp.push_back(&commEntry[0]);
  envp.push_back(nullptr);
  const char* argv[] = {"fusermount3", "-o", opts.c_str(), "--", options.mountpoint.c_str(),
                        nullptr};
  pid_t child;
  int err = SpawnFusermount(argv, envp.data(), pair[0], commFd, &child);
  close(pair[0]);
  if (err != 0) {
    close(pair[1]);
    *error = "spawn fusermount3 (is it installed?)";
    return -err;
  }
  int fd = ReceiveFd(pair[1]);
  close(pair[1]);
  WaitChild(child);
  if (fd < 0) *error = "fusermount3 (is it installed, and is /dev/fuse accessible to this user?)";
  return fd;
}

int MountFuse(const MountOptions& options, std::string* error) {
  if (geteuid() != 0) return MountWithFusermount(options, error);
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *error = "open /dev/fuse";
    return -errno;
  }
  struct stat info;
  if (stat(options.mountpoint.c_str(), &info) != 0) {
    int err = errno;
    close(fd);
    *error = "stat mount point";
    return -err;
  }
  char data[512];
  snprintf(data, sizeof(data), "fd=%d,rootmode=%o,user_id=%u,group_id=%u,max_read=%u%s%s", fd,
           S_IFDIR, getuid(), getgid(), options.maxRead,
           options.allowOther ? ",allow_other" : "",
           options.defaultPermissions ? ",default_permissions" : "");
  std::string type = "fuse." + options.subtype;
  if (mount(options.fsname.c_str(), options.mountpoint.c_str(), type.c_str(),
            MS_NOSUID | MS_NODEV, data) != 0) {
    int err = errno;
    close(fd);
    *error = "mount(2)";
    return -err;
  }
  return fd;
}

int UnmountPath(const std::string& mountpoint, bool lazy) {
  if (geteuid() == 0) {
    if (umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) == 0) return 0;
    return -errno;
  }
  const char* path = mountpoint.c_str();
  const char* lazyArgv[] = {"fusermount3", "-u", "-z", "--", path, nullptr};
  const char* plainArgv[] = {"fusermount3", "-u", "--", path, nullptr};
  pid_t child;
  int err = SpawnFusermount(lazy ? lazyArgv : plainArgv, environ, -1, -1, &child);
  if (err != 0) return -err;
  int status = WaitChild(child);
  return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

}  // namespace lvmfs
