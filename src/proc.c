// proc.c: placeholder (thread registration and stop-the-world come next).
#include "internal.h"

__thread gm_m_t gm_tls_m __attribute__((tls_model("initial-exec")));

void proc_stop_deferred(void) {
  gm_tls_m.stop_pending = 0;
}
void proc_fork_child(void) {
}
