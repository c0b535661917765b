// The fast path's byte mover (docs/fast-path.md): moves bytes between two connected TCP sockets
// with splice(2) through one pipe per direction, on its own worker threads with edge-triggered
// epoll, so spliced bytes never enter user space. JavaScript keeps every decision: it admits,
// dials, writes the PROXY header and peeked bytes, then hands the two descriptors over with
// `adopt` (the addon duplicates them; JavaScript then closes its libuv handles synchronously)
// and `run` (only now are the duplicates armed, so libuv and the addon never read or write one
// socket at the same time). A quota-metered pair gets an allowance of bytes and asks for more
// (NEED, with the bytes it has read in all, of which JavaScript debits what it has not yet) when
// it is spent;
// `stop` half-closes both ways once the pipes are flushed; `release` flushes the pipes and hands
// the descriptors back (a bandwidth cap arrived: JavaScript meters the pair from then on). Byte
// counts are stored into a Float64Array owned by JavaScript, and each pair ends with one DONE
// event carrying its final counts and the reason. Depends only on Linux and node-addon-api.
//
// Native accept (docs/fast-path.md, "Native accept"): for a rule with no gate at all, JavaScript
// hands over a duplicate of the LISTENING descriptor (`acceptOn`); every worker polls it with
// EPOLLEXCLUSIVE, accepts, dials the one target with a non-blocking connect (completion by
// EPOLLOUT and SO_ERROR) and splices the pair on the same thread, with no JavaScript per
// connection. Such pairs count into their acceptor's atomic counters (read with `acceptStats`);
// JavaScript hears only of failed connects, of pairs that end in an error, of accepts paused
// because the process is out of descriptors, and of a retired acceptor that has no pair left.
// `acceptOff` stops its accepts under the acceptor's lock and gives the descriptor back, so the
// socket stays bound while JavaScript listens on it again.
#include <napi.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// The pipe capacity asked for with F_SETPIPE_SZ (the reference's 1 MiB); a pipe that cannot be
// grown keeps the kernel's 64 KiB and works the same, only in smaller rounds.
constexpr int kPipeSize = 1 << 20;
constexpr uint64_t kPublishEvery = 64 * 1024;
// A metered read may go this far past its allowance (the JavaScript copy's one 64 KiB chunk), so
// a small allowance still moves a whole request and the overrun stays one chunk.
constexpr int64_t kOverrun = 64 * 1024;
// Empty pipes kept per worker for reuse. Pairs take a pipe only while a direction has bytes in
// flight and give it back as soon as it is empty, so the pool tracks the number of directions
// busy at once (its high-water mark), not the number of open connections.
constexpr size_t kPoolMax = 256;

// Accepts taken per readiness report of a listener: the listener is level-triggered, so the
// rest wait for the next epoll_wait and pairs already open are not starved by a connect storm.
constexpr int kAcceptBatch = 64;
// How long a worker stops polling a listener after accept4 (or the upstream's socket) failed for
// want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). The listener is
// level-triggered: without the pause the pending connection would wake the worker again at once
// and it would spin. Connections wait in the backlog meanwhile, as haproxy pauses its listeners.
constexpr int kAcceptPauseMs = 100;

enum Kind {
  kNeed = 1,
  kDone = 2,
  kPipeSizeFailed = 3,
  kConnectFailed = 4,
  kIdle = 5,
  kHandBack = 6,
  kAcceptPaused = 7,  // native accept: accepts paused for kAcceptPauseMs (errno)
  kConnError = 8      // native accept: a connected pair ended in an error (errno, side)
};
enum Reason {
  kEof = 0,
  kError = 1,
  kQuota = 2,
  kClosed = 3,
  kUnsupported = 4,
  kReleased = 5,
  kConnectError = 6  // native accept only: the dial to the target failed
};
enum Op { kFail, kGrant, kStop, kClose, kRelease, kCloseAcceptor, kReleaseAcceptor };

// A listening socket served by the workers (native accept). Never freed: a worker may still
// hold a readiness report for it after it retired, and a retired acceptor is a few dozen bytes.
struct Acceptor {
  uint32_t id = 0;
  int fd = -1;
  sockaddr_storage target{};
  socklen_t targetLen = 0;
  // The connect deadline, through TCP_USER_TIMEOUT (which bounds the SYN retries too): the
  // kernel fails the connect with ETIMEDOUT at the first retransmission past it.
  unsigned connectTimeoutMs = 0;
  std::mutex mu;        // held by a worker while it accepts; acceptOff takes it to stop them
  bool closed = false;  // under mu
  std::atomic<bool> retired{false};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> bytes[2];
  std::atomic<uint64_t> connectErrors{0};
  std::atomic<uint64_t> connErrors{0};
  std::atomic<uint64_t> acceptPauses{0};
  // The control slot of every pair of this acceptor (as a handed-over pair's third counter):
  // acceptRelease stores kControlRelease here before it wakes the workers, so no pair of it
  // reads another byte once JavaScript has decided that a gate or a quota now applies.
  double control = 0;
  Acceptor() {
    bytes[0] = 0;
    bytes[1] = 0;
  }
};

struct Counters {
  std::atomic<uint64_t> pairs{0};
  std::atomic<uint64_t> pipesCreated{0};
  std::atomic<uint64_t> pipesReused{0};
  std::atomic<uint64_t> pipeSizeFailed{0};
  std::atomic<uint64_t> splices{0};
  std::atomic<uint64_t> wakeups{0};
};

constexpr double kControlRelease = 1;
constexpr double kControlStop = 2;

struct Pipe {
  int r = -1;
  int w = -1;
};

struct Direction {
  int src = -1;
  int dst = -1;
  Pipe pipe;
  size_t inPipe = 0;
  bool srcEof = false;
  bool shut = false;
  uint64_t moved = 0;
  uint64_t published = 0;
  double* counter = nullptr;
  std::atomic<uint64_t>* total = nullptr;  // an acceptor's byte count (native accept)
  uint64_t totalled = 0;
};

struct Pair {
  uint32_t id = 0;
  int fd[2] = {-1, -1};  // client, upstream
  Direction dir[2];      // client -> upstream (bytes_in), upstream -> client (bytes_out)
  bool metered = false;
  int64_t allowance = 0;   // bytes it may still read while metered (a read may overshoot)
  // Bytes read from both sockets, metered or not: JavaScript charges a quota from the count it saw
  // when the quota began, so bytes that raced a new budget's first grant are paid for too.
  uint64_t readTotal = 0;
  bool waiting = false;    // a NEED is out and unanswered
  bool stopping = false;   // quota used up: flush the pipes, then half-close both ways
  bool releasing = false;  // flush the pipes, then hand the descriptors back
  bool done = false;
  bool forceEinval = false;  // test seam: behave as if the kernel refused splice
  // The third slot of the counters array: JavaScript writes kControlRelease or kControlStop
  // there before it sends the command, and every read checks it first, so a stop or release
  // holds from the next read on even while the worker is busy with this very pair.
  double* control = nullptr;
  Acceptor* acceptor = nullptr;  // set for a pair the addon accepted itself
  bool connecting = false;       // its upstream connect has not completed yet
  double local[2] = {0, 0};      // the counters of an accepted pair (no JavaScript array)
};


struct Event {
  double v[8];
};

class Worker;

struct Engine {
  Napi::ThreadSafeFunction tsfn;
  std::vector<Worker*> workers;
  std::mutex mu;
  std::vector<Event> events;
  bool scheduled = false;
  std::atomic<uint32_t> nextId{1};
  uint32_t nextAcceptor = 1;                      // main thread only
  std::unordered_map<uint32_t, Acceptor*> acceptors;  // main thread only; retired ones stay
  size_t next = 0;
  std::unordered_map<uint32_t, Pair*> adopted;   // main thread only
  std::unordered_map<uint32_t, Worker*> owner;   // main thread only
  // The counters arrays the workers write into, kept alive here until the pair's DONE is
  // delivered, whatever JavaScript does with its own handle (main thread only).
  std::unordered_map<uint32_t, Napi::Reference<Napi::Float64Array>> keep;
  std::atomic<bool> pipeSizeReported{false};
  Counters counters;

  void Post(const Event& event);
  void Deliver(Napi::Env env, Napi::Function fn);
};

void StoreCount(double* where, uint64_t value) {
  double v = static_cast<double>(value);
  __atomic_store(where, &v, __ATOMIC_RELAXED);
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

class Worker {
 public:
  struct Cmd {
    Op op;
    uint32_t id;
    int64_t arg;
  };

  explicit Worker(Engine* engine) : engine_(engine) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    epoll_ctl(ep_, EPOLL_CTL_ADD, efd_, &ev);
    // Detached: the process may exit with pairs in flight (the kernel closes their sockets).
    std::thread([this] { Loop(); }).detach();
  }

  // On the main thread: puts a pair on this worker's epoll directly, not through the command
  // queue, so a new connection costs no wake-up of its own (the queue's eventfd write and the
  // thread switch were ~180 µs a connection on a loaded 2-core machine; bench/README.md). The
  // epoll's first report of the sockets' readiness starts the pump. Under pairsMu_, so a Finish
  // on the worker cannot run between the two registrations.
  void Arm(Pair* pair) {
    std::lock_guard<std::mutex> lock(pairsMu_);
    pairs_[pair->id] = pair;
    for (int side = 0; side < 2; side++) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = reinterpret_cast<uint64_t>(pair) | static_cast<uint64_t>(side);
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, pair->fd[side], &ev) < 0) {
        // The worker may already be pumping the first side: it ends the pair itself.
        Send(Cmd{kFail, pair->id, (static_cast<int64_t>(errno) << 1) | side});
        return;
      }
    }
  }

  // On the main thread: every worker polls the listener; EPOLLEXCLUSIVE wakes one of them per
  // connection instead of all (the thundering herd).
  bool Watch(Acceptor* acceptor) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = reinterpret_cast<uint64_t>(acceptor) | 2;
    return epoll_ctl(ep_, EPOLL_CTL_ADD, acceptor->fd, &ev) == 0;
  }
  void Unwatch(Acceptor* acceptor) { epoll_ctl(ep_, EPOLL_CTL_DEL, acceptor->fd, nullptr); }

  void Send(const Cmd& cmd) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cmds_.push_back(cmd);
    }
    uint64_t one = 1;
    ssize_t ignored = write(efd_, &one, sizeof one);
    (void)ignored;
  }

 private:
  Engine* engine_;
  int ep_ = -1;
  int efd_ = -1;
  std::mutex mu_;
  std::vector<Cmd> cmds_;
  std::mutex pairsMu_;
  std::unordered_map<uint32_t, Pair*> pairs_;  // under pairsMu_; pairs are freed by the worker only
  std::vector<Pipe> pool_;
  std::vector<Pair*> graveyard_;

  using Clock = std::chrono::steady_clock;
  struct PausedAcceptor {
    Acceptor* acceptor;
    Clock::time_point until;
  };
  std::vector<PausedAcceptor> paused_;  // this worker's listeners off its epoll for a while

  void Loop() {
    epoll_event evs[128];
    std::vector<Cmd> cmds;
    for (;;) {
      int n = epoll_wait(ep_, evs, 128, PauseTimeoutMs());
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      engine_->counters.wakeups++;
      if (!paused_.empty()) ResumeDue();
      for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag & 2) {
          Accept(reinterpret_cast<Acceptor*>(tag & ~uint64_t{3}));
          continue;
        }
        if (tag == 0) {
          uint64_t value;
          ssize_t ignored = read(efd_, &value, sizeof value);
          (void)ignored;
          {
            std::lock_guard<std::mutex> lock(mu_);
            cmds.swap(cmds_);
          }
          for (const Cmd& cmd : cmds) Run(cmd);
          cmds.clear();
          continue;
        }
        Pair* pair = reinterpret_cast<Pair*>(tag & ~uint64_t{1});
        int side = static_cast<int>(tag & 1);
        if (pair->done) continue;
        if (pair->connecting) {
          // Only the upstream's report matters until its connect completes; client bytes wait
          // in the kernel (the first Pump reads them, as the edge was already reported).
          if (side == 1) Connected(pair, evs[i].events);
          continue;
        }
        if (evs[i].events & EPOLLERR) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(pair->fd[side], SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            Finish(pair, kError, err, side);
            continue;
          }
        }
        Pump(pair);
      }
      // Pairs finished in this batch may still have events later in it: freed only now.
      for (Pair* pair : graveyard_) delete pair;
      graveyard_.clear();
    }
  }

  // Milliseconds until the first paused listener is due again, or -1 (no deadline).
  int PauseTimeoutMs() const {
    if (paused_.empty()) return -1;
    Clock::time_point first = paused_.front().until;
    for (const PausedAcceptor& p : paused_) first = std::min(first, p.until);
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(first - Clock::now()).count();
    return ms < 0 ? 0 : static_cast<int>(ms);
  }

  // Out of descriptors (or memory): this worker stops polling the listener for a while. Called
  // under acceptor->mu with the acceptor open.
  void PauseAccepts(Acceptor* acceptor, int err) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, acceptor->fd, nullptr);
    Clock::time_point until = Clock::now() + std::chrono::milliseconds(kAcceptPauseMs);
    paused_.push_back(PausedAcceptor{acceptor, until});
    acceptor->acceptPauses++;
    engine_->Post(Event{{kAcceptPaused, static_cast<double>(acceptor->id), 0, 0, 0, 0,
                         static_cast<double>(err), static_cast<double>(kAcceptPauseMs)}});
  }

  // Listeners whose pause is over are polled again, unless acceptOff retired them meanwhile
  // (then the descriptor is JavaScript's and must not be touched).
  void ResumeDue() {
    Clock::time_point now = Clock::now();
    for (size_t i = 0; i < paused_.size();) {
      if (paused_[i].until > now) {
        i++;
        continue;
      }
      Acceptor* acceptor = paused_[i].acceptor;
      paused_[i] = paused_.back();
      paused_.pop_back();
      std::lock_guard<std::mutex> lock(acceptor->mu);
      if (!acceptor->closed) Watch(acceptor);
    }
  }

  static bool OutOfResources(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  }

  void Run(const Cmd& cmd) {
    if (cmd.op == kCloseAcceptor || cmd.op == kReleaseAcceptor) {
      // Drain deadline of a retired acceptor: every pair of it on this worker ends now. A
      // release (a gate arrived) hands each connected pair back to JavaScript instead; one still
      // dialing sees the acceptor's control slot once connected and comes back then.
      std::vector<Pair*> mine;
      {
        std::lock_guard<std::mutex> lock(pairsMu_);
        for (auto& entry : pairs_) {
          if (entry.second->acceptor != nullptr && entry.second->acceptor->id == cmd.id) {
            mine.push_back(entry.second);
          }
        }
      }
      for (Pair* pair : mine) {
        if (cmd.op == kCloseAcceptor) {
          Finish(pair, kClosed, 0, 0);
        } else if (!pair->connecting) {
          pair->releasing = true;
          Pump(pair);
        }
      }
      return;
    }
    Pair* pair;
    {
      std::lock_guard<std::mutex> lock(pairsMu_);
      auto found = pairs_.find(cmd.id);
      if (found == pairs_.end()) return;  // already done; its DONE is on the way
      pair = found->second;
    }
    if (cmd.op == kFail) {
      Finish(pair, kError, static_cast<int>(cmd.arg >> 1), static_cast<int>(cmd.arg & 1));
    } else if (cmd.op == kGrant) {
      // JavaScript already paid for the overshoot reported with the NEED: the grant is set, not
      // added. A negative grant ends metering (the budget was lifted).
      pair->metered = cmd.arg >= 0;
      pair->allowance = cmd.arg < 0 ? 0 : cmd.arg;
      pair->waiting = false;
      Pump(pair);
    } else if (cmd.op == kStop) {
      pair->stopping = true;
      Pump(pair);
    } else if (cmd.op == kRelease) {
      pair->releasing = true;
      Pump(pair);
    } else {
      Finish(pair, kClosed, 0, 0);
    }
  }

  bool AcquirePipe(Direction& d) {
    if (!pool_.empty()) {
      d.pipe = pool_.back();
      pool_.pop_back();
      engine_->counters.pipesReused++;
      return true;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return false;
    if (fcntl(fds[1], F_SETPIPE_SZ, kPipeSize) < 0) {
      engine_->counters.pipeSizeFailed++;
      if (!engine_->pipeSizeReported.exchange(true)) {
        engine_->Post(Event{{kPipeSizeFailed, 0, 0, 0, 0, 0, static_cast<double>(errno), 0}});
      }
    }
    d.pipe.r = fds[0];
    d.pipe.w = fds[1];
    engine_->counters.pipesCreated++;
    return true;
  }

  // An empty pipe goes back to the pool; one still holding bytes (an error cut it short) is
  // closed, so a reused pipe never carries another connection's bytes.
  void ReleasePipe(Direction& d) {
    if (d.pipe.r < 0) return;
    if (d.inPipe == 0 && pool_.size() < kPoolMax) {
      pool_.push_back(d.pipe);
    } else {
      CloseFd(d.pipe.r);
      CloseFd(d.pipe.w);
    }
    d.pipe = Pipe{};
    d.inPipe = 0;
  }

  // Every 64 KiB within a burst, and at the end of each burst (the pipe ran empty), so a small
  // exchange shows in the rule's stats at once. A relaxed store into memory JavaScript reads.
  void Publish(Direction& d) {
    if (d.inPipe == 0 || d.moved - d.published >= kPublishEvery) {
      d.published = d.moved;
      StoreCount(d.counter, d.moved);
      AddTotal(d);
    }
  }

  static void AddTotal(Direction& d) {
    if (d.total == nullptr || d.moved == d.totalled) return;
    d.total->fetch_add(d.moved - d.totalled, std::memory_order_relaxed);
    d.totalled = d.moved;
  }

  // Native accept: takes up to a batch of connections from a listener this worker was woken for.
  void Accept(Acceptor* acceptor) {
    std::lock_guard<std::mutex> lock(acceptor->mu);
    if (acceptor->closed) return;
    for (int i = 0; i < kAcceptBatch; i++) {
      int client = accept4(acceptor->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (OutOfResources(errno)) PauseAccepts(acceptor, errno);
        return;  // EAGAIN: the next report of the listener resumes
      }
      acceptor->accepted++;
      acceptor->active++;
      int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int upstream = socket(acceptor->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int rc = -1;
      if (upstream >= 0) {
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        unsigned timeout = acceptor->connectTimeoutMs;
        setsockopt(upstream, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
        rc = connect(upstream, reinterpret_cast<sockaddr*>(&acceptor->target), acceptor->targetLen);
      }
      if (upstream < 0 || (rc < 0 && errno != EINPROGRESS)) {
        int err = errno;
        CloseFd(upstream);
        CloseFd(client);
        ConnectFailed(acceptor, err);
        // The client was taken already and cannot wait; the next ones wait in the backlog.
        if (upstream < 0 && OutOfResources(err)) {
          PauseAccepts(acceptor, err);
          return;
        }
        continue;
      }
      if (rc == 0) {
        unsigned none = 0;
        setsockopt(upstream, IPPROTO_TCP, TCP_USER_TIMEOUT, &none, sizeof none);
      }
      Pair* pair = new Pair();
      pair->id = engine_->nextId.fetch_add(1);
      pair->acceptor = acceptor;
      pair->connecting = rc < 0;
      pair->fd[0] = client;
      pair->fd[1] = upstream;
      for (int which = 0; which < 2; which++) {
        Direction& d = pair->dir[which];
        d.src = pair->fd[which];
        d.dst = pair->fd[1 - which];
        d.counter = &pair->local[which];
        d.total = &acceptor->bytes[which];
      }
      pair->control = &acceptor->control;
      engine_->counters.pairs++;
      Arm(pair);
    }
  }

  // The upstream of an accepted pair reported: connected (EPOLLOUT, SO_ERROR 0) or failed.
  void Connected(Pair* pair, uint32_t events) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(pair->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Finish(pair, kConnectError, err, 1);
      return;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
      Finish(pair, kConnectError, ECONNREFUSED, 1);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    pair->connecting = false;
    unsigned none = 0;  // the connect deadline is not a deadline for the connection's data
    setsockopt(pair->fd[1], IPPROTO_TCP, TCP_USER_TIMEOUT, &none, sizeof none);
    Pump(pair);
  }

  void ConnectFailed(Acceptor* acceptor, int err) {
    acceptor->connectErrors++;
    engine_->Post(Event{{kConnectFailed, static_cast<double>(acceptor->id), 0, 0, 0, 0,
                         static_cast<double>(err), 0}});
    Left(acceptor);
  }

  // One pair of an acceptor is gone; the last one of a retired acceptor tells JavaScript.
  void Left(Acceptor* acceptor) {
    if (acceptor->active.fetch_sub(1) == 1 && acceptor->retired.load()) {
      engine_->Post(Event{{kIdle, static_cast<double>(acceptor->id), 0, 0, 0, 0, 0, 0}});
    }
  }

  void AskMore(Pair* pair) {
    if (pair->waiting) return;
    pair->waiting = true;
    engine_->Post(Event{{kNeed, static_cast<double>(pair->id), 0, 0,
                         static_cast<double>(pair->readTotal), 0, 0, 0}});
  }

  // Moves one direction until the socket or the pipe would block. False once the pair ended.
  bool PumpDirection(Pair* pair, int which) {
    Direction& d = pair->dir[which];
    for (;;) {
      if (d.inPipe > 0) {
        ssize_t n = splice(d.pipe.r, nullptr, d.dst, nullptr, d.inPipe,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        engine_->counters.splices++;
        if (n < 0) {
          if (errno == EAGAIN) return true;  // EPOLLOUT on dst resumes
          if (errno == EINTR) continue;
          Finish(pair, kError, errno, 1 - which);
          return false;
        }
        d.inPipe -= static_cast<size_t>(n);
        d.moved += static_cast<uint64_t>(n);
        Publish(d);
        continue;
      }
      ReleasePipe(d);
      if (pair->releasing) return true;  // Pump hands the pair back once both pipes are empty
      if (d.srcEof || pair->stopping) {
        if (!d.shut) {
          // Half-close: the source's FIN (or the quota stop) ends our write side only.
          shutdown(d.dst, SHUT_WR);
          d.shut = true;
        }
        return true;
      }
      double control;
      __atomic_load(pair->control, &control, __ATOMIC_RELAXED);
      if (control == kControlRelease) pair->releasing = true;
      if (control == kControlStop) pair->stopping = true;
      if (control != 0) continue;
      size_t want = kPipeSize;
      if (pair->metered) {
        if (pair->allowance <= 0) {
          AskMore(pair);
          return true;
        }
        int64_t most = pair->allowance + kOverrun;
        if (most < static_cast<int64_t>(want)) want = static_cast<size_t>(most);
      }
      if (!AcquirePipe(d)) {
        Finish(pair, kError, errno, which);
        return false;
      }
      ssize_t n;
      if (pair->forceEinval) {
        n = -1;
        errno = EINVAL;
      } else {
        n = splice(d.src, nullptr, d.pipe.w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        engine_->counters.splices++;
      }
      if (n == 0) {
        d.srcEof = true;
        continue;
      }
      if (n < 0) {
        if (errno == EAGAIN) {
          ReleasePipe(d);
          return true;  // EPOLLIN on src resumes
        }
        if (errno == EINTR) continue;
        bool untouched = pair->dir[0].moved == 0 && pair->dir[1].moved == 0 &&
                         pair->dir[0].inPipe == 0 && pair->dir[1].inPipe == 0;
        if (errno == EINVAL && untouched) {
          Finish(pair, kUnsupported, EINVAL, which);
        } else {
          Finish(pair, kError, errno, which);
        }
        return false;
      }
      d.inPipe = static_cast<size_t>(n);
      pair->readTotal += static_cast<uint64_t>(n);
      if (pair->metered) pair->allowance -= n;
    }
  }

  void Pump(Pair* pair) {
    for (int which = 0; which < 2; which++) {
      if (!PumpDirection(pair, which)) return;
    }
    if (pair->releasing) {
      if (pair->dir[0].inPipe == 0 && pair->dir[1].inPipe == 0) Finish(pair, kReleased, 0, 0);
      return;
    }
    if (pair->dir[0].shut && pair->dir[1].shut) {
      Finish(pair, pair->stopping ? kQuota : kEof, 0, 0);
    }
  }

  // Ends a pair once: off epoll, pipes back (or closed), sockets closed or handed back, and one
  // DONE event.
  void Finish(Pair* pair, Reason reason, int err, int side) {
    if (pair->done) return;
    pair->done = true;
    for (int s = 0; s < 2; s++) {
      if (pair->fd[s] >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, pair->fd[s], nullptr);
    }
    for (Direction& d : pair->dir) {
      ReleasePipe(d);
      StoreCount(d.counter, d.moved);
      AddTotal(d);
    }
    if (pair->acceptor != nullptr) {
      // No JavaScript owns this pair: its end shows in the acceptor's counters only. Released,
      // it leaves them (JavaScript counts it from here on) and its descriptors go back.
      Acceptor* owner = pair->acceptor;
      if (reason == kReleased) {
        for (int which = 0; which < 2; which++) owner->bytes[which] -= pair->dir[which].moved;
        owner->accepted--;
        engine_->Post(Event{{kHandBack, static_cast<double>(owner->id),
                             static_cast<double>(pair->dir[0].moved),
                             static_cast<double>(pair->dir[1].moved), 0, 0,
                             static_cast<double>(pair->fd[0]), static_cast<double>(pair->fd[1])}});
      } else {
        CloseFd(pair->fd[0]);
        CloseFd(pair->fd[1]);
      }
      {
        std::lock_guard<std::mutex> lock(pairsMu_);
        pairs_.erase(pair->id);
      }
      graveyard_.push_back(pair);
      Acceptor* acceptor = pair->acceptor;
      if (reason == kConnectError) {
        acceptor->connectErrors++;
        engine_->Post(Event{{kConnectFailed, static_cast<double>(acceptor->id), 0, 0, 0, 0,
                             static_cast<double>(err), 0}});
      } else if (reason == kError || reason == kUnsupported) {
        acceptor->connErrors++;
        engine_->Post(Event{{kConnError, static_cast<double>(acceptor->id), 0, 0, 0, 0,
                             static_cast<double>(err), static_cast<double>(side)}});
      }
      Left(acceptor);
      return;
    }
    // Unsupported (nothing moved) and released pairs give their descriptors back to JavaScript,
    // in the errno and side slots; every other end closes both sockets here.
    bool handBack = reason == kUnsupported || reason == kReleased;
    double tail[2] = {static_cast<double>(err), static_cast<double>(side)};
    if (handBack) {
      tail[0] = pair->fd[0];
      tail[1] = pair->fd[1];
    } else {
      CloseFd(pair->fd[0]);
      CloseFd(pair->fd[1]);
    }
    engine_->Post(Event{{kDone, static_cast<double>(pair->id),
                         static_cast<double>(pair->dir[0].moved),
                         static_cast<double>(pair->dir[1].moved),
                         static_cast<double>(pair->readTotal), static_cast<double>(reason),
                         tail[0], tail[1]}});
    {
      std::lock_guard<std::mutex> lock(pairsMu_);
      pairs_.erase(pair->id);
    }
    graveyard_.push_back(pair);
  }
};

void Engine::Post(const Event& event) {
  bool schedule = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(event);
    if (!scheduled) {
      scheduled = true;
      schedule = true;
    }
  }
  if (schedule) {
    tsfn.NonBlockingCall([this](Napi::Env env, Napi::Function fn) { Deliver(env, fn); });
  }
}

// On the main thread: every event posted since the last delivery, as one flat array of numbers
// (8 per event), so a burst of completions costs one call into JavaScript.
void Engine::Deliver(Napi::Env env, Napi::Function fn) {
  std::vector<Event> batch;
  {
    std::lock_guard<std::mutex> lock(mu);
    batch.swap(events);
    scheduled = false;
  }
  if (batch.empty()) return;
  Napi::Array flat = Napi::Array::New(env, batch.size() * 8);
  uint32_t k = 0;
  for (const Event& event : batch) {
    if (event.v[0] == kDone) {
      owner.erase(static_cast<uint32_t>(event.v[1]));
      keep.erase(static_cast<uint32_t>(event.v[1]));
    }
    for (double value : event.v) flat[k++] = Napi::Number::New(env, value);
  }
  fn.Call({flat});
}

Engine* EngineOf(const Napi::CallbackInfo& info) { return info.Env().GetInstanceData<Engine>(); }

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* engine = EngineOf(info);
  if (!engine->workers.empty()) return env.Undefined();
  Napi::Function onEvents = info[0].As<Napi::Function>();
  uint32_t threads = info[1].As<Napi::Number>().Uint32Value();
  if (threads == 0) threads = 1;
  engine->tsfn = Napi::ThreadSafeFunction::New(env, onEvents, "portunus-splice", 0, 1);
  engine->tsfn.Unref(env);
  for (uint32_t i = 0; i < threads; i++) engine->workers.push_back(new Worker(engine));
  return env.Undefined();
}

// adopt(clientFd, upstreamFd, counters: Float64Array(2), allowance, forceEinval) -> id. Only
// duplicates; the caller closes its own handles before `run`.
Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* engine = EngineOf(info);
  int fds[2] = {info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()};
  Napi::Float64Array counters = info[2].As<Napi::Float64Array>();
  if (counters.ElementLength() < 3) {
    Napi::TypeError::New(env, "counters: a Float64Array of 3").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t allowance = info[3].As<Napi::Number>().Int64Value();  // -1: not metered
  bool forceEinval = info[4].ToBoolean().Value();
  Pair* pair = new Pair();
  for (int s = 0; s < 2; s++) {
    pair->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 0);
    if (pair->fd[s] < 0) {
      int err = errno;
      CloseFd(pair->fd[0]);
      delete pair;
      Napi::Error error = Napi::Error::New(env, "dup failed");
      error.Set("errno", Napi::Number::New(env, err));
      error.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    fcntl(pair->fd[s], F_SETFL, fcntl(pair->fd[s], F_GETFL) | O_NONBLOCK);
  }
  pair->id = engine->nextId.fetch_add(1);
  pair->metered = allowance >= 0;
  pair->allowance = allowance < 0 ? 0 : allowance;
  pair->forceEinval = forceEinval;
  double* data = counters.Data();
  pair->dir[0].src = pair->fd[0];
  pair->dir[0].dst = pair->fd[1];
  pair->dir[0].counter = &data[0];
  pair->dir[1].src = pair->fd[1];
  pair->dir[1].dst = pair->fd[0];
  pair->dir[1].counter = &data[1];
  pair->control = &data[2];
  engine->adopted[pair->id] = pair;
  engine->keep.emplace(pair->id, Napi::Reference<Napi::Float64Array>::New(counters, 1));
  engine->counters.pairs++;
  return Napi::Number::New(env, pair->id);
}

Napi::Value RunPair(const Napi::CallbackInfo& info) {
  Engine* engine = EngineOf(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto found = engine->adopted.find(id);
  if (found == engine->adopted.end()) return info.Env().Undefined();
  Pair* pair = found->second;
  engine->adopted.erase(found);
  Worker* worker = engine->workers[engine->next++ % engine->workers.size()];
  engine->owner[id] = worker;
  worker->Arm(pair);
  return info.Env().Undefined();
}

void SendTo(const Napi::CallbackInfo& info, Op op) {
  Engine* engine = EngineOf(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int64_t arg = info.Length() > 1 ? info[1].As<Napi::Number>().Int64Value() : 0;
  auto found = engine->owner.find(id);
  if (found != engine->owner.end()) found->second->Send(Worker::Cmd{op, id, arg});
}

Napi::Value Grant(const Napi::CallbackInfo& info) {
  SendTo(info, kGrant);
  return info.Env().Undefined();
}
Napi::Value Stop(const Napi::CallbackInfo& info) {
  SendTo(info, kStop);
  return info.Env().Undefined();
}
Napi::Value ClosePair(const Napi::CallbackInfo& info) {
  SendTo(info, kClose);
  return info.Env().Undefined();
}
Napi::Value Release(const Napi::CallbackInfo& info) {
  SendTo(info, kRelease);
  return info.Env().Undefined();
}

// While pairs are in flight their DONE must keep the process alive, as open sockets would.
Napi::Value Ref(const Napi::CallbackInfo& info) {
  EngineOf(info)->tsfn.Ref(info.Env());
  return info.Env().Undefined();
}
Napi::Value Unref(const Napi::CallbackInfo& info) {
  EngineOf(info)->tsfn.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Counters& c = EngineOf(info)->counters;
  Napi::Object out = Napi::Object::New(env);
  out.Set("pairs", Napi::Number::New(env, static_cast<double>(c.pairs.load())));
  out.Set("pipes_created", Napi::Number::New(env, static_cast<double>(c.pipesCreated.load())));
  out.Set("pipes_reused", Napi::Number::New(env, static_cast<double>(c.pipesReused.load())));
  out.Set("pipe_size_failed", Napi::Number::New(env, static_cast<double>(c.pipeSizeFailed.load())));
  out.Set("splices", Napi::Number::New(env, static_cast<double>(c.splices.load())));
  out.Set("wakeups", Napi::Number::New(env, static_cast<double>(c.wakeups.load())));
  return out;
}

// acceptOn(listenFd, targetHost, targetPort, connectTimeoutMs) -> id, or throws. The listener is duplicated; the
// caller closes its own handle afterwards and the socket stays bound through the duplicate.
Napi::Value AcceptOn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* engine = EngineOf(info);
  int listenFd = info[0].As<Napi::Number>().Int32Value();
  std::string host = info[1].As<Napi::String>().Utf8Value();
  int port = info[2].As<Napi::Number>().Int32Value();
  Acceptor* acceptor = new Acceptor();
  acceptor->connectTimeoutMs = info[3].As<Napi::Number>().Uint32Value();
  auto* v4 = reinterpret_cast<sockaddr_in*>(&acceptor->target);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&acceptor->target);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    acceptor->targetLen = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    acceptor->targetLen = sizeof(sockaddr_in6);
  } else {
    delete acceptor;
    Napi::TypeError::New(env, "target: an IP literal").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  acceptor->fd = fcntl(listenFd, F_DUPFD_CLOEXEC, 0);
  if (acceptor->fd < 0) {
    delete acceptor;
    Napi::Error::New(env, "dup failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  fcntl(acceptor->fd, F_SETFL, fcntl(acceptor->fd, F_GETFL) | O_NONBLOCK);
  acceptor->id = engine->nextAcceptor++;
  for (size_t i = 0; i < engine->workers.size(); i++) {
    if (!engine->workers[i]->Watch(acceptor)) {
      for (size_t j = 0; j < i; j++) engine->workers[j]->Unwatch(acceptor);
      close(acceptor->fd);
      delete acceptor;
      Napi::Error::New(env, "epoll_ctl failed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  engine->acceptors[acceptor->id] = acceptor;
  return Napi::Number::New(env, acceptor->id);
}

// acceptOff(id) -> the listening descriptor, now the caller's; no worker accepts on it after
// this returns (the lock waits out an accept batch in progress). An idle event follows once
// its last pair has ended (at once if it has none).
Napi::Value AcceptOff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* engine = EngineOf(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto found = engine->acceptors.find(id);
  if (found == engine->acceptors.end() || found->second->retired.load()) {
    return Napi::Number::New(env, -1);
  }
  Acceptor* acceptor = found->second;
  {
    std::lock_guard<std::mutex> lock(acceptor->mu);
    acceptor->closed = true;
  }
  for (Worker* worker : engine->workers) worker->Unwatch(acceptor);
  acceptor->retired = true;
  if (acceptor->active.load() == 0) {
    engine->Post(Event{{kIdle, static_cast<double>(id), 0, 0, 0, 0, 0, 0}});
  }
  int fd = acceptor->fd;
  acceptor->fd = -1;
  return Napi::Number::New(env, fd);
}

// acceptStats(id, out: Float64Array(7)): accepted, active, bytes in, bytes out, connect errors,
// connection errors, accept pauses. Acceptors are never freed, so a retired one still answers.
Napi::Value AcceptStats(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  Napi::Float64Array out = info[1].As<Napi::Float64Array>();
  auto& acceptors = EngineOf(info)->acceptors;
  auto found = acceptors.find(id);
  if (found == acceptors.end() || out.ElementLength() < 7) return info.Env().Undefined();
  Acceptor* a = found->second;
  double* v = out.Data();
  v[0] = static_cast<double>(a->accepted.load());
  v[1] = static_cast<double>(a->active.load());
  v[2] = static_cast<double>(a->bytes[0].load());
  v[3] = static_cast<double>(a->bytes[1].load());
  v[4] = static_cast<double>(a->connectErrors.load());
  v[5] = static_cast<double>(a->connErrors.load());
  v[6] = static_cast<double>(a->acceptPauses.load());
  return info.Env().Undefined();
}

// acceptRelease(id): every pair of the acceptor comes back to JavaScript (HANDBACK events with
// its counts and descriptors) once its pipes are flushed; one still dialing, once connected. No
// pair reads another byte after this returns, so none moves unmetered past the decision.
Napi::Value AcceptRelease(const Napi::CallbackInfo& info) {
  Engine* engine = EngineOf(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto found = engine->acceptors.find(id);
  if (found == engine->acceptors.end()) return info.Env().Undefined();
  double release = kControlRelease;
  __atomic_store(&found->second->control, &release, __ATOMIC_RELAXED);
  for (Worker* worker : engine->workers) worker->Send(Worker::Cmd{kReleaseAcceptor, id, 0});
  return info.Env().Undefined();
}

// acceptClose(id): every pair of the acceptor ends now (a drain deadline).
Napi::Value AcceptClose(const Napi::CallbackInfo& info) {
  Engine* engine = EngineOf(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  for (Worker* worker : engine->workers) worker->Send(Worker::Cmd{kCloseAcceptor, id, 0});
  return info.Env().Undefined();
}

// The worker threads are detached and may outlive the environment: the engine is never freed.
void KeepEngine(Napi::Env, Engine*) {}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Engine, KeepEngine>(new Engine());
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("adopt", Napi::Function::New(env, Adopt));
  exports.Set("run", Napi::Function::New(env, RunPair));
  exports.Set("grant", Napi::Function::New(env, Grant));
  exports.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("close", Napi::Function::New(env, ClosePair));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("ref", Napi::Function::New(env, Ref));
  exports.Set("unref", Napi::Function::New(env, Unref));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("acceptOn", Napi::Function::New(env, AcceptOn));
  exports.Set("acceptOff", Napi::Function::New(env, AcceptOff));
  exports.Set("acceptStats", Napi::Function::New(env, AcceptStats));
  exports.Set("acceptClose", Napi::Function::New(env, AcceptClose));
  exports.Set("acceptRelease", Napi::Function::New(env, AcceptRelease));
  return exports;
}

}  // namespace

NODE_API_MODULE(portunus_splice, Module)
