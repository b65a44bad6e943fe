// reqload: a closed-loop HTTP/1.1 request generator for bench/suite.py, for
// the request-rate figures (manifest GET, blob HEAD). wrk cannot measure a
// HEAD whose response names a Content-Length (it waits for that body), so
// the suite uses this for every request-rate figure alike.
//
//   reqload -c CONNS -t THREADS -d SECONDS -m METHOD [-H 'Name: value'] [-1] -p PATHS PORT
//
// CONNS keep-alive connections to 127.0.0.1:PORT, spread over THREADS
// threads (one epoll loop each); each sends one request, reads the whole
// response (the head; then Content-Length bytes unless METHOD is HEAD),
// records the latency and sends the next, taking PATHS (one request path
// per line) in turn. Prints one line, WRKJSON {...}, with the same fields
// as bench/wrk.lua's: requests completed, response bytes, duration,
// socket errors (a connection that failed or closed: it is reopened),
// status errors (>= 400), p50 and p99 latency in microseconds.
//
// With -1 each connection sends one request only (a herd: every client at
// once on one blob), the run ends when all responses are complete (or at
// the deadline), and the line also has first_byte_max_us (the slowest
// client's first response byte, from the common start) and wall_us (until
// the last response was complete).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LATENCY_US 1000000  // one bucket per microsecond up to 1 s; the rest in the last
#define READ_BUF 65536
#define MAX_HEAD 16384

struct conn {
  int fd;
  const char* req;  // the request being sent
  size_t req_len, req_sent;
  char head[MAX_HEAD];
  size_t head_len;  // bytes of the head read so far
  int in_body;      // the head is complete
  uint64_t body_left;
  int status;
  uint64_t started_ns;
  size_t next_path;
  int got_first;  // a byte of this response arrived
  int done;       // -1: its one request is answered
};

struct thread {
  pthread_t tid;
  int nconns;
  struct conn* conns;
  uint64_t requests, bytes, socket_errors, status_errors;
  uint64_t first_byte_max_ns, last_done_ns;
  int open_conns;
  uint32_t* latency;  // MAX_LATENCY_US + 1 counters
};

static char** requests;  // formatted once
static size_t* request_lens;
static size_t npaths;
static int port;
static uint64_t deadline_ns, start_ns;
static int one_shot;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "reqload: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int open_conn(int ep, struct conn* c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr*)&a, sizeof a) != 0 && errno != EINPROGRESS) return -1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
  return 0;
}

static void start_request(struct conn* c) {
  c->req = requests[c->next_path];
  c->req_len = request_lens[c->next_path];
  c->next_path = (c->next_path + 1) % npaths;
  c->req_sent = 0;
  c->head_len = 0;
  c->in_body = 0;
  c->body_left = 0;
  c->got_first = 0;
  c->started_ns = now_ns();
}

static void reopen(int ep, struct thread* t, struct conn* c) {
  ++t->socket_errors;
  close(c->fd);
  if (open_conn(ep, c) != 0) die("connect");
  start_request(c);
}

// The response is complete: counts it and starts the next request.
static void complete(struct thread* t, struct conn* c) {
  uint64_t us = (now_ns() - c->started_ns) / 1000;
  ++t->latency[us < MAX_LATENCY_US ? us : MAX_LATENCY_US];
  ++t->requests;
  if (c->status >= 400 || c->status < 100) ++t->status_errors;
  if (one_shot) {
    c->done = 1;
    --t->open_conns;
    t->last_done_ns = now_ns();
    return;
  }
  start_request(c);
}

static int send_some(struct conn* c) {
  while (c->req_sent < c->req_len) {
    ssize_t n = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->req_sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EAGAIN) return 0;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
  return 0;
}

// Parses the head in c->head: status and Content-Length. -1 if malformed.
static int parse_head(struct conn* c, int is_head) {
  if (c->head_len < 12 || memcmp(c->head, "HTTP/1.", 7) != 0) return -1;
  c->status = atoi(c->head + 9);
  c->body_left = 0;
  const char* p = c->head;
  const char* end = c->head + c->head_len;
  while (p < end) {
    const char* eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
      c->body_left = strtoull(p + 15, NULL, 10);
    }
    p = eol + 2;
  }
  if (is_head) c->body_left = 0;
  return 0;
}

static int on_readable(struct thread* t, struct conn* c, int is_head, char* buf) {
  for (;;) {
    ssize_t n = recv(c->fd, buf, READ_BUF, 0);
    if (n == 0) return -1;
    if (n < 0) {
      if (errno == EAGAIN) return 0;
      if (errno == EINTR) continue;
      return -1;
    }
    t->bytes += (uint64_t)n;
    if (!c->got_first) {
      c->got_first = 1;
      uint64_t first = now_ns() - start_ns;
      if (first > t->first_byte_max_ns) t->first_byte_max_ns = first;
    }
    size_t off = 0;
    while (off < (size_t)n) {
      if (!c->in_body) {
        size_t take = (size_t)n - off;
        if (take > MAX_HEAD - c->head_len) take = MAX_HEAD - c->head_len;
        if (take == 0) return -1;  // a head larger than we keep
        size_t before = c->head_len;
        memcpy(c->head + c->head_len, buf + off, take);
        c->head_len += take;
        char* e = memmem(c->head, c->head_len, "\r\n\r\n", 4);
        if (!e) {
          off += take;
          continue;
        }
        size_t head_end = (size_t)(e - c->head) + 4;
        off += head_end - before;
        c->head_len = head_end;
        if (parse_head(c, is_head) != 0) return -1;
        c->in_body = 1;
      }
      uint64_t left = (uint64_t)n - off;
      uint64_t take = left < c->body_left ? left : c->body_left;
      c->body_left -= take;
      off += take;
      if (c->body_left == 0) {
        if (off != (size_t)n)
          return -1;  // bytes beyond the response: not pipelining, a framing error
        complete(t, c);
        if (c->done || now_ns() >= deadline_ns) return 0;
        if (send_some(c) != 0) return -1;
      }
    }
  }
}

static void* run(void* arg) {
  struct thread* t = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  const int is_head = strncmp(requests[0], "HEAD ", 5) == 0;
  char* buf = malloc(READ_BUF);
  for (int i = 0; i < t->nconns; ++i) {
    struct conn* c = &t->conns[i];
    c->next_path = ((size_t)i * 7919u + (size_t)t->nconns) % npaths;
    if (open_conn(ep, c) != 0) die("connect");
    start_request(c);
  }
  struct epoll_event evs[256];
  t->open_conns = t->nconns;
  while (now_ns() < deadline_ns && t->open_conns > 0) {
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; ++i) {
      struct conn* c = evs[i].data.ptr;
      if (c->done) continue;
      int bad = (evs[i].events & (EPOLLERR | EPOLLHUP)) != 0;
      if (!bad && (evs[i].events & EPOLLOUT)) bad = send_some(c) != 0;
      if (!bad && (evs[i].events & EPOLLIN)) bad = on_readable(t, c, is_head, buf) != 0;
      if (bad && now_ns() < deadline_ns) reopen(ep, t, c);
    }
  }
  for (int i = 0; i < t->nconns; ++i) close(t->conns[i].fd);
  close(ep);
  free(buf);
  return NULL;
}

static uint64_t percentile(uint64_t* merged, uint64_t total, double q) {
  uint64_t want = (uint64_t)(q * (double)total), seen = 0;
  for (uint64_t us = 0; us <= MAX_LATENCY_US; ++us) {
    seen += merged[us];
    if (seen > want) return us;
  }
  return MAX_LATENCY_US;
}

int main(int argc, char** argv) {
  int conns = 64, threads = 2, seconds = 5;
  const char *method = "GET", *header = NULL, *paths = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "c:t:d:m:H:p:1")) != -1) {
    switch (opt) {
      case 'c':
        conns = atoi(optarg);
        break;
      case 't':
        threads = atoi(optarg);
        break;
      case 'd':
        seconds = atoi(optarg);
        break;
      case 'm':
        method = optarg;
        break;
      case 'H':
        header = optarg;
        break;
      case 'p':
        paths = optarg;
        break;
      case '1':
        one_shot = 1;
        break;
      default:
        goto usage;
    }
  }
  if (optind != argc - 1 || !paths || conns < 1 || threads < 1 || seconds < 1) goto usage;
  port = atoi(argv[optind]);
  FILE* f = fopen(paths, "r");
  if (!f) die(paths);
  char line[4096];
  size_t cap = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if (npaths == cap) {
      cap = cap ? cap * 2 : 64;
      requests = realloc(requests, cap * sizeof *requests);
      request_lens = realloc(request_lens, cap * sizeof *request_lens);
    }
    int len = asprintf(&requests[npaths], "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n",
                       method, line, port, header ? header : "", header ? "\r\n" : "");
    if (len < 0) die("asprintf");
    request_lens[npaths++] = (size_t)len;
  }
  fclose(f);
  if (npaths == 0) {
    fprintf(stderr, "reqload: %s names no paths\n", paths);
    return 2;
  }
  if (threads > conns) threads = conns;
  struct thread* ts = calloc((size_t)threads, sizeof *ts);
  uint64_t start = now_ns();
  start_ns = start;
  deadline_ns = start + (uint64_t)seconds * 1000000000u;
  for (int i = 0; i < threads; ++i) {
    ts[i].nconns = conns / threads + (i < conns % threads);
    ts[i].conns = calloc((size_t)ts[i].nconns, sizeof *ts[i].conns);
    ts[i].latency = calloc(MAX_LATENCY_US + 1, sizeof *ts[i].latency);
    if (pthread_create(&ts[i].tid, NULL, run, &ts[i]) != 0) die("pthread_create");
  }
  uint64_t* merged = calloc(MAX_LATENCY_US + 1, sizeof *merged);
  uint64_t req = 0, bytes = 0, sock = 0, stat = 0, first_max = 0, last_done = start;
  for (int i = 0; i < threads; ++i) {
    pthread_join(ts[i].tid, NULL);
    req += ts[i].requests;
    bytes += ts[i].bytes;
    sock += ts[i].socket_errors;
    stat += ts[i].status_errors;
    if (ts[i].first_byte_max_ns > first_max) first_max = ts[i].first_byte_max_ns;
    if (ts[i].last_done_ns > last_done) last_done = ts[i].last_done_ns;
    for (uint64_t us = 0; us <= MAX_LATENCY_US; ++us) merged[us] += ts[i].latency[us];
  }
  uint64_t duration_us = (now_ns() - start) / 1000;
  printf(
      "WRKJSON {\"requests\":%llu,\"bytes\":%llu,\"duration_us\":%llu,\"socket_errors\":%llu,"
      "\"status_errors\":%llu,\"timeouts\":0,\"p50_us\":%llu,\"p99_us\":%llu,"
      "\"first_byte_max_us\":%llu,\"wall_us\":%llu}\n",
      (unsigned long long)req, (unsigned long long)bytes, (unsigned long long)duration_us,
      (unsigned long long)sock, (unsigned long long)stat,
      (unsigned long long)percentile(merged, req, 0.50),
      (unsigned long long)percentile(merged, req, 0.99), (unsigned long long)(first_max / 1000),
      (unsigned long long)((last_done - start) / 1000));
  return 0;
usage:
  fprintf(stderr,
          "usage: reqload -c CONNS -t THREADS -d SECONDS -m METHOD [-H 'Name: value'] [-1] -p "
          "PATHS PORT\n");
  return 2;
}
