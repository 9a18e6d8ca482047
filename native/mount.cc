#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lvmfs {

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
  do {
    received = recvmsg(socket, &message, 0);
  } while (received < 0 && errno == EINTR);
  if (received <= 0) return -EIO;
  struct cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS) return -EIO;
  int fd;
  memcpy(&fd, CMSG_DATA(header), sizeof(fd));
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

static int MountWithFusermount(const MountOptions& options, std::string* error) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) {
    *error = "socketpair";
    return -errno;
  }
  std::string opts = "fsname=" + options.fsname + ",subtype=" + options.subtype +
                     ",max_read=" + std::to_string(options.maxRead);
  if (options.allowOther) opts += ",allow_other";
  if (options.defaultPermissions) opts += ",default_permissions";
  pid_t child = fork();
  if (child < 0) {
    *error = "fork";
    return -errno;
  }
  if (child == 0) {
    close(pair[1]);
    fcntl(pair[0], F_SETFD, 0);
    std::string commfd = std::to_string(pair[0]);
    setenv("_FUSE_COMMFD", commfd.c_str(), 1);
    execlp("fusermount3", "fusermount3", "-o", opts.c_str(), "--", options.mountpoint.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pair[0]);
  int fd = ReceiveFd(pair[1]);
  close(pair[1]);
  int status = 0;
  waitpid(child, &status, 0);
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
  pid_t child = fork();
  if (child < 0) return -errno;
  if (child == 0) {
    if (lazy) {
      execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint.c_str(),
             static_cast<char*>(nullptr));
    } else {
      execlp("fusermount3", "fusermount3", "-u", "--", mountpoint.c_str(),
             static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

}  // namespace lvmfs
