// override_cxx: a C++17 workout for the drop-in allocator (test_override.sh
// runs it with and without LD_PRELOAD=libgomem.so and compares the output).
//
// new/delete (scalar, array, aligned, nothrow), std::vector / std::string /
// std::map / std::unordered_map growth, std::thread with objects moved and
// shared between threads, exceptions thrown across frames. Every step folds
// into a checksum; the output is deterministic (no addresses, no timing).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <queue>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

uint64_t mix_str(uint64_t h, const std::string &s) {
  for (unsigned char c : s)
    h = mix(h, c);
  return mix(h, s.size());
}

struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed) {}
  uint64_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return s >> 33;
  }
};

int failures = 0;

void expect(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "override_cxx: check failed: %s\n", what);
    failures++;
  }
}

struct alignas(64) Aligned64 {
  uint64_t v[8];
};

struct alignas(4096) Page {
  unsigned char b[4096];
};

struct Node {
  int value;
  std::unique_ptr<Node> next;
};

uint64_t test_new_delete() {
  uint64_t h = 1;
  // Scalar and array new of many sizes.
  std::vector<char *> blocks;
  for (int i = 0; i < 2000; i++) {
    size_t n = 1 + (size_t)(i * 131) % 70000;
    char *p = new char[n];
    std::memset(p, i & 0xff, n);
    blocks.push_back(p);
  }
  for (size_t i = 0; i < blocks.size(); i++) {
    size_t n = 1 + (i * 131) % 70000;
    h = mix(h, (unsigned char)blocks[i][n - 1]);
    delete[] blocks[i];
  }
  // Over-aligned new (operator new(size_t, align_val_t)).
  std::vector<Aligned64 *> al;
  for (int i = 0; i < 100; i++) {
    auto *a = new Aligned64();
    expect(reinterpret_cast<uintptr_t>(a) % 64 == 0, "alignas(64) new");
    a->v[7] = (uint64_t)i;
    al.push_back(a);
  }
  for (auto *a : al) {
    h = mix(h, a->v[7]);
    delete a;
  }
  auto *pages = new Page[3];
  expect(reinterpret_cast<uintptr_t>(pages) % 4096 == 0, "alignas(4096) new[]");
  pages[2].b[4095] = 42;
  h = mix(h, pages[2].b[4095]);
  delete[] pages;
  // nothrow new of an impossible size returns nullptr.
  size_t huge = SIZE_MAX / 2;
  char *nothing = new (std::nothrow) char[huge];
  expect(nothing == nullptr, "nothrow new of a huge size");
  // A linked list of unique_ptrs.
  std::unique_ptr<Node> head;
  for (int i = 0; i < 10000; i++)
    head = std::unique_ptr<Node>(new Node{i, std::move(head)});
  uint64_t sum = 0;
  for (Node *n = head.get(); n; n = n->next.get())
    sum += (uint64_t)n->value;
  // Iterative teardown (a recursive one could overflow the stack).
  while (head)
    head = std::move(head->next);
  h = mix(h, sum);
  return h;
}

uint64_t test_containers() {
  uint64_t h = 2;
  Lcg rng(12345);
  // vector growth, with reserve and shrink_to_fit.
  std::vector<uint64_t> v;
  for (int i = 0; i < 200000; i++)
    v.push_back(rng.next());
  std::sort(v.begin(), v.end());
  h = mix(h, v.front());
  h = mix(h, v[v.size() / 2]);
  h = mix(h, v.back());
  v.resize(1000);
  v.shrink_to_fit();
  h = mix(h, v.capacity() >= 1000);
  // strings: growth by append, SSO and heap, substrings.
  std::string s;
  for (int i = 0; i < 50000; i++) {
    s += std::to_string(i);
    s.push_back(',');
  }
  h = mix_str(h, s.substr(1000, 200));
  h = mix(h, s.size());
  std::vector<std::string> words;
  for (int i = 0; i < 30000; i++)
    words.push_back("w" + std::to_string(rng.next() % 5000) + std::string(i % 40, 'x'));
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  h = mix(h, words.size());
  h = mix_str(h, words[words.size() / 3]);
  // map and unordered_map growth, erase, rehash.
  std::map<std::string, int> m;
  std::unordered_map<uint64_t, std::string> um;
  for (int i = 0; i < 100000; i++) {
    uint64_t k = rng.next() % 50000;
    m["key" + std::to_string(k)] += i % 7;
    um[k] = std::to_string(i);
  }
  for (uint64_t k = 0; k < 50000; k += 3) {
    m.erase("key" + std::to_string(k));
    um.erase(k);
  }
  um.rehash(1 << 18);
  uint64_t msum = 0;
  for (auto &kv : m)
    msum = mix(msum, (uint64_t)kv.second + kv.first.size());
  uint64_t usum = 0; // order-independent over the unordered map
  for (auto &kv : um)
    usum += kv.first * 31 + std::stoull(kv.second);
  h = mix(h, m.size());
  h = mix(h, msum);
  h = mix(h, um.size());
  h = mix(h, usum);
  // deque, list, set, priority_queue.
  std::deque<int> dq;
  std::list<std::string> ls;
  std::set<uint64_t> st;
  std::priority_queue<uint64_t> pq;
  for (int i = 0; i < 50000; i++) {
    dq.push_back(i);
    if (i % 3 == 0)
      dq.pop_front();
    ls.emplace_back(std::to_string(i * 7));
    st.insert(rng.next() % 100000);
    pq.push(rng.next());
  }
  h = mix(h, dq.size());
  h = mix(h, ls.size());
  h = mix(h, st.size());
  for (int i = 0; i < 100; i++) {
    h = mix(h, pq.top());
    pq.pop();
  }
  return h;
}

// Objects allocated on one thread, moved into a shared queue, consumed and
// destroyed on another; shared_ptrs released last on whichever thread.
uint64_t test_threads() {
  const int producers = 4, per = 20000;
  std::mutex mu;
  std::deque<std::unique_ptr<std::vector<uint32_t>>> q;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> consumed_sum{0};
  std::atomic<int> consumed{0};
  std::vector<std::shared_ptr<std::string>> shared;
  for (int i = 0; i < 1000; i++)
    shared.push_back(std::make_shared<std::string>(std::string(10 + i % 100, 'a' + i % 26)));

  std::vector<std::thread> th;
  for (int p = 0; p < producers; p++) {
    th.emplace_back([&, p] {
      std::vector<std::shared_ptr<std::string>> mine(shared.begin(), shared.end());
      for (int i = 0; i < per; i++) {
        auto v = std::make_unique<std::vector<uint32_t>>(1 + (size_t)(i % 64));
        for (size_t k = 0; k < v->size(); k++)
          (*v)[k] = (uint32_t)(p * 1000003 + i + (int)k);
        std::lock_guard<std::mutex> g(mu);
        q.push_back(std::move(v));
      }
    });
  }
  std::vector<std::thread> cons;
  for (int c = 0; c < 2; c++) {
    cons.emplace_back([&] {
      uint64_t local = 0;
      int n = 0;
      for (;;) {
        std::unique_ptr<std::vector<uint32_t>> v;
        {
          std::lock_guard<std::mutex> g(mu);
          if (!q.empty()) {
            v = std::move(q.front());
            q.pop_front();
          }
        }
        if (!v) {
          if (done.load()) {
            std::lock_guard<std::mutex> g(mu);
            if (q.empty())
              break;
            continue;
          }
          std::this_thread::yield();
          continue;
        }
        for (uint32_t x : *v)
          local += x;
        n++;
      } // v destroyed here: freed on the consumer thread
      consumed_sum += local;
      consumed += n;
    });
  }
  for (auto &t : th)
    t.join();
  done = true;
  for (auto &t : cons)
    t.join();
  shared.clear(); // last owners now
  uint64_t h = 3;
  h = mix(h, consumed_sum.load());
  h = mix(h, (uint64_t)consumed.load());
  expect(consumed.load() == producers * per, "every object consumed");
  // Strings built on worker threads, joined on the main thread.
  std::vector<std::string> out(8);
  std::vector<std::thread> ws;
  for (int w = 0; w < 8; w++)
    ws.emplace_back([&out, w] {
      std::string s;
      for (int i = 0; i < 5000; i++)
        s += std::to_string(w * i);
      out[(size_t)w] = std::move(s);
    });
  for (auto &t : ws)
    t.join();
  for (auto &s : out)
    h = mix_str(h, s);
  return h;
}

struct Boom : std::runtime_error {
  std::vector<int> payload;
  explicit Boom(int n) : std::runtime_error("boom " + std::to_string(n)), payload((size_t)n, n) {}
};

int thrower(int depth) {
  std::vector<std::string> locals(10, std::string(100, 'z')); // unwound
  if (depth == 0)
    throw Boom(depth + 17);
  return thrower(depth - 1) + 1;
}

uint64_t test_exceptions() {
  uint64_t h = 4;
  for (int i = 0; i < 2000; i++) {
    try {
      thrower(i % 20);
    } catch (const Boom &b) {
      h = mix_str(h, b.what());
      h = mix(h, b.payload.size());
    }
  }
  try {
    std::vector<int> v;
    v.at(5) = 1;
  } catch (const std::out_of_range &) {
    h = mix(h, 99);
  }
  try {
    size_t huge = SIZE_MAX / 4;
    std::vector<char> v;
    v.reserve(huge); // length_error or bad_alloc
  } catch (const std::length_error &) {
    h = mix(h, 100);
  } catch (const std::bad_alloc &) {
    h = mix(h, 100);
  }
  try {
    size_t huge = SIZE_MAX / 2;
    char *p = new char[huge];
    p[0] = 1;
    delete[] p;
  } catch (const std::bad_alloc &) {
    h = mix(h, 101);
  } catch (const std::length_error &) { // new[] of a length the ABI refuses
    h = mix(h, 101);
  }
  // Exceptions thrown on threads, passed back with exception_ptr.
  std::vector<std::exception_ptr> eps(4);
  std::vector<std::thread> th;
  for (int t = 0; t < 4; t++)
    th.emplace_back([&eps, t] {
      try {
        thrower(t + 3);
      } catch (...) {
        eps[(size_t)t] = std::current_exception();
      }
    });
  for (auto &t : th)
    t.join();
  for (auto &e : eps) {
    try {
      std::rethrow_exception(e);
    } catch (const Boom &b) {
      h = mix_str(h, b.what());
    }
  }
  return h;
}

} // namespace

int main() {
  uint64_t a = test_new_delete();
  uint64_t b = test_containers();
  uint64_t c = test_threads();
  uint64_t d = test_exceptions();
  std::printf("new/delete  %016llx\n", (unsigned long long)a);
  std::printf("containers  %016llx\n", (unsigned long long)b);
  std::printf("threads     %016llx\n", (unsigned long long)c);
  std::printf("exceptions  %016llx\n", (unsigned long long)d);
  std::printf("checksum    %016llx\n", (unsigned long long)mix(mix(mix(a, b), c), d));
  if (failures) {
    std::printf("%d checks failed\n", failures);
    return 1;
  }
  return 0;
}
