/*
 * stats.c - counters and log-linear latency histograms.
 */
#include <string.h>
#include <time.h>

#include "control_proto.h"
#include "stats.h"

void hist_init(struct lat_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

unsigned hist_bucket(uint64_t ns)
{
    unsigned e;

    if (ns < (UINT64_C(1) << HIST_MIN_SHIFT))
        return 0;
    if (ns >= (UINT64_C(1) << HIST_MAX_SHIFT))
        return HIST_NBUCKETS - 1;
    e = 63u - (unsigned)__builtin_clzll(ns);
    return 1 + (e - HIST_MIN_SHIFT) * HIST_SUB +
           (unsigned)((ns >> (e - HIST_SUB_SHIFT)) & (HIST_SUB - 1));
}

void hist_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi)
{
    unsigned e, sub;

    if (b == 0) {
        *lo = 0;
        *hi = UINT64_C(1) << HIST_MIN_SHIFT;
        return;
    }
    if (b >= HIST_NBUCKETS - 1) {
        *lo = UINT64_C(1) << HIST_MAX_SHIFT;
        *hi = UINT64_MAX;
        return;
    }
    e = HIST_MIN_SHIFT + (b - 1) / HIST_SUB;
    sub = (b - 1) % HIST_SUB;
    *lo = (uint64_t)(HIST_SUB + sub) << (e - HIST_SUB_SHIFT);
    *hi = *lo + (UINT64_C(1) << (e - HIST_SUB_SHIFT));
}

void hist_record(struct lat_hist *h, uint64_t ns)
{
    h->bucket[hist_bucket(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void hist_merge(struct lat_hist *dst, const struct lat_hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t hist_percentile(const struct lat_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    if (!(p > 0))
        return h->min_ns;
    if (p >= 100)
        return h->max_ns;
    /* Nearest-rank definition: the smallest sample with at least p% of
     * the samples at or below it. */
    rank = (uint64_t)(p / 100.0 * (double)h->count);
    if ((double)rank < p / 100.0 * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    for (unsigned b = 0; b < HIST_NBUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) {
            uint64_t lo, hi, v;

            hist_bucket_range(b, &lo, &hi);
            v = b == HIST_NBUCKETS - 1 ? h->max_ns : lo + (hi - lo) / 2;
            if (v < h->min_ns)
                v = h->min_ns;
            if (v > h->max_ns)
                v = h->max_ns;
            return v;
        }
    }
    return h->max_ns;
}

uint64_t hist_mean(const struct lat_hist *h)
{
    return h->count ? h->sum_ns / h->count : 0;
}

static const char *const kind_names[KIND_MAX] = {
    [KIND_ZERO] = "zero",
    [KIND_SHARED] = "shared",
    [KIND_PATCHED] = "patched",
    [KIND_COMPRESSED] = "compressed",
    [KIND_SWAPPED] = "swapped",
};

const char *page_kind_name(enum page_kind k)
{
    return (unsigned)k < KIND_MAX ? kind_names[k] : "?";
}

void stats_init(struct de_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < KIND_MAX; k++)
        hist_init(&s->fault_lat[k]);
}

void stats_fault(struct de_stats *s, enum page_kind kind, uint64_t ns)
{
    s->faults++;
    if ((unsigned)kind < KIND_MAX)
        hist_record(&s->fault_lat[kind], ns);
}

void stats_merge(struct de_stats *dst, const struct de_stats *src)
{
    dst->pages_zero += src->pages_zero;
    dst->pages_shared += src->pages_shared;
    dst->pages_patched += src->pages_patched;
    dst->pages_compressed += src->pages_compressed;
    dst->pages_swapped += src->pages_swapped;
    dst->store_bytes += src->store_bytes;
    dst->swap_bytes += src->swap_bytes;
    dst->saved_bytes += src->saved_bytes;
    dst->pages_scanned += src->pages_scanned;
    dst->faults += src->faults;
    dst->cow_breaks += src->cow_breaks;
    dst->reclaim_stale += src->reclaim_stale;
    dst->patch_rejected += src->patch_rejected;
    dst->compress_rejected += src->compress_rejected;
    dst->errors += src->errors;
    dst->scan_cpu_ns += src->scan_cpu_ns;
    for (int k = 0; k < KIND_MAX; k++) {
        dst->reclaimed[k] += src->reclaimed[k];
        hist_merge(&dst->fault_lat[k], &src->fault_lat[k]);
    }
}

void stats_fault_hist(const struct de_stats *s, struct lat_hist *out)
{
    hist_init(out);
    for (int k = 0; k < KIND_MAX; k++)
        hist_merge(out, &s->fault_lat[k]);
}

static double ns_to_us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

void stats_to_json(struct json_buf *j, const struct de_stats *s)
{
    struct lat_hist all;

    json_kv_u64(j, "pages_zero", s->pages_zero);
    json_kv_u64(j, "pages_shared", s->pages_shared);
    json_kv_u64(j, "pages_patched", s->pages_patched);
    json_kv_u64(j, "pages_compressed", s->pages_compressed);
    json_kv_u64(j, "pages_swapped", s->pages_swapped);
    json_kv_u64(j, "store_bytes", s->store_bytes);
    json_kv_u64(j, "swap_bytes", s->swap_bytes);
    json_kv_u64(j, "saved_bytes", s->saved_bytes);
    json_kv_u64(j, "pages_scanned", s->pages_scanned);
    json_kv_u64(j, "faults", s->faults);
    json_kv_u64(j, "cow_breaks", s->cow_breaks);
    json_kv_u64(j, "reclaim_stale", s->reclaim_stale);
    json_kv_u64(j, "patch_rejected", s->patch_rejected);
    json_kv_u64(j, "compress_rejected", s->compress_rejected);
    json_kv_u64(j, "errors", s->errors);
    json_kv_double(j, "scan_cpu_s", (double)s->scan_cpu_ns / 1e9);

    stats_fault_hist(s, &all);
    json_kv_double(j, "fault_p50_us", ns_to_us(hist_percentile(&all, 50)));
    json_kv_double(j, "fault_p99_us", ns_to_us(hist_percentile(&all, 99)));
    json_kv_double(j, "fault_max_us", ns_to_us(all.max_ns));
    json_kv_double(j, "fault_mean_us", ns_to_us(hist_mean(&all)));

    json_key(j, "reclaimed");
    json_obj_begin(j);
    for (int k = 0; k < KIND_MAX; k++)
        json_kv_u64(j, kind_names[k], s->reclaimed[k]);
    json_obj_end(j);

    json_key(j, "fault_latency");
    json_obj_begin(j);
    for (int k = 0; k < KIND_MAX; k++) {
        const struct lat_hist *h = &s->fault_lat[k];

        json_key(j, kind_names[k]);
        json_obj_begin(j);
        json_kv_u64(j, "count", h->count);
        json_kv_double(j, "p50_us", ns_to_us(hist_percentile(h, 50)));
        json_kv_double(j, "p99_us", ns_to_us(hist_percentile(h, 99)));
        json_kv_double(j, "max_us", ns_to_us(h->count ? h->max_ns : 0));
        json_obj_end(j);
    }
    json_obj_end(j);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t stats_thread_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t stats_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
