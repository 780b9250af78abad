/*
 * stats.h - per-guest counters and fault-latency histograms.
 *
 * The histogram is log-linear (HdrHistogram style): each power of two
 * between 512 ns and 2^34 ns (~17 s) is split into HIST_SUB equal
 * sub-buckets, so recording is a couple of shifts and an increment, and
 * any percentile is within 1/(2*HIST_SUB) (~3%) of the true value. Exact
 * min, max and sum are kept beside it, and percentiles are clamped to
 * [min, max] so a single sample reports itself exactly.
 */
#ifndef DE_STATS_H
#define DE_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct json_buf;

#define HIST_MIN_SHIFT 9        /* first bucketed octave starts at 512 ns */
#define HIST_MAX_SHIFT 34       /* values >= 2^34 ns (~17.2 s) overflow */
#define HIST_SUB_SHIFT 4
#define HIST_SUB (1u << HIST_SUB_SHIFT)
/* bucket 0: [0, 512 ns); then HIST_SUB per octave; last: overflow. */
#define HIST_NBUCKETS (2 + (HIST_MAX_SHIFT - HIST_MIN_SHIFT) * HIST_SUB)

struct lat_hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t min_ns;            /* UINT64_MAX while empty */
    uint64_t max_ns;
    uint64_t bucket[HIST_NBUCKETS];
};

void hist_init(struct lat_hist *h);
void hist_record(struct lat_hist *h, uint64_t ns);
/* Adds src's samples into dst (for the global view). */
void hist_merge(struct lat_hist *dst, const struct lat_hist *src);
/* Value at percentile p (0..100) in ns; 0 when empty. */
uint64_t hist_percentile(const struct lat_hist *h, double p);
/* Mean in ns; 0 when empty. */
uint64_t hist_mean(const struct lat_hist *h);

/* Bucket index of a value and a bucket's [lo, hi) range, for tests. */
unsigned hist_bucket(uint64_t ns);
void hist_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi);

/* What a faulting page was reconstructed from. */
enum page_kind {
    KIND_ZERO = 0,
    KIND_SHARED,
    KIND_PATCHED,
    KIND_COMPRESSED,
    KIND_SWAPPED,
    KIND_MAX
};
const char *page_kind_name(enum page_kind k);

/*
 * The counters of one guest (and, merged, of the whole daemon). Gauges
 * describe the present ("pages patched now"), totals only grow. Who sets
 * what is the pipeline's business; the JSON names are the contract in
 * de-ctl(8).
 */
struct de_stats {
    /* gauges */
    uint64_t pages_zero;        /* reclaimed, restored as zeros */
    uint64_t pages_shared;      /* reclaimed, identical to a canonical copy
                                 * (zero pages included) */
    uint64_t pages_patched;
    uint64_t pages_compressed;
    uint64_t pages_swapped;
    uint64_t store_bytes;       /* store bytes held for this guest */
    uint64_t swap_bytes;        /* swap file bytes held for this guest */
    uint64_t saved_bytes;       /* reclaimed pages * 4 KiB - bytes held */
    /* totals */
    uint64_t pages_scanned;
    uint64_t faults;
    uint64_t cow_breaks;        /* guest wrote to a frozen/shared page */
    uint64_t reclaim_stale;     /* reclaim lost a race with a guest write */
    uint64_t patch_rejected;    /* over patch_threshold */
    uint64_t compress_rejected; /* over compress_threshold */
    uint64_t errors;            /* faults that could not be served */
    uint64_t scan_cpu_ns;
    /* pages reclaimed as each kind since adoption (a page moved from the
     * store to the swap file counts again as swapped) */
    uint64_t reclaimed[KIND_MAX];
    struct lat_hist fault_lat[KIND_MAX];
};

void stats_init(struct de_stats *s);
/* Records one served fault of `kind` that took `ns`. */
void stats_fault(struct de_stats *s, enum page_kind kind, uint64_t ns);
/* Adds every counter and histogram of src into dst. */
void stats_merge(struct de_stats *dst, const struct de_stats *src);
/* The fault latency over all kinds. */
void stats_fault_hist(const struct de_stats *s, struct lat_hist *out);

/* Writes the contract's fields as members of the JSON object the caller
 * has open (the caller adds "name", "id" and the like). */
void stats_to_json(struct json_buf *j, const struct de_stats *s);

/* CPU time of the calling thread in ns, for scan_cpu_ns accounting. */
uint64_t stats_thread_cpu_ns(void);
/* Monotonic clock in ns, for fault latency. */
uint64_t stats_now_ns(void);

#endif
