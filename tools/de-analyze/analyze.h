/*
 * analyze.h - offline Difference Engine analysis of a set of memory images.
 *
 * The pipeline is the paper's, in its order: identical pages are found over
 * all pages first (zero pages included); only pages with no twin are
 * patched, against reference pages found by the similarity detector; only
 * pages neither shared nor patched, and not serving as a reference, are
 * compressed. Savings are net: every byte the live system would hold is
 * counted (see analyze_cost below and docs/de-analyze-json.md).
 */
#ifndef DE_ANALYZE_H
#define DE_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "compressor.h"
#include "mem_image.h"
#include "patch_codec.h"
#include "simdetect.h"

/* What the live system holds per reclaimed page besides its encoding:
 * the per-page record of de-dom0d (state, store handle, length). */
#define ANALYZE_RECORD_BYTES 16
/* The page store packs encodings in classes of this granularity. */
#define ANALYZE_STORE_GRAIN  32
/* A daemon copy is held compressed only under this (de-dom0d's rule). */
#define ANALYZE_OBJECT_MAX   3072

struct analyze_opts {
    enum patch_codec_id patch_codec;
    enum compressor_id compressor;
    int zstd_level;                 /* for the zstd compressor; 0 = 3 */
    size_t patch_threshold;         /* keep patches strictly under this */
    size_t compress_threshold;      /* keep compressed pages under this */
    struct simdetect_params sd;
    int compare;                    /* every codec side by side */
    int bwt;                        /* BWT+MTF experiment beside the plain run */
    int whole_objects;              /* the daemon's copies held whole, as in
                                       the paper (de-dom0d compress_objects no) */
    /* Called now and then with pages processed so far (of `total`
     * page-steps); may be NULL. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

void analyze_default_opts(struct analyze_opts *o);

/* Page counts by outcome. Every page is in exactly one of: zero, dup,
 * shared_first (the one copy of a content that has twins), patched,
 * reference, compressed, incompressible. */
struct analyze_counts {
    uint64_t pages_total;
    uint64_t pages_zero;
    uint64_t pages_dup;             /* non-zero, equal to an earlier page */
    uint64_t pages_shared_first;    /* non-zero, kept once for its twins */
    uint64_t pages_patched;
    uint64_t patch_bytes;
    uint64_t pages_reference;       /* singletons that some patch needs */
    uint64_t pages_compressed;
    uint64_t compress_bytes;
    uint64_t pages_incompressible;
};

/* One codec measured on the same inputs as the others. */
struct analyze_codec {
    const char *name;
    uint64_t tried;                 /* page pairs / pages offered */
    uint64_t accepted;              /* encodings under the threshold */
    uint64_t bytes;                 /* total bytes of accepted encodings */
    uint64_t encode_ns;             /* over all tried */
    uint64_t decode_ns;             /* over all accepted */
    uint64_t mismatches;            /* decodes that were not bit-exact */
    int64_t saved_bytes;            /* net saving of the scenario */
};

/* Net bytes saved, against pages_total * 4096, per scenario. */
struct analyze_savings {
    int64_t share;                  /* sharing only (zero pages included) */
    int64_t compress;               /* compression only, every page */
    int64_t patch;                  /* patching only, after identical pages
                                       are shared: share_patch - share */
    int64_t share_patch;
    int64_t de;                     /* sharing + patching + compression */
};

/* What the live system would hold for the full pipeline. */
struct analyze_cost {
    uint64_t canonical_bytes;       /* one copy per shared content + zero page */
    uint64_t reference_bytes;       /* daemon's own copy of each reference */
    uint64_t patch_bytes;           /* patches, rounded to the store grain */
    uint64_t compress_bytes;        /* compressed pages, likewise */
    uint64_t whole_bytes;           /* incompressible pages left whole */
    uint64_t record_bytes;          /* per reclaimed page records */
    uint64_t share_index_bytes;     /* share index tables */
    uint64_t simdetect_bytes;       /* similarity detector tables */
};

/* The BWT+MTF experiment: the same pipeline over transformed pages. */
struct analyze_bwt {
    int ran;
    uint64_t sim_hits_plain, sim_hits_bwt;     /* pages that found a reference */
    uint64_t patched_plain, patched_bwt;
    uint64_t patch_bytes_plain, patch_bytes_bwt;
    uint64_t compressed_plain, compressed_bwt;
    uint64_t compress_bytes_plain, compress_bytes_bwt;
    int64_t saved_plain, saved_bwt;            /* net DE saving each way */
    uint64_t ns_plain, ns_bwt;                 /* CPU time of each pipeline */
    uint64_t transform_ns;                     /* forward transforms */
    uint64_t mismatches;                       /* failed round trips */
};

struct analyze_result {
    size_t nimages;
    struct analyze_counts total;
    struct analyze_counts *image;   /* nimages entries */
    int64_t *image_saved_de;        /* net DE saving attributed per image */
    struct analyze_savings saved;
    struct analyze_cost cost;
    struct analyze_codec patch[PATCH_NCODECS];   /* same pairs each */
    struct analyze_codec comp[COMP_NCOMPRESSORS]; /* same pages each */
    struct analyze_codec comp_only[COMP_NCOMPRESSORS]; /* every page */
    int patch_measured[PATCH_NCODECS];
    int comp_measured[COMP_NCOMPRESSORS];
    struct analyze_bwt bwt;
    uint64_t verify_mismatches;     /* main pipeline decodes */
    uint64_t hash_ns;               /* hash + share index lookups */
    double wall_s, cpu_s;
};

/* Runs the analysis. Returns 0, or -1 with a message in err. */
int analyze_run(struct mem_image *imgs, size_t nimg,
                const struct analyze_opts *o, struct analyze_result *r,
                char *err, size_t errlen);

void analyze_result_free(struct analyze_result *r);

#endif
