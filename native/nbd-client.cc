// NBD client connections over libnbd (Red Hat's NBD client library: fixed newstyle handshake,
// structured replies, FLUSH, FUA, TRIM). One I/O thread per connection drives libnbd's
// asynchronous API, so many requests are in flight at once, and enforces a per-request
// deadline, which libnbd does not have: a server that stops answering fails every request in
// flight with ETIMEDOUT and the connection is dead from then on (the PV layer reconnects by
// opening the device again).
#include "nbd-client.h"

#include "errors.h"
#include "remote-target.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace lvmfs {

namespace {

using Clock = std::chrono::steady_clock;

enum class OpKind { kConnect, kRead, kWrite, kFlush, kTrim, kZero, kClose };

struct ExportInfo {
  int64_t sizeBytes = 0;
  bool readOnly = false;
  bool canFlush = false;
  bool canFua = false;
  bool canTrim = false;
  bool canZero = false;
  int64_t minimumBlockBytes = 0;
  int64_t maximumBlockBytes = 0;
};

// One request from JavaScript. Created and settled on the JS thread; between the two it
// belongs to the connection's I/O thread.
struct Op {
  OpKind kind = OpKind::kRead;
  uint8_t* data = nullptr;
  uint64_t length = 0;
  uint64_t offset = 0;
  uint32_t flags = 0;
  int error = 0;
  std::string message;
  Clock::time_point deadline;
  ExportInfo info;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  Napi::Reference<Napi::Value> keepAlive;  // the buffer, while the I/O thread uses its bytes
  RemoteWaiter* waiter = nullptr;          // set for the native data path's transfers
};

const char* SyscallOf(OpKind kind) {
  switch (kind) {
    case OpKind::kConnect: return "nbd_connect_uri";
    case OpKind::kRead: return "nbd_pread";
    case OpKind::kWrite: return "nbd_pwrite";
    case OpKind::kFlush: return "nbd_flush";
    case OpKind::kTrim: return "nbd_trim";
    case OpKind::kZero: return "nbd_zero";
    case OpKind::kClose: return "nbd_shutdown";
  }
  return "nbd";
}

const char* ErrnoName(int err) {
  switch (err) {
    case EIO: return "EIO";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOTCONN: return "ENOTCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ENOTSUP: return "ENOTSUP";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENOMEM: return "ENOMEM";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EACCES: return "EACCES";
    case ECONNABORTED: return "ECONNABORTED";
    case ENETUNREACH: return "ENETUNREACH";
    case EPROTO: return "EPROTO";
    case ESHUTDOWN: return "ESHUTDOWN";
    default: return "EIO";
  }
}

void Settle(Napi::Env env, Op* op) {
  std::unique_ptr<Op> owned(op);
  owned->keepAlive.Reset();
  if (!owned->deferred) return;  // the close a collected connection queued for itself
  if (owned->error != 0) {
    std::string text = std::string(SyscallOf(owned->kind)) + ": " +
                       (owned->message.empty() ? strerror(owned->error) : owned->message);
    Napi::Error error = Napi::Error::New(env, text);
    error.Set("code", Napi::String::New(env, ErrnoName(owned->error)));
    error.Set("errno", Napi::Number::New(env, -owned->error));
    error.Set("syscall", Napi::String::New(env, SyscallOf(owned->kind)));
    owned->deferred->Reject(error.Value());
    return;
  }
  if (owned->kind != OpKind::kConnect) {
    owned->deferred->Resolve(env.Undefined());
    return;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(owned->info.sizeBytes)));
  out.Set("readOnly", Napi::Boolean::New(env, owned->info.readOnly));
  out.Set("canFlush", Napi::Boolean::New(env, owned->info.canFlush));
  out.Set("canFua", Napi::Boolean::New(env, owned->info.canFua));
  out.Set("canTrim", Napi::Boolean::New(env, owned->info.canTrim));
  out.Set("canZero", Napi::Boolean::New(env, owned->info.canZero));
  out.Set("minimumBlockBytes", Napi::Number::New(env, static_cast<double>(owned->info.minimumBlockBytes)));
  out.Set("maximumBlockBytes", Napi::Number::New(env, static_cast<double>(owned->info.maximumBlockBytes)));
  owned->deferred->Resolve(out);
}

// The state shared by the JS object and its I/O thread.
class Connection : public RemoteTarget {
 public:
  Connection(std::string uri, int timeoutMs)
      : uri_(std::move(uri)), timeout_(std::chrono::milliseconds(timeoutMs)) {
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  ~Connection() override {
    if (wake_ >= 0) close(wake_);
  }

  bool Start(RemoteOp kind, uint8_t* buffer, uint64_t length, uint64_t offset, RemoteWaiter* waiter) override {
    if (!started()) return false;
    auto* op = new Op();
    op->kind = kind == RemoteOp::kRead ? OpKind::kRead : kind == RemoteOp::kWrite ? OpKind::kWrite
             : kind == RemoteOp::kFlush ? OpKind::kFlush : OpKind::kZero;
    op->data = buffer;
    op->length = length;
    op->offset = offset;
    op->waiter = waiter;
    if (Submit(op)) return true;
    delete op;
    return false;
  }

  // Queues `op`; false when the connection is closed (the caller settles it).
  bool Submit(Op* op) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return false;
      queue_.push_back(op);
    }
    uint64_t one = 1;
    ssize_t ignored = write(wake_, &one, sizeof(one));
    (void)ignored;
    return true;
  }

  // The thread-safe function lives as long as the thread, so an open connection keeps the
  // process alive as a socket does, and one never connected holds nothing.
  void Start(Op* connect, Napi::ThreadSafeFunction settle) {
    settle_ = std::move(settle);
    connect->deadline = Clock::now() + timeout_;
    thread_ = std::thread([this, connect]() { Run(connect); });
    started_.store(true, std::memory_order_release);
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Read by data-path threads while the JS thread may be joining: never the std::thread itself.
  bool started() const { return started_.load(std::memory_order_acquire); }

 private:
  void Post(Op* op) {
    if (op->waiter != nullptr) {
      op->waiter->Finish(-op->error);
      delete op;
      return;
    }
    settle_.BlockingCall(op, [](Napi::Env env, Napi::Function, Op* posted) { Settle(env, posted); });
  }

  void Fail(Op* op, int err, const std::string& message) {
    op->error = err;
    op->message = message;
    Post(op);
  }

  static std::string LastError() {
    const char* text = nbd_get_error();
    return text == nullptr ? std::string() : std::string(text);
  }

  static int LastErrno(int fallback) {
    int err = nbd_get_errno();
    return err == 0 ? fallback : err;
  }

  static int Completed(void* user, int* error) {
    auto* self = static_cast<std::pair<Connection*, Op*>*>(user);
    Connection* connection = self->first;
    Op* op = self->second;
    delete self;
    if (connection->inflight_.erase(op) == 0) return 1;  // already failed by a timeout
    op->error = *error;
    connection->Post(op);
    return 1;
  }

  // Waits for the handle's socket (or the wake fd) until `deadline`; false on timeout.
  bool Wait(Clock::time_point deadline, bool untilDeadlineOnly) {
    struct pollfd fds[2] = {};
    int count = 0;
    int nbdFd = handle_ == nullptr ? -1 : nbd_aio_get_fd(handle_);
    if (nbdFd >= 0) {
      unsigned direction = nbd_aio_get_direction(handle_);
      fds[count].fd = nbdFd;
      fds[count].events = static_cast<short>(((direction & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                             ((direction & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
      count++;
    }
    fds[count].fd = wake_;
    fds[count].events = POLLIN;
    int wakeIndex = count++;
    int timeoutMs = -1;
    if (untilDeadlineOnly || deadline != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      timeoutMs = left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left + 1, 60000));
    }
    int ready = poll(fds, count, timeoutMs);
    if (ready < 0) return true;
    if (fds[wakeIndex].revents & POLLIN) {
      uint64_t value;
      ssize_t ignored = read(wake_, &value, sizeof(value));
      (void)ignored;
    }
    if (nbdFd >= 0 && wakeIndex == 1) {
      short revents = fds[0].revents;
      if (revents & (POLLIN | POLLHUP | POLLERR)) nbd_aio_notify_read(handle_);
      else if (revents & POLLOUT) nbd_aio_notify_write(handle_);
    }
    return Clock::now() < deadline;
  }

  bool ConnectHandle(Op* op) {
    handle_ = nbd_create();
    if (handle_ == nullptr) {
      Fail(op, LastErrno(ENOMEM), LastError());
      return false;
    }
    nbd_set_request_structured_replies(handle_, true);
    // A remote PV is addressed only by nbd:// and nbd+unix:// URIs; never a local program.
    nbd_set_uri_allow_transports(handle_, LIBNBD_ALLOW_TRANSPORT_TCP | LIBNBD_ALLOW_TRANSPORT_UNIX);
    if (nbd_aio_connect_uri(handle_, uri_.c_str()) == -1) {
      Fail(op, LastErrno(EINVAL), LastError());
      return false;
    }
    while (!nbd_aio_is_ready(handle_)) {
      if (nbd_aio_is_dead(handle_) || nbd_aio_is_closed(handle_)) {
        Fail(op, LastErrno(ECONNREFUSED), LastError());
        return false;
      }
      if (!Wait(op->deadline, true)) {
        Fail(op, ETIMEDOUT, "no answer from the NBD server within the timeout");
        return false;
      }
    }
    op->info.sizeBytes = nbd_get_size(handle_);
    op->info.readOnly = nbd_is_read_only(handle_) == 1;
    op->info.canFlush = nbd_can_flush(handle_) == 1;
    op->info.canFua = nbd_can_fua(handle_) == 1;
    op->info.canTrim = nbd_can_trim(handle_) == 1;
    op->info.canZero = nbd_can_zero(handle_) == 1;
    op->info.minimumBlockBytes = nbd_get_block_size(handle_, LIBNBD_SIZE_MINIMUM);
    op->info.maximumBlockBytes = nbd_get_block_size(handle_, LIBNBD_SIZE_MAXIMUM);
    Post(op);
    return true;
  }

  void Issue(Op* op) {
    op->deadline = Clock::now() + timeout_;
    auto* user = new std::pair<Connection*, Op*>(this, op);
    nbd_completion_callback done = {Completed, user, nullptr};
    int64_t cookie = -1;
    inflight_.insert(op);
    switch (op->kind) {
      case OpKind::kRead: cookie = nbd_aio_pread(handle_, op->data, op->length, op->offset, done, 0); break;
      case OpKind::kWrite: cookie = nbd_aio_pwrite(handle_, op->data, op->length, op->offset, done, op->flags); break;
      case OpKind::kFlush: cookie = nbd_aio_flush(handle_, done, 0); break;
      case OpKind::kTrim: cookie = nbd_aio_trim(handle_, op->length, op->offset, done, 0); break;
      // Without NBD_CMD_FLAG_NO_HOLE the server may punch the range: reads return zeros after.
      case OpKind::kZero: cookie = nbd_aio_zero(handle_, op->length, op->offset, done, 0); break;
      default: break;
    }
    if (cookie == -1) {
      // libnbd frees the callback's user data only through .free, which we do not set.
      delete user;
      inflight_.erase(op);
      Fail(op, LastErrno(EIO), LastError());
    }
  }

  // Fails every request in flight and drops the handle: after a timeout or a lost socket the
  // server's view of those requests is unknown, and the connection is not used again.
  void Die(int err, const std::string& message) {
    std::vector<Op*> failed(inflight_.begin(), inflight_.end());
    inflight_.clear();
    if (handle_ != nullptr) {
      nbd_close(handle_);
      handle_ = nullptr;
    }
    dead_ = err;
    deadMessage_ = message;
    for (Op* op : failed) Fail(op, err, message);
  }

  Clock::time_point OldestDeadline() const {
    Clock::time_point deadline = Clock::time_point::max();
    for (Op* op : inflight_) deadline = std::min(deadline, op->deadline);
    return deadline;
  }

  void Run(Op* connect) {
    if (!ConnectHandle(connect)) {
      if (handle_ != nullptr) nbd_close(handle_);
      handle_ = nullptr;
      dead_ = ENOTCONN;
      deadMessage_ = "the NBD connection was never established";
    }
    Op* closing = nullptr;
    for (;;) {
      std::deque<Op*> taken;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        taken.swap(queue_);
      }
      for (Op* op : taken) {
        if (op->kind == OpKind::kClose) closing = op;
        else if (dead_ != 0 || closing != nullptr) Fail(op, dead_ != 0 ? dead_ : ENOTCONN, deadMessage_);
        else Issue(op);
      }
      if (closing != nullptr && inflight_.empty()) break;
      Wait(OldestDeadline(), false);
      if (handle_ != nullptr && (nbd_aio_is_dead(handle_) || nbd_aio_is_closed(handle_))) {
        std::string why = LastError();
        Die(LastErrno(ECONNRESET), "the NBD server closed the connection" + (why.empty() ? "" : ": " + why));
      }
      if (!inflight_.empty() && Clock::now() >= OldestDeadline()) {
        Die(ETIMEDOUT, "no answer from the NBD server within the timeout");
      }
    }
    if (handle_ != nullptr) {
      // Nothing is in flight (flush is the durability barrier); a disconnect that the server
      // never acknowledges must not hang the close, so it is sent and the socket dropped.
      nbd_aio_disconnect(handle_, 0);
      nbd_close(handle_);
      handle_ = nullptr;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      for (Op* op : queue_) Fail(op, ENOTCONN, "the NBD connection is closed");
      queue_.clear();
    }
    Post(closing);
    settle_.Release();
  }

  const std::string uri_;
  const std::chrono::milliseconds timeout_;
  Napi::ThreadSafeFunction settle_;
  int wake_ = -1;
  std::thread thread_;
  std::atomic<bool> started_{false};
  std::mutex mutex_;
  std::deque<Op*> queue_;
  bool closed_ = false;
  // Touched by the I/O thread only.
  struct nbd_handle* handle_ = nullptr;
  std::unordered_set<Op*> inflight_;
  int dead_ = 0;
  std::string deadMessage_;
};

class NbdConnection : public Napi::ObjectWrap<NbdConnection> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NbdConnection", {
      InstanceMethod("connect", &NbdConnection::Connect),
      InstanceMethod("pread", &NbdConnection::Pread),
      InstanceMethod("pwrite", &NbdConnection::Pwrite),
      InstanceMethod("flush", &NbdConnection::Flush),
      InstanceMethod("trim", &NbdConnection::Trim),
      InstanceMethod("zero", &NbdConnection::Zero),
      InstanceMethod("close", &NbdConnection::Close),
      InstanceMethod("dataFd", &NbdConnection::DataFd),
    });
  }

  explicit NbdConnection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NbdConnection>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "new NbdConnection(uri, timeoutMs)").ThrowAsJavaScriptException();
      return;
    }
    int timeoutMs = info[1].As<Napi::Number>().Int32Value();
    if (timeoutMs <= 0) timeoutMs = 30000;
    connection_ = std::make_shared<Connection>(info[0].As<Napi::String>().Utf8Value(), timeoutMs);
  }

  ~NbdConnection() override {
    ReleaseDataFd();
    // The JS object is collected only after close() settled (the device keeps it until then);
    // a connection that was never closed is shut down here so its thread does not outlive it.
    if (connection_ && connection_->started()) {
      auto* op = new Op();
      op->kind = OpKind::kClose;
      if (!connection_->Submit(op)) delete op;
      connection_->Join();
    }
  }

 private:
  Op* NewOp(Napi::Env env, OpKind kind) {
    Op* op = new Op();
    op->kind = kind;
    op->deferred = std::make_unique<Napi::Promise::Deferred>(env);
    return op;
  }

  Napi::Value Enqueue(Napi::Env env, Op* op) {
    Napi::Promise promise = op->deferred->Promise();
    if (!connection_->started() || !connection_->Submit(op)) {
      op->error = ENOTCONN;
      op->message = "the NBD connection is not open";
      Settle(env, op);
    }
    return promise;
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Op* op = NewOp(info.Env(), OpKind::kConnect);
    Napi::Promise promise = op->deferred->Promise();
    if (connection_->started()) {
      op->error = EINVAL;
      op->message = "connect() was already called";
      Settle(info.Env(), op);
    } else {
      connection_->Start(op, Napi::ThreadSafeFunction::New(
          info.Env(), Napi::Function::New(info.Env(), [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
          "lvmfs-nbd", 0, 1));
    }
    return promise;
  }

  // pread(buffer, offset) / pwrite(buffer, offset, fua)
  Napi::Value Transfer(const Napi::CallbackInfo& info, OpKind kind) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "(buffer, offsetBytes)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::TypedArray array = info[0].As<Napi::TypedArray>();
    Op* op = NewOp(env, kind);
    op->data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    op->length = array.ByteLength();
    op->offset = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    if (kind == OpKind::kWrite && info.Length() > 2 && info[2].ToBoolean()) op->flags = LIBNBD_CMD_FLAG_FUA;
    op->keepAlive = Napi::Persistent(info[0]);
    return Enqueue(env, op);
  }

  Napi::Value Pread(const Napi::CallbackInfo& info) { return Transfer(info, OpKind::kRead); }
  Napi::Value Pwrite(const Napi::CallbackInfo& info) { return Transfer(info, OpKind::kWrite); }

  Napi::Value Flush(const Napi::CallbackInfo& info) { return Enqueue(info.Env(), NewOp(info.Env(), OpKind::kFlush)); }

  Napi::Value Trim(const Napi::CallbackInfo& info) { return Range(info, OpKind::kTrim); }
  Napi::Value Zero(const Napi::CallbackInfo& info) { return Range(info, OpKind::kZero); }

  // trim(offsetBytes, lengthBytes) / zero(offsetBytes, lengthBytes)
  Napi::Value Range(const Napi::CallbackInfo& info, OpKind kind) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "(offsetBytes, lengthBytes)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Op* op = NewOp(env, kind);
    op->offset = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    op->length = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    return Enqueue(env, op);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ReleaseDataFd();
    Op* op = NewOp(env, OpKind::kClose);
    Napi::Promise promise = op->deferred->Promise();
    if (!connection_->started()) {
      Settle(env, op);
    } else if (!connection_->Submit(op)) {
      op->error = ENOTCONN;
      op->message = "the NBD connection is already closed";
      Settle(env, op);
    }
    return promise;
  }

  // dataFd(): the token fd by which volume maps address this export (remote-target.h).
  Napi::Value DataFd(const Napi::CallbackInfo& info) {
    if (dataFd_ < 0) {
      dataFd_ = eventfd(0, EFD_CLOEXEC);
      if (dataFd_ < 0) return ThrowErrno(info.Env(), errno, "eventfd");
      RegisterRemoteFd(dataFd_, connection_);
    }
    return Napi::Number::New(info.Env(), dataFd_);
  }

  void ReleaseDataFd() {
    if (dataFd_ < 0) return;
    UnregisterRemoteFd(dataFd_);
    close(dataFd_);
    dataFd_ = -1;
  }

  std::shared_ptr<Connection> connection_;
  int dataFd_ = -1;
};

}  // namespace

void InitNbdClient(Napi::Env env, Napi::Object exports) {
  exports.Set("NbdConnection", NbdConnection::Define(env));
}

}  // namespace lvmfs
