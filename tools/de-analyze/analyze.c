/*
 * analyze.c - the offline Difference Engine pipeline over memory images.
 *
 * Page ids are global: the pages of image 0, then image 1, ... Sharing is
 * found once (a bijective pre-transform cannot change which pages are
 * equal); the patch and compress steps run in a pipeline function that the
 * BWT experiment runs a second time over transformed pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze.h"
#include "page.h"
#include "page_bwt.h"
#include "page_hash.h"
#include "share_index.h"

enum page_class {
    PC_ZERO = 0,
    PC_DUP,
    PC_SHARED_FIRST,
    PC_SINGLETON,       /* before patch/compress decide */
    PC_PATCHED,
    PC_REFERENCE,
    PC_COMPRESSED,
    PC_INCOMPRESSIBLE,
};

/* A page pair the detector proposed: patched page and its reference. */
struct pair {
    uint32_t page;
    uint32_t ref;
};

struct actx {
    const struct analyze_opts *o;
    const uint8_t **pg;         /* page pointers, plain */
    const uint8_t **tpg;        /* page pointers, transformed (BWT) */
    uint64_t n;
    uint32_t *img_of;           /* image index of each page */
    uint8_t *share_cls;         /* result of the share step */
    uint64_t progress_done, progress_total;
};

/* The outcome of one patch+compress pipeline run. */
struct prun {
    uint8_t *cls;
    uint16_t *len;              /* encoded length of patched/compressed */
    struct pair *pairs;
    size_t npairs;
    uint64_t sim_hits;
    uint64_t enc_ns, dec_ns;    /* main patch codec */
    uint64_t cenc_ns, cdec_ns;  /* main compressor */
    uint64_t mismatches;
    uint64_t ns;                /* CPU time of the run */
    size_t simdetect_bytes;
};

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MONO() now_ns(CLOCK_MONOTONIC)
#define CPU()  now_ns(CLOCK_PROCESS_CPUTIME_ID)

static void progress(struct actx *c, uint64_t steps)
{
    c->progress_done += steps;
    if (c->o->progress)
        c->o->progress(c->o->progress_ctx, c->progress_done,
                       c->progress_total);
}

void analyze_default_opts(struct analyze_opts *o)
{
    memset(o, 0, sizeof *o);
    o->patch_codec = PATCH_ZSTD;
    o->compressor = COMP_LZO;
    o->patch_threshold = DE_DEFAULT_THRESHOLD;
    o->compress_threshold = DE_DEFAULT_THRESHOLD;
    simdetect_default_params(&o->sd);
    o->compare = 1;
}

static uint64_t grain(uint64_t len)
{
    return (len + ANALYZE_STORE_GRAIN - 1) / ANALYZE_STORE_GRAIN *
           ANALYZE_STORE_GRAIN;
}

static const void *share_page(void *ctx, uint64_t id)
{
    struct actx *c = ctx;

    return id < c->n ? c->pg[id] : NULL;
}

/* Step 1: identical pages over the whole set. */
static int share_step(struct actx *c, struct analyze_result *r,
                      size_t *index_bytes)
{
    struct share_index *si = share_index_new(c->n, share_page, c);
    uint64_t t0, hash_ns = 0;

    if (!si)
        return -ENOMEM;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t twin, h;
        int rc;

        if (page_is_zero(c->pg[i])) {
            c->share_cls[i] = PC_ZERO;
            continue;
        }
        t0 = MONO();
        h = page_hash(c->pg[i]);
        rc = share_index_find_or_insert(si, c->pg[i], h, i, &twin);
        hash_ns += MONO() - t0;
        if (rc < 0) {
            share_index_free(si);
            return rc;
        }
        if (rc == 1) {
            c->share_cls[i] = PC_DUP;
            c->share_cls[twin] = PC_SHARED_FIRST;
        } else {
            c->share_cls[i] = PC_SINGLETON;
        }
        if ((i & 4095) == 4095)
            progress(c, 4096);
    }
    progress(c, c->n & 4095);
    r->hash_ns = hash_ns;
    *index_bytes = share_index_bytes(si);
    share_index_free(si);
    return 0;
}

static int decode_check(struct patch_codec *pc, const uint8_t *ref,
                        const uint8_t *enc, size_t len, const uint8_t *want,
                        uint8_t *scratch, uint64_t *ns)
{
    uint64_t t0 = MONO();
    int rc = patch_decode(pc, ref, enc, len, scratch);

    *ns += MONO() - t0;
    return rc == 0 && memcmp(scratch, want, DE_PAGE_SIZE) == 0;
}

static int cdecode_check(struct compressor *cc, const uint8_t *enc,
                         size_t len, const uint8_t *want, uint8_t *scratch,
                         uint64_t *ns)
{
    uint64_t t0 = MONO();
    int rc = compressor_decode(cc, enc, len, scratch);

    *ns += MONO() - t0;
    return rc == 0 && memcmp(scratch, want, DE_PAGE_SIZE) == 0;
}

/* Steps 2 and 3 over the pages `pg` (plain or transformed). */
static int pipeline(struct actx *c, const uint8_t **pg, struct prun *p)
{
    const struct analyze_opts *o = c->o;
    struct simdetect *sd = NULL;
    struct patch_codec *pc = NULL;
    struct compressor *cc = NULL;
    uint8_t enc[DE_PAGE_SIZE + 64], scratch[DE_PAGE_SIZE];
    struct simdetect_keys k;
    uint64_t cpu0 = CPU(), t0, candidates = 0;
    int rc = -ENOMEM;

    p->cls = malloc(c->n);
    p->len = calloc(c->n, sizeof *p->len);
    p->pairs = malloc((c->n ? c->n : 1) * sizeof *p->pairs);
    for (uint64_t i = 0; i < c->n; i++)
        candidates += c->share_cls[i] == PC_SHARED_FIRST ||
                      c->share_cls[i] == PC_SINGLETON;
    sd = simdetect_new(&o->sd, candidates);
    pc = patch_codec_new(o->patch_codec, 0);
    cc = compressor_new(o->compressor, o->zstd_level);
    if (!p->cls || !p->len || !p->pairs || !sd || !pc || !cc)
        goto out;
    memcpy(p->cls, c->share_cls, c->n);

    /* Pages kept whole for their twins are free references. */
    for (uint64_t i = 0; i < c->n; i++)
        if (p->cls[i] == PC_SHARED_FIRST) {
            simdetect_keys(sd, pg[i], &k);
            if (simdetect_insert(sd, &k, i) != 0)
                goto out;
        }

    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t ref;
        ssize_t len;

        if ((i & 4095) == 4095)
            progress(c, 4096);
        if (p->cls[i] != PC_SINGLETON)
            continue;
        simdetect_keys(sd, pg[i], &k);
        if (simdetect_find(sd, &k, i, &ref) > 0) {
            p->sim_hits++;
            p->pairs[p->npairs].page = (uint32_t)i;
            p->pairs[p->npairs++].ref = (uint32_t)ref;
            t0 = MONO();
            len = patch_encode(pc, pg[ref], pg[i], enc, o->patch_threshold);
            p->enc_ns += MONO() - t0;
            if (len > 0) {
                if (!decode_check(pc, pg[ref], enc, (size_t)len, pg[i],
                                  scratch, &p->dec_ns))
                    p->mismatches++;
                p->cls[i] = PC_PATCHED;
                p->len[i] = (uint16_t)len;
                if (p->cls[ref] == PC_SINGLETON)
                    p->cls[ref] = PC_REFERENCE;
                continue;
            }
            if (len != PATCH_TOO_BIG) {
                rc = (int)len;
                goto out;
            }
        }
        if (simdetect_insert(sd, &k, i) != 0)
            goto out;
    }
    progress(c, c->n & 4095);
    p->simdetect_bytes = simdetect_bytes(sd);

    for (uint64_t i = 0; i < c->n; i++) {
        ssize_t len;

        if ((i & 4095) == 4095)
            progress(c, 4096);
        if (p->cls[i] != PC_SINGLETON)
            continue;
        t0 = MONO();
        len = compressor_encode(cc, pg[i], enc, o->compress_threshold);
        p->cenc_ns += MONO() - t0;
        if (len > 0) {
            if (!cdecode_check(cc, enc, (size_t)len, pg[i], scratch,
                               &p->cdec_ns))
                p->mismatches++;
            p->cls[i] = PC_COMPRESSED;
            p->len[i] = (uint16_t)len;
        } else if (len == COMP_TOO_BIG) {
            p->cls[i] = PC_INCOMPRESSIBLE;
        } else {
            rc = (int)len;
            goto out;
        }
    }
    progress(c, c->n & 4095);

    /* The daemon's own copy of each shared content and reference (never
     * the guest's page: that one is shared) is held compressed when that
     * saves a quarter of the page, as de-dom0d's compress_objects does. */
    for (uint64_t i = 0; i < c->n && !o->whole_objects; i++) {
        ssize_t len;

        if (p->cls[i] != PC_SHARED_FIRST && p->cls[i] != PC_REFERENCE)
            continue;
        t0 = MONO();
        len = compressor_encode(cc, pg[i], enc, ANALYZE_OBJECT_MAX);
        p->cenc_ns += MONO() - t0;
        if (len > 0) {
            if (!cdecode_check(cc, enc, (size_t)len, pg[i], scratch,
                               &p->cdec_ns))
                p->mismatches++;
            p->len[i] = (uint16_t)len;
        } else if (len != COMP_TOO_BIG) {
            rc = (int)len;
            goto out;
        }
    }
    rc = 0;
out:
    p->ns = CPU() - cpu0;
    simdetect_free(sd);
    patch_codec_free(pc);
    compressor_free(cc);
    return rc;
}

static void prun_free(struct prun *p)
{
    free(p->cls);
    free(p->len);
    free(p->pairs);
    memset(p, 0, sizeof *p);
}

/* The daemon's copy of a shared content or reference: compressed when the
 * run compressed it (len set), else whole. */
static uint64_t object_bytes(const struct prun *p, uint64_t i, int objz)
{
    return objz && p->len[i] ? grain(p->len[i]) : DE_PAGE_SIZE;
}

/* What the live system holds for page i of a run, attributing one copy of
 * each shared content (and the one zero page) to its first holder; objz:
 * with the daemon's copies as the run encoded them. */
static uint64_t held_bytes(const struct prun *p, uint64_t i, int *first_zero,
                           int objz)
{
    switch (p->cls[i]) {
    case PC_ZERO:
        if (*first_zero) {
            *first_zero = 0;
            return DE_PAGE_SIZE + ANALYZE_RECORD_BYTES;
        }
        return ANALYZE_RECORD_BYTES;
    case PC_DUP:
        return ANALYZE_RECORD_BYTES;
    case PC_SHARED_FIRST:
    case PC_REFERENCE:
        return object_bytes(p, i, objz) + ANALYZE_RECORD_BYTES;
    case PC_PATCHED:
    case PC_COMPRESSED:
        return grain(p->len[i]) + ANALYZE_RECORD_BYTES;
    default:
        return DE_PAGE_SIZE;    /* singleton or incompressible: in the guest */
    }
}

static void count_run(const struct actx *c, const struct prun *p,
                      struct analyze_result *r, size_t share_index_bytes)
{
    int first_zero = 1;
    uint64_t held = 0;

    memset(&r->total, 0, sizeof r->total);
    memset(&r->cost, 0, sizeof r->cost);
    for (size_t m = 0; m < r->nimages; m++) {
        memset(&r->image[m], 0, sizeof r->image[m]);
        r->image_saved_de[m] = 0;
    }
    for (uint64_t i = 0; i < c->n; i++) {
        struct analyze_counts *t[2] = { &r->total, &r->image[c->img_of[i]] };
        uint64_t h = held_bytes(p, i, &first_zero, 1);

        held += h;
        r->image_saved_de[c->img_of[i]] += (int64_t)DE_PAGE_SIZE - (int64_t)h;
        if (p->cls[i] != PC_SINGLETON && p->cls[i] != PC_INCOMPRESSIBLE)
            r->cost.record_bytes += ANALYZE_RECORD_BYTES;
        for (int j = 0; j < 2; j++) {
            t[j]->pages_total++;
            switch (p->cls[i]) {
            case PC_ZERO: t[j]->pages_zero++; break;
            case PC_DUP: t[j]->pages_dup++; break;
            case PC_SHARED_FIRST: t[j]->pages_shared_first++; break;
            case PC_REFERENCE: t[j]->pages_reference++; break;
            case PC_PATCHED:
                t[j]->pages_patched++;
                t[j]->patch_bytes += p->len[i];
                break;
            case PC_COMPRESSED:
                t[j]->pages_compressed++;
                t[j]->compress_bytes += p->len[i];
                break;
            default: t[j]->pages_incompressible++; break;
            }
        }
        switch (p->cls[i]) {
        case PC_SHARED_FIRST: r->cost.canonical_bytes += object_bytes(p, i, 1); break;
        case PC_REFERENCE: r->cost.reference_bytes += object_bytes(p, i, 1); break;
        case PC_PATCHED: r->cost.patch_bytes += grain(p->len[i]); break;
        case PC_COMPRESSED: r->cost.compress_bytes += grain(p->len[i]); break;
        case PC_INCOMPRESSIBLE: r->cost.whole_bytes += DE_PAGE_SIZE; break;
        default: break;
        }
    }
    if (!first_zero)
        r->cost.canonical_bytes += DE_PAGE_SIZE;
    r->cost.share_index_bytes = share_index_bytes;
    r->cost.simdetect_bytes = p->simdetect_bytes;
    r->saved.de = (int64_t)(c->n * DE_PAGE_SIZE) - (int64_t)held -
                  (int64_t)share_index_bytes - (int64_t)p->simdetect_bytes;
    /* index overhead is the daemon's, not any one image's: spread evenly */
    for (size_t m = 0; m < r->nimages; m++)
        r->image_saved_de[m] -= (int64_t)((share_index_bytes +
                                p->simdetect_bytes) * r->image[m].pages_total /
                                (c->n ? c->n : 1));
}

/* Net saving of a run with its compress step removed (share + patch). */
static int64_t saved_share_patch(const struct actx *c, const struct prun *p,
                                 size_t share_index_bytes)
{
    int first_zero = 1;
    int64_t held = 0;

    for (uint64_t i = 0; i < c->n; i++) {
        if (p->cls[i] == PC_COMPRESSED || p->cls[i] == PC_INCOMPRESSIBLE)
            held += DE_PAGE_SIZE;
        else
            held += (int64_t)held_bytes(p, i, &first_zero, 0);
    }
    return (int64_t)(c->n * DE_PAGE_SIZE) - held -
           (int64_t)share_index_bytes - (int64_t)p->simdetect_bytes;
}

static int64_t saved_share_only(const struct actx *c, size_t index_bytes)
{
    int64_t held = 0;
    int any_zero = 0;

    for (uint64_t i = 0; i < c->n; i++) {
        switch (c->share_cls[i]) {
        case PC_ZERO: any_zero = 1; /* fall through */
        case PC_DUP: held += ANALYZE_RECORD_BYTES; break;
        case PC_SHARED_FIRST: held += DE_PAGE_SIZE + ANALYZE_RECORD_BYTES; break;
        default: held += DE_PAGE_SIZE; break;
        }
    }
    if (any_zero)
        held += DE_PAGE_SIZE;
    return (int64_t)(c->n * DE_PAGE_SIZE) - held - (int64_t)index_bytes;
}

/* Every patch codec on the main run's page pairs. */
static int compare_patch(struct actx *c, const struct prun *p,
                         struct analyze_result *r)
{
    uint8_t enc[DE_PAGE_SIZE + 64], scratch[DE_PAGE_SIZE];

    for (int id = 0; id < PATCH_NCODECS; id++) {
        struct analyze_codec *ac = &r->patch[id];
        struct patch_codec *pc;

        if (!c->o->compare && id != (int)c->o->patch_codec)
            continue;
        pc = patch_codec_new((enum patch_codec_id)id, 0);
        if (!pc)
            return -errno;
        ac->name = patch_codec_name((enum patch_codec_id)id);
        for (size_t j = 0; j < p->npairs; j++) {
            const uint8_t *ref = c->pg[p->pairs[j].ref];
            const uint8_t *tgt = c->pg[p->pairs[j].page];
            uint64_t t0 = MONO();
            ssize_t len = patch_encode(pc, ref, tgt, enc,
                                       c->o->patch_threshold);

            ac->encode_ns += MONO() - t0;
            ac->tried++;
            if (len > 0) {
                ac->accepted++;
                ac->bytes += (uint64_t)len;
                ac->saved_bytes += (int64_t)DE_PAGE_SIZE -
                                   (int64_t)grain((uint64_t)len);
                if (!decode_check(pc, ref, enc, (size_t)len, tgt, scratch,
                                  &ac->decode_ns))
                    ac->mismatches++;
            } else if (len != PATCH_TOO_BIG) {
                patch_codec_free(pc);
                return (int)len;
            }
        }
        patch_codec_free(pc);
        r->patch_measured[id] = 1;
        progress(c, p->npairs);
    }
    return 0;
}

/* Every compressor on a set of pages: the main run's leftovers (`only`
 * set) or every page. */
static int compare_comp(struct actx *c, const struct prun *p, int leftovers,
                        struct analyze_codec *out, int *measured)
{
    uint8_t enc[DE_PAGE_SIZE + 64], scratch[DE_PAGE_SIZE];

    for (int id = 0; id < COMP_NCOMPRESSORS; id++) {
        struct analyze_codec *ac = &out[id];
        struct compressor *cc;

        if (!c->o->compare && id != (int)c->o->compressor)
            continue;
        cc = compressor_new((enum compressor_id)id,
                            id == COMP_ZSTD ? c->o->zstd_level : 0);
        if (!cc)
            return -errno;
        ac->name = compressor_name((enum compressor_id)id);
        for (uint64_t i = 0; i < c->n; i++) {
            uint64_t t0;
            ssize_t len;

            if (leftovers && p->cls[i] != PC_COMPRESSED &&
                p->cls[i] != PC_INCOMPRESSIBLE)
                continue;
            t0 = MONO();
            len = compressor_encode(cc, c->pg[i], enc,
                                    c->o->compress_threshold);
            ac->encode_ns += MONO() - t0;
            ac->tried++;
            if (len > 0) {
                ac->accepted++;
                ac->bytes += (uint64_t)len;
                ac->saved_bytes += (int64_t)DE_PAGE_SIZE -
                                   (int64_t)grain((uint64_t)len) -
                                   ANALYZE_RECORD_BYTES;
                if (!cdecode_check(cc, enc, (size_t)len, c->pg[i], scratch,
                                   &ac->decode_ns))
                    ac->mismatches++;
            } else if (len != COMP_TOO_BIG) {
                compressor_free(cc);
                return (int)len;
            }
        }
        compressor_free(cc);
        measured[id] = 1;
        progress(c, leftovers ? ac->tried : c->n);
    }
    return 0;
}

static int bwt_experiment(struct actx *c, const struct prun *plain,
                          struct analyze_result *r, size_t share_index_bytes)
{
    struct page_bwt *b = page_bwt_new();
    uint8_t *buf = malloc(c->n * DE_PAGE_SIZE), back[DE_PAGE_SIZE];
    struct prun tp = { 0 };
    struct analyze_bwt *x = &r->bwt;
    int rc = -ENOMEM;

    c->tpg = malloc(c->n * sizeof *c->tpg);
    if (!b || !buf || !c->tpg)
        goto out;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t t0 = CPU();
        uint16_t primary;

        rc = page_bwt_forward(b, c->pg[i], buf + i * DE_PAGE_SIZE, &primary);
        x->transform_ns += CPU() - t0;
        if (rc != 0)
            goto out;
        /* Round trip every page: the experiment is void if it is lossy. */
        if (page_bwt_inverse(b, buf + i * DE_PAGE_SIZE, primary, back) != 0 ||
            memcmp(back, c->pg[i], DE_PAGE_SIZE) != 0)
            x->mismatches++;
        c->tpg[i] = buf + i * DE_PAGE_SIZE;
        if ((i & 4095) == 4095)
            progress(c, 4096);
    }
    rc = pipeline(c, c->tpg, &tp);
    if (rc != 0)
        goto out;
    x->ran = 1;
    x->sim_hits_plain = plain->sim_hits;
    x->sim_hits_bwt = tp.sim_hits;
    x->ns_plain = plain->ns;
    x->ns_bwt = tp.ns + x->transform_ns;
    x->mismatches += tp.mismatches;
    for (int pass = 0; pass < 2; pass++) {
        const struct prun *p = pass ? &tp : plain;
        uint64_t patched = 0, pbytes = 0, comp = 0, cbytes = 0;
        int first_zero = 1;
        int64_t held = 0;

        for (uint64_t i = 0; i < c->n; i++) {
            held += (int64_t)held_bytes(p, i, &first_zero, 1);
            /* each encoded transformed page also stores its primary index */
            if (pass && (p->cls[i] == PC_PATCHED || p->cls[i] == PC_COMPRESSED))
                held += 2;
            if (p->cls[i] == PC_PATCHED) {
                patched++;
                pbytes += p->len[i];
            } else if (p->cls[i] == PC_COMPRESSED) {
                comp++;
                cbytes += p->len[i];
            }
        }
        held += (int64_t)(share_index_bytes + p->simdetect_bytes);
        if (pass) {
            x->patched_bwt = patched; x->patch_bytes_bwt = pbytes;
            x->compressed_bwt = comp; x->compress_bytes_bwt = cbytes;
            x->saved_bwt = (int64_t)(c->n * DE_PAGE_SIZE) - held;
        } else {
            x->patched_plain = patched; x->patch_bytes_plain = pbytes;
            x->compressed_plain = comp; x->compress_bytes_plain = cbytes;
            x->saved_plain = (int64_t)(c->n * DE_PAGE_SIZE) - held;
        }
    }
    rc = 0;
out:
    prun_free(&tp);
    page_bwt_free(b);
    free(buf);
    free(c->tpg);
    c->tpg = NULL;
    return rc;
}

int analyze_run(struct mem_image *imgs, size_t nimg,
                const struct analyze_opts *o, struct analyze_result *r,
                char *err, size_t errlen)
{
    struct actx c = { .o = o };
    struct prun main_run = { 0 };
    size_t sib = 0;
    uint64_t wall0 = MONO(), cpu0 = CPU();
    int rc = -ENOMEM;

    memset(r, 0, sizeof *r);
    for (size_t m = 0; m < nimg; m++)
        c.n += imgs[m].npages;
    if (c.n == 0 || c.n > UINT32_MAX) {
        snprintf(err, errlen, "%s", c.n ? "too many pages (over 2^32)"
                                        : "no pages to analyze");
        return -1;
    }
    r->nimages = nimg;
    r->image = calloc(nimg, sizeof *r->image);
    r->image_saved_de = calloc(nimg, sizeof *r->image_saved_de);
    c.pg = malloc(c.n * sizeof *c.pg);
    c.img_of = malloc(c.n * sizeof *c.img_of);
    c.share_cls = malloc(c.n);
    if (!r->image || !r->image_saved_de || !c.pg || !c.img_of || !c.share_cls)
        goto fail;
    for (size_t m = 0, id = 0; m < nimg; m++)
        for (size_t i = 0; i < imgs[m].npages; i++, id++) {
            c.pg[id] = mem_image_page(&imgs[m], i);
            c.img_of[id] = (uint32_t)m;
        }
    c.progress_total = 3 * c.n + (o->compare ? 4 * c.n : 2 * c.n) +
                       (o->bwt ? 3 * c.n : 0);

    rc = share_step(&c, r, &sib);
    if (rc != 0)
        goto fail;
    r->saved.share = saved_share_only(&c, sib);

    rc = pipeline(&c, c.pg, &main_run);
    if (rc != 0)
        goto fail;
    count_run(&c, &main_run, r, sib);
    r->saved.share_patch = saved_share_patch(&c, &main_run, sib);
    r->saved.patch = r->saved.share_patch - r->saved.share;
    r->verify_mismatches = main_run.mismatches;

    rc = compare_patch(&c, &main_run, r);
    if (rc == 0)
        rc = compare_comp(&c, &main_run, 1, r->comp, r->comp_measured);
    if (rc == 0)
        rc = compare_comp(&c, &main_run, 0, r->comp_only, r->comp_measured);
    if (rc != 0)
        goto fail;
    /* Compression only is the main compressor over every page. */
    r->saved.compress = r->comp_only[o->compressor].saved_bytes;
    for (int i = 0; i < PATCH_NCODECS; i++)
        r->verify_mismatches += r->patch[i].mismatches;
    for (int i = 0; i < COMP_NCOMPRESSORS; i++)
        r->verify_mismatches += r->comp[i].mismatches +
                                r->comp_only[i].mismatches;
    if (o->bwt) {
        rc = bwt_experiment(&c, &main_run, r, sib);
        if (rc != 0)
            goto fail;
    }
    r->wall_s = (double)(MONO() - wall0) / 1e9;
    r->cpu_s = (double)(CPU() - cpu0) / 1e9;
    prun_free(&main_run);
    free(c.pg);
    free(c.img_of);
    free(c.share_cls);
    return 0;
fail:
    snprintf(err, errlen, "analysis failed: %s", strerror(rc < 0 ? -rc : ENOMEM));
    prun_free(&main_run);
    free(c.pg);
    free(c.img_of);
    free(c.share_cls);
    analyze_result_free(r);
    return -1;
}

void analyze_result_free(struct analyze_result *r)
{
    free(r->image);
    free(r->image_saved_de);
    r->image = NULL;
    r->image_saved_de = NULL;
}
