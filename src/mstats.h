// mstats.h: statistics and the exit-time report (mstats.c); gm_fatal and
// gm_fmt (gmcore.h) are defined there too.
//
// Locking: each counter's owner's; gm_stats reads relaxed.
#ifndef GOMEM_MSTATS_H
#define GOMEM_MSTATS_H

void mstats_init(void);

#endif // GOMEM_MSTATS_H
