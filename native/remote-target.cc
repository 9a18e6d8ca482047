#include "remote-target.h"

#include <unordered_map>

namespace lvmfs {

namespace {

std::mutex& RegistryMutex() {
  static std::mutex mutex;
  return mutex;
}

std::unordered_map<int, std::shared_ptr<RemoteTarget>>& Registry() {
  static auto* registry = new std::unordered_map<int, std::shared_ptr<RemoteTarget>>();
  return *registry;
}

}  // namespace

void RegisterRemoteFd(int fd, std::shared_ptr<RemoteTarget> target) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry()[fd] = std::move(target);
}

void UnregisterRemoteFd(int fd) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().erase(fd);
}

std::shared_ptr<RemoteTarget> LookupRemoteFd(int fd) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto found = Registry().find(fd);
  return found == Registry().end() ? nullptr : found->second;
}

}  // namespace lvmfs
