// runone: run one benchmark process and measure it.
//
//   runone [-o STATS] [-p PRELOAD] -- PROGRAM [ARGS...]
//
// Forks, sets LD_PRELOAD=PRELOAD in the child only (or removes LD_PRELOAD when
// -p is not given, so the launcher's own environment cannot leak an
// allocator in), execs PROGRAM, and waits for it with wait4. Writes to STATS
// (default stderr) the lines
//
//   wall_s <seconds, CLOCK_MONOTONIC from fork to reap>
//   maxrss_kb <peak resident set of the child, ru_maxrss>
//   user_s <user CPU>   sys_s <system CPU>
//   minflt <minor page faults>
//   exit <exit status, or -1>   signal <terminating signal, or 0>
//
// and exits with the child's exit status, or 128 + signal number. Timeouts
// are left to timeout(1), which kills the whole process group.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(void) {
  fprintf(stderr, "usage: runone [-o STATS] [-p PRELOAD] -- PROGRAM [ARGS...]\n");
  exit(125);
}

int main(int argc, char **argv) {
  const char *stats = NULL, *preload = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      stats = argv[++i];
    } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
      preload = argv[++i];
    } else if (argv[i][0] == '-') {
      usage();
    } else {
      break;
    }
  }
  if (i >= argc) usage();

  fflush(NULL);
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("runone: fork");
    return 125;
  }
  if (pid == 0) {
    if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execv(argv[i], argv + i);
    fprintf(stderr, "runone: exec %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int st;
  struct rusage ru;
  while (wait4(pid, &st, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("runone: wait4");
      return 125;
    }
  }
  double wall = now() - t0;

  FILE *f = stats ? fopen(stats, "w") : stderr;
  if (!f) {
    perror("runone: stats file");
    f = stderr;
  }
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  fprintf(f, "wall_s %.6f\nmaxrss_kb %ld\nuser_s %.6f\nsys_s %.6f\nminflt %ld\nexit %d\nsignal %d\n", wall,
          ru.ru_maxrss, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_minflt, code, sig);
  if (f != stderr) fclose(f);
  return sig ? 128 + sig : code;
}
