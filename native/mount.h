// Mounting and unmounting a FUSE file system without libfuse: mount(2) as root, the
// fusermount3 fd-passing protocol otherwise (spawned with posix_spawnp, which is safe to call
// from any thread of a multithreaded process).
#pragma once
#include <string>

namespace lvmfs {

struct MountOptions {
  std::string mountpoint;
  std::string fsname;
  std::string subtype;
  bool allowOther = true;
  bool defaultPermissions = true;
  unsigned maxRead = 1 << 20;
};

// Returns the /dev/fuse fd bound to the new mount, or -errno; `error` says which step failed.
int MountFuse(const MountOptions& options, std::string* error);
// umount2(2); returns 0 or -errno. Non-root callers fall back to `fusermount3 -u [-z]`.
int UnmountPath(const std::string& mountpoint, bool lazy);

}  // namespace lvmfs
