/* tusk-agent: runs datum commands inside a sandbox, one at a time, for the worker outside it.
 *
 * The worker keeps one agent per sandbox and talks to it over the agent's stdin and stdout.
 * Request: u32 little-endian length, then NUL-terminated fields
 *   socket, home_cpu, timeout_ms, uid, gid, cwd, argc, argv..., envc, env..., followed by the
 *   stdin bytes. (uid or gid -1: keep the agent's; timeout_ms 0: none; cwd empty: keep the
 *   agent's; socket empty: an ordinary command, else datum batching, below; home_cpu -1: none.)
 * Replies: frames of one type byte, a u32 little-endian length and the data:
 *   'r' once at start (ready), 'o' stdout bytes, 'e' stderr bytes,
 *   'x' "<status> <timed_out> <error kind> <errno>" at the end of each command, where status is
 *   the exit code, or minus the signal number, and error kind is '-' (none), 'x' (exec failed),
 *   'c' (chdir failed), 's' (no batching socket) or 'g' (a batching command ended before it
 *   took the datum it was given).
 * Datum batching: the agent listens on the unix socket `socket` while the command runs. Each
 * `pachctl next datum` (this same program under the name pachctl, or any client speaking the
 * protocol) connects, sends 'n' (the datum is done) or 'e' and an error message (it failed),
 * and shuts down its writing half. The agent then drains the command's stdout and stderr (what
 * the datum printed goes with it) and sends the worker 'n' and the request. The worker answers
 * with a control message on the request channel (u32 length, then 'd' and the next datum's
 * NUL-terminated "NAME=value" variables, or 'q': no datum left), and the agent passes 'd' and
 * the variables to the client (which then returns) or kills the command. The timeout applies
 * to each datum: from the command's start or an answer to the next request.
 * A client that keeps its connection (the Python helper) opens it with 'P'; then each request
 * is a u32 little-endian length and 'n' or 'e' and the message, and each answer a u32 length
 * and 'd' and the variables. While such a connection waits between requests, a new client
 * replaces it (it is closed unread: a request sent meanwhile was not taken, and is sent again).
 * Batching with a home CPU (home_cpu >= 0): a batch of small datums is mostly hand-overs
 * (client -> agent -> worker -> agent -> client), and on a virtual machine waking a process on
 * another CPU costs tens of microseconds where the same CPU costs a few. The agent runs on the
 * home CPU (where the worker runs) while the command runs; when a kept connection's datum took
 * less than SHORT_DATUM_US, its client is held on the home CPU until the answer has woken it
 * there, then given back its CPUs: the answer starts with 'D' instead of 'd', and the client
 * takes back the CPUs it had before it runs on (the agent also does once it runs again). A
 * longer datum is not held: its wake-up does not show.
 * With --cpus=N,M,... the agent (and the worker) run pinned to one CPU, so that handing a
 * command to the agent, its start and its end stay on that CPU; once a command has exec'd, the
 * agent lets it run on the listed CPUs (what the worker was allowed), so user code that starts
 * threads or processes still spreads over them.
 * With --pidns the agent owns a pid namespace: after every command it kills every process left
 * in it (setsid children included); otherwise only the command's process group is killed.
 * EOF on stdin ends the agent: between commands at once, during one by killing the command
 * first (the worker died: a command that never ends must not outlive it).
 * Static, no dependencies: it runs in images that have no shell and no libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static int ctl_in = -1, ctl_out = -1, chld_pipe[2] = {-1, -1}, own_pidns = 0;
static cpu_set_t command_cpus; /* --cpus: where commands may run once started */
static int have_command_cpus = 0;
#define SHORT_DATUM_US 2000 /* a datum this quick has its client's wake-up on the home CPU */

static void die(const char *what) {
  dprintf(2, "tusk-agent: %s: %s\n", what, strerror(errno));
  _exit(111);
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(0); /* the worker has gone */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void frame(char type, const void *data, uint32_t n) {
  unsigned char head[5] = {(unsigned char)type, n & 255, (n >> 8) & 255, (n >> 16) & 255, n >> 24};
  write_all(ctl_out, head, 5);
  if (n) write_all(ctl_out, data, n);
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void on_chld(int sig) {
  (void)sig;
  int saved = errno;
  (void)!write(chld_pipe[1], "c", 1);
  errno = saved;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long now_ms(void) { return now_us() / 1000; }

/* The reply to a request of a kept connection: u32 little-endian length, then msg. */
static void send_framed(int fd, const char *msg, uint32_t n) {
  unsigned char head[4] = {n & 255, (n >> 8) & 255, (n >> 16) & 255, n >> 24};
  struct iovec iov[2] = {{head, 4}, {(void *)msg, n}};
  struct msghdr mh = {0};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  (void)!sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void kill_leftovers(pid_t pgid, int reap) {
  int all = own_pidns && getpid() <= 2;
  if (all) kill(-1, SIGKILL);
  else kill(-pgid, SIGKILL);
  if (!reap) return;
  /* reap what was killed (orphans come to us: we are a subreaper); outside a pid namespace of
   * our own, a process that left the group may live on, so never block on it */
  while (waitpid(-1, NULL, all ? 0 : WNOHANG) > 0 || errno == EINTR) {
  }
}

/* Forward what the command has written so far (its pipes are non-blocking). */
static void drain(int fd, int *open, char type, char *buf, size_t size) {
  while (*open) {
    ssize_t r = read(fd, buf, size);
    if (r > 0) {
      frame(type, buf, (uint32_t)r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 || errno != EAGAIN) *open = 0;
    return;
  }
}

static int listen_on(const char *path) {
  struct sockaddr_un addr = {0};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) || chmod(path, 0666) || listen(fd, 8)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A control message of the worker during a batching command: 'd' + variables, or 'q'. */
static char *read_control(uint32_t *len) {
  unsigned char head[4];
  if (read_all(ctl_in, head, 4)) _exit(0); /* the worker has gone */
  *len = head[0] | head[1] << 8 | head[2] << 16 | (uint32_t)head[3] << 24;
  char *msg = malloc(*len + 1);
  if (!msg || read_all(ctl_in, msg, *len)) _exit(0);
  return msg;
}

static char *next_field(char **p, char *end) {
  char *s = *p;
  char *z = memchr(s, 0, (size_t)(end - s));
  if (!z) {
    dprintf(2, "tusk-agent: malformed request\n");
    _exit(112);
  }
  *p = z + 1;
  return s;
}

static void run(char *msg, uint32_t len) {
  char *p = msg, *end = msg + len;
  char *sock_path = next_field(&p, end);
  int home = atoi(next_field(&p, end));
  long long timeout_ms = atoll(next_field(&p, end));
  long uid = atol(next_field(&p, end)), gid = atol(next_field(&p, end));
  char *cwd = next_field(&p, end);
  int argc = atoi(next_field(&p, end));
  char **argv = calloc((size_t)argc + 1, sizeof(char *));
  for (int i = 0; i < argc; i++) argv[i] = next_field(&p, end);
  int envc = atoi(next_field(&p, end));
  char **envp = calloc((size_t)envc + 1, sizeof(char *));
  for (int i = 0; i < envc; i++) envp[i] = next_field(&p, end);
  char *in_data = p;
  size_t in_left = (size_t)(end - p);

  int in[2], out[2], err[2], ex[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
      pipe2(ex, O_CLOEXEC))
    die("pipe");
  /* batching: the socket of `next datum`, one client at a time, its request and its state */
  int batching = sock_path[0] != 0, lsock = -1, conn = -1, awaiting = 0, stopping = 0, lost = 0;
  static char req[65536];
  uint32_t req_len = 0;
  /* a kept connection (-1: not known until its first byte), its client, the home CPU */
  int kept = -1, held = 0, at_home = 0;
  pid_t peer = 0;
  long long answered_us = -1;
  cpu_set_t own_cpus, home_cpus, client_cpus;
  if (batching && (lsock = listen_on(sock_path)) < 0) {
    char reply[80];
    int n = snprintf(reply, sizeof reply, "127 0 s %d", errno);
    frame('x', reply, (uint32_t)n);
    free(argv);
    free(envp);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    char kind = 'x';
    if (gid >= 0 && (setgroups(0, NULL) != 0 && errno != EPERM)) goto fail;
    if (gid >= 0 && setgid((gid_t)gid) != 0) goto fail;
    if (uid >= 0 && setuid((uid_t)uid) != 0) goto fail;
    if (cwd[0] && chdir(cwd) != 0) {
      kind = 'c';
      goto fail;
    }
    environ = envp;
    execvp(argv[0], argv);
  fail:;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%c %d", kind, errno);
    (void)!write(ex[1], buf, (size_t)n);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(ex[1]);
  if (batching && home >= 0 && home < CPU_SETSIZE &&
      sched_getaffinity(0, sizeof own_cpus, &own_cpus) == 0) {
    CPU_ZERO(&home_cpus);
    CPU_SET(home, &home_cpus);
    client_cpus = have_command_cpus ? command_cpus : own_cpus;
    at_home = sched_setaffinity(0, sizeof home_cpus, &home_cpus) == 0;
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  if (in_left == 0) {
    close(in[1]);
    in[1] = -1;
  }
  int status = 0, exited = 0, timed_out = 0, out_open = 1, err_open = 1, ex_open = 1;
  char exec_err[32] = "- 0";
  long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
  static char buf[65536];
  while (!exited || out_open || err_open || awaiting) {
    struct pollfd fds[9];
    int n = 0;
    fds[n++] = (struct pollfd){chld_pipe[0], POLLIN, 0};
    fds[n++] = (struct pollfd){out_open ? out[0] : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){err_open ? err[0] : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){ex_open ? ex[0] : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){in[1], POLLOUT, 0};
    /* a kept connection waiting between requests gives way to a new client */
    int accepting = lsock >= 0 && (conn < 0 || (kept == 1 && !awaiting && req_len == 0)) &&
                    !stopping && !exited;
    fds[n++] = (struct pollfd){accepting ? lsock : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){conn >= 0 && !awaiting ? conn : -1, POLLIN, 0};
    fds[n++] = (struct pollfd){awaiting ? ctl_in : -1, POLLIN, 0};
    /* between requests the worker writes nothing: a hang-up means it is gone */
    fds[n++] = (struct pollfd){awaiting ? -1 : ctl_in, POLLRDHUP, 0};
    int wait = -1;
    if (deadline >= 0 && !awaiting) {
      long long left = deadline - now_ms();
      if (left <= 0) {
        if (timed_out) break; /* killed, and something still holds a pipe */
        timed_out = 1;
        kill_leftovers(pid, 0);
        deadline = now_ms() + 2000;
        continue;
      }
      wait = (int)left;
    }
    if (poll(fds, (nfds_t)n, wait) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[0].revents) {
      (void)!read(chld_pipe[0], buf, sizeof buf);
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0)
        if (w == pid) {
          exited = 1;
          status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
          /* in a pid namespace of our own the datum ends with its command: what it left
           * behind (holding its output pipes or not) is killed now */
          if (own_pidns) kill_leftovers(pid, 0);
        }
    }
    for (int k = 1; k <= 2; k++) {
      if (!fds[k].revents) continue;
      ssize_t r = read(fds[k].fd, buf, sizeof buf);
      if (r > 0) frame(k == 1 ? 'o' : 'e', buf, (uint32_t)r);
      else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (k == 1) out_open = 0; else err_open = 0;
      }
    }
    if (fds[8].revents & (POLLHUP | POLLRDHUP | POLLERR)) {
      /* the worker died mid-command (its end of our stdin closed): nobody will read the
       * result, so the command and all it started end now, and the agent (the sandbox) too */
      kill_leftovers(pid, 1);
      _exit(3);
    }
    if (fds[3].revents) {
      ssize_t r = read(ex[0], exec_err, sizeof exec_err - 1);
      if (r > 0) exec_err[r] = 0;
      ex_open = 0;
      /* exec'd (EOF, nothing written): free it from the agent's CPU; ESRCH if it already ended */
      if (r == 0 && have_command_cpus) sched_setaffinity(pid, sizeof command_cpus, &command_cpus);
    }
    if (fds[5].revents && !(conn >= 0 && fds[6].revents)) {
      int fresh = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
      if (fresh >= 0) {
        if (conn >= 0) close(conn); /* a kept connection, idle: its client connects again */
        conn = fresh;
        req_len = 0;
        kept = -1;
        struct ucred cred;
        socklen_t size = sizeof cred;
        peer = getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &size) == 0 ? cred.pid : 0;
        struct timeval tv = {5, 0};
        setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      }
    }
    if (fds[6].revents && conn >= 0) {
      ssize_t r = recv(conn, req + req_len, sizeof req - req_len, MSG_DONTWAIT);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r > 0) req_len += (uint32_t)r;
      if (kept < 0 && req_len > 0) {
        kept = req[0] == 'P';
        if (kept) memmove(req, req + 1, --req_len);
      }
      char *body = req;
      uint32_t body_len = req_len;
      int whole = 0;
      if (kept == 1) {
        if (r <= 0) { /* its client has gone: wait for another */
          close(conn);
          conn = -1;
          continue;
        }
        uint32_t want = 0;
        if (req_len >= 4) {
          want = (unsigned char)req[0] | (unsigned char)req[1] << 8 |
                 (unsigned char)req[2] << 16 | (uint32_t)(unsigned char)req[3] << 24;
          if (want > sizeof req - 4) want = sizeof req - 4;
          whole = req_len >= 4 + want;
        }
        body = req + 4;
        body_len = want;
      } else {
        whole = r <= 0 || req_len == sizeof req;
      }
      if (whole) {
        /* a quick datum: its client wakes on the home CPU, with the agent and the worker
         * (only in a pid namespace of our own, where its pid names nothing outside it) */
        if (kept == 1 && at_home && own_pidns && peer > 0 && answered_us >= 0 &&
            now_us() - answered_us < SHORT_DATUM_US)
          held = sched_setaffinity(peer, sizeof home_cpus, &home_cpus) == 0;
        /* a whole request: what the datum printed goes first, then the request */
        drain(out[0], &out_open, 'o', buf, sizeof buf);
        drain(err[0], &err_open, 'e', buf, sizeof buf);
        frame('n', body, body_len);
        awaiting = 1;
      }
    }
    if (fds[7].revents) {
      uint32_t clen;
      char *msg = read_control(&clen);
      awaiting = 0;
      int keep = 0;
      if (clen > 0 && msg[0] == 'd' && !exited) {
        if (kept == 1 && held) msg[0] = 'D'; /* the client gives itself its CPUs back first */
        if (kept == 1) send_framed(conn, msg, clen);
        else (void)!send(conn, msg, clen, MSG_NOSIGNAL);
        keep = kept == 1;
        if (timeout_ms > 0) deadline = now_ms() + timeout_ms;
      } else if (clen > 0 && msg[0] == 'd') {
        lost = 1; /* the command ended before it could take the datum */
      } else if (!exited) {
        stopping = 1;
        kill_leftovers(pid, 0);
      }
      if (held) { /* woken on the home CPU by now: its own CPUs again */
        sched_setaffinity(peer, sizeof client_cpus, &client_cpus);
        held = 0;
      }
      answered_us = now_us();
      req_len = 0;
      if (!keep) {
        close(conn);
        conn = -1;
      }
      free(msg);
    }
    if (fds[4].revents && in[1] >= 0) {
      ssize_t w = write(in[1], in_data, in_left > 65536 ? 65536 : in_left);
      if (w > 0) {
        in_data += w;
        in_left -= (size_t)w;
      }
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_left == 0) {
        close(in[1]);
        in[1] = -1;
      }
    }
  }
  kill_leftovers(pid, 1);
  if (at_home) sched_setaffinity(0, sizeof own_cpus, &own_cpus);
  if (!exited) status = -SIGKILL;
  if (conn >= 0) close(conn);
  if (lsock >= 0) {
    close(lsock);
    unlink(sock_path);
  }
  if (in[1] >= 0) close(in[1]);
  close(out[0]);
  close(err[0]);
  close(ex[0]);
  if (lost && exec_err[0] == '-') strcpy(exec_err, "g 0");
  char reply[64];
  int n = snprintf(reply, sizeof reply, "%d %d %s", status, timed_out && !stopping, exec_err);
  frame('x', reply, (uint32_t)n);
  free(argv);
  free(envp);
}

/* `pachctl next datum [--error MESSAGE]` inside a sandbox (this program, named pachctl): tell
 * the agent the datum is done (or failed) and wait until the next datum is in /pfs. Exit 0 when
 * there is one; the agent kills the command when none is left. */
static int next_datum_client(int argc, char **argv) {
  const char *error = NULL;
  int ok = argc >= 3 && strcmp(argv[1], "next") == 0 && strcmp(argv[2], "datum") == 0;
  for (int i = 3; ok && i < argc; i++) {
    if (strcmp(argv[i], "--error") == 0 && i + 1 < argc) error = argv[++i];
    else if (strncmp(argv[i], "--error=", 8) == 0) error = argv[i] + 8;
    else ok = 0;
  }
  if (!ok) {
    dprintf(2, "%s: only `%s next datum [--error MESSAGE]` works inside a pipeline's sandbox\n",
            argv[0], argv[0]);
    return 2;
  }
  const char *path = getenv("TUSK_NEXT_DATUM_SOCKET");
  if (!path || !path[0]) {
    dprintf(2, "%s next datum: not in a pipeline with transform.datum_batching "
               "(TUSK_NEXT_DATUM_SOCKET is not set)\n", argv[0]);
    return 2;
  }
  struct sockaddr_un addr = {0};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
    dprintf(2, "%s next datum: cannot reach the worker at %s: %s\n", argv[0], path,
            strerror(errno));
    return 1;
  }
  size_t n = error ? strlen(error) : 0;
  char *msg = malloc(n + 1);
  if (!msg) return 1;
  msg[0] = error ? 'e' : 'n';
  if (n) memcpy(msg + 1, error, n);
  for (size_t done = 0; done < n + 1;) {
    ssize_t w = send(fd, msg + done, n + 1 - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      dprintf(2, "%s next datum: the worker went away: %s\n", argv[0], strerror(errno));
      return 1;
    }
    done += (size_t)w;
  }
  free(msg);
  shutdown(fd, SHUT_WR);
  char reply[4096];
  ssize_t got = 0, r;
  while ((r = read(fd, reply, sizeof reply)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    got += r;
  }
  if (got <= 0) {
    dprintf(2, "%s next datum: no datum left\n", argv[0]);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *name = strrchr(argv[0], '/');
  name = name ? name + 1 : argv[0];
  if (strcmp(name, "pachctl") == 0 || strcmp(name, "tusk") == 0)
    return next_datum_client(argc, argv);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--pidns") == 0) own_pidns = 1;
    if (strncmp(argv[i], "--cpus=", 7) == 0) {
      CPU_ZERO(&command_cpus);
      for (char *p = argv[i] + 7; *p;) {
        long cpu = strtol(p, &p, 10);
        if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET((int)cpu, &command_cpus);
        if (*p) p++;
      }
      have_command_cpus = CPU_COUNT(&command_cpus) > 0;
    }
  }
  /* Not dumpable: user code (same uid) cannot open /proc/<agent>/fd or mem, so it can neither
   * write forged replies to the worker nor read the next request. exec resets it for commands. */
  prctl(PR_SET_DUMPABLE, 0);
  ctl_in = fcntl(0, F_DUPFD_CLOEXEC, 10);
  ctl_out = fcntl(1, F_DUPFD_CLOEXEC, 10);
  if (ctl_in < 0 || ctl_out < 0 || pipe2(chld_pipe, O_CLOEXEC | O_NONBLOCK)) die("setup");
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_chld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  frame('r', "tusk-agent 1", 12);
  for (;;) {
    unsigned char head[4];
    if (read_all(ctl_in, head, 4)) return 0;
    uint32_t len = head[0] | head[1] << 8 | head[2] << 16 | (uint32_t)head[3] << 24;
    char *msg = malloc(len + 1);
    if (!msg || read_all(ctl_in, msg, len)) return 0;
    msg[len] = 0;
    run(msg, len);
    free(msg);
  }
}
