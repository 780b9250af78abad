/*
 * report.c - renders an analysis as a table or as JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "page.h"
#include "report.h"

static double mib(int64_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

static double pct(int64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static double us_per(uint64_t ns, uint64_t n)
{
    return n ? (double)ns / 1000.0 / (double)n : 0.0;
}

static void table_counts(FILE *f, const char *label,
                         const struct analyze_counts *c)
{
    fprintf(f, "%-22s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
               " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
            label, c->pages_total, c->pages_zero, c->pages_dup,
            c->pages_shared_first, c->pages_patched, c->pages_reference,
            c->pages_compressed, c->pages_incompressible);
}

static const char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');

    return s ? s + 1 : p;
}

void report_table(FILE *f, const struct analyze_result *r,
                  const struct analyze_opts *o, char *const *names)
{
    uint64_t total_bytes = r->total.pages_total * DE_PAGE_SIZE;
    const struct analyze_savings *s = &r->saved;
    const struct analyze_cost *c = &r->cost;

    fprintf(f, "Difference Engine analysis: %zu image(s), %" PRIu64
               " pages (%.1f MiB)\n", r->nimages, r->total.pages_total,
            mib((int64_t)total_bytes));
    fprintf(f, "patch codec %s (threshold %zu B), compressor %s (threshold "
               "%zu B), similarity detector (%u,%u) c=%u\n\n",
            patch_codec_name(o->patch_codec), o->patch_threshold,
            compressor_name(o->compressor), o->compress_threshold,
            o->sd.k, o->sd.s, o->sd.c);

    fprintf(f, "%-22s %8s %8s %8s %8s %8s %8s %8s %8s\n", "pages", "total",
            "zero", "dup", "shared1", "patched", "ref", "compr", "whole");
    for (size_t m = 0; m < r->nimages; m++)
        table_counts(f, basename_of(names[m]), &r->image[m]);
    table_counts(f, "all", &r->total);
    fprintf(f, "(dup: equal to an earlier page; shared1: the one copy kept "
               "of a content with twins;\n ref: kept whole as a patch "
               "reference; whole: neither shared, patched nor compressible)\n\n");

    fprintf(f, "%-34s %12s %8s\n", "net saving", "MiB", "%");
    fprintf(f, "%-34s %12.1f %7.1f%%\n", "sharing only", mib(s->share),
            pct(s->share, total_bytes));
    fprintf(f, "%-34s %12.1f %7.1f%%\n", "compression only", mib(s->compress),
            pct(s->compress, total_bytes));
    fprintf(f, "%-34s %12.1f %7.1f%%\n", "patching (after sharing)",
            mib(s->patch), pct(s->patch, total_bytes));
    fprintf(f, "%-34s %12.1f %7.1f%%\n", "sharing + patching",
            mib(s->share_patch), pct(s->share_patch, total_bytes));
    fprintf(f, "%-34s %12.1f %7.1f%%\n", "Difference Engine (all three)",
            mib(s->de), pct(s->de, total_bytes));
    if (s->de > 0)
        fprintf(f, "  contributions: sharing %.1f%%, patching %.1f%%, "
                   "compression %.1f%%\n",
                100.0 * (double)s->share / (double)s->de,
                100.0 * (double)s->patch / (double)s->de,
                100.0 * (double)(s->de - s->share_patch) / (double)s->de);
    for (size_t m = 0; m < r->nimages; m++)
        fprintf(f, "  %-32s %12.1f %7.1f%%\n", basename_of(names[m]),
                mib(r->image_saved_de[m]),
                pct(r->image_saved_de[m], r->image[m].pages_total * DE_PAGE_SIZE));

    fprintf(f, "\nwhat the live system holds (Difference Engine)       MiB\n");
    fprintf(f, "  one copy per shared content + zero page %12.2f%s\n", mib((int64_t)c->canonical_bytes),
            o->whole_objects ? "" : "  (held compressed)");
    fprintf(f, "  daemon's copy of each reference page    %12.2f%s\n", mib((int64_t)c->reference_bytes),
            o->whole_objects ? "" : "  (held compressed)");
    fprintf(f, "  patches (store grain %d B)              %12.2f\n", ANALYZE_STORE_GRAIN, mib((int64_t)c->patch_bytes));
    fprintf(f, "  compressed pages                        %12.2f\n", mib((int64_t)c->compress_bytes));
    fprintf(f, "  pages left whole                        %12.2f\n", mib((int64_t)c->whole_bytes));
    fprintf(f, "  page records (%d B each)                %12.2f\n", ANALYZE_RECORD_BYTES, mib((int64_t)c->record_bytes));
    fprintf(f, "  share index                             %12.2f\n", mib((int64_t)c->share_index_bytes));
    fprintf(f, "  similarity detector                     %12.2f\n", mib((int64_t)c->simdetect_bytes));

    fprintf(f, "\npatch codecs on the same %" PRIu64 " page pairs\n",
            r->patch[o->patch_codec].tried);
    fprintf(f, "  %-9s %9s %10s %9s %11s %11s %12s\n", "codec", "accepted",
            "bytes", "avg B", "encode us", "decode us", "saved MiB");
    for (int i = 0; i < PATCH_NCODECS; i++) {
        const struct analyze_codec *a = &r->patch[i];
        if (!r->patch_measured[i])
            continue;
        fprintf(f, "  %-9s %9" PRIu64 " %10" PRIu64 " %9.0f %11.2f %11.2f %12.1f\n",
                a->name, a->accepted, a->bytes,
                a->accepted ? (double)a->bytes / (double)a->accepted : 0.0,
                us_per(a->encode_ns, a->tried), us_per(a->decode_ns, a->accepted),
                mib(a->saved_bytes));
    }
    for (int set = 0; set < 2; set++) {
        const struct analyze_codec *cs = set ? r->comp_only : r->comp;
        fprintf(f, "\ncompressors on %s\n",
                set ? "every page (compression only)"
                    : "the pages left after sharing and patching");
        fprintf(f, "  %-9s %9s %9s %10s %9s %11s %11s %12s\n", "codec",
                "pages", "kept", "bytes", "avg B", "encode us", "decode us",
                "saved MiB");
        for (int i = 0; i < COMP_NCOMPRESSORS; i++) {
            const struct analyze_codec *a = &cs[i];
            if (!r->comp_measured[i])
                continue;
            fprintf(f, "  %-9s %9" PRIu64 " %9" PRIu64 " %10" PRIu64
                       " %9.0f %11.2f %11.2f %12.1f\n",
                    a->name, a->tried, a->accepted, a->bytes,
                    a->accepted ? (double)a->bytes / (double)a->accepted : 0.0,
                    us_per(a->encode_ns, a->tried),
                    us_per(a->decode_ns, a->accepted), mib(a->saved_bytes));
        }
    }
    if (r->bwt.ran) {
        const struct analyze_bwt *b = &r->bwt;
        fprintf(f, "\nBWT+MTF pre-transform (experimental)      plain        bwt\n");
        fprintf(f, "  pages with a similar reference    %10" PRIu64 " %10" PRIu64 "\n", b->sim_hits_plain, b->sim_hits_bwt);
        fprintf(f, "  pages patched                     %10" PRIu64 " %10" PRIu64 "\n", b->patched_plain, b->patched_bwt);
        fprintf(f, "  patch bytes                       %10" PRIu64 " %10" PRIu64 "\n", b->patch_bytes_plain, b->patch_bytes_bwt);
        fprintf(f, "  pages compressed                  %10" PRIu64 " %10" PRIu64 "\n", b->compressed_plain, b->compressed_bwt);
        fprintf(f, "  compressed bytes                  %10" PRIu64 " %10" PRIu64 "\n", b->compress_bytes_plain, b->compress_bytes_bwt);
        fprintf(f, "  net saving MiB                    %10.1f %10.1f\n", mib(b->saved_plain), mib(b->saved_bwt));
        fprintf(f, "  CPU seconds                       %10.2f %10.2f\n", (double)b->ns_plain / 1e9, (double)b->ns_bwt / 1e9);
        fprintf(f, "  round-trip failures               %10s %10" PRIu64 "\n", "-", b->mismatches);
        fprintf(f, "  verdict: the BWT pre-transform %s (%+.1f MiB net, %.1fx the CPU time)\n",
                b->saved_bwt > b->saved_plain ? "HELPS" : "does NOT help",
                mib(b->saved_bwt - b->saved_plain),
                b->ns_plain ? (double)b->ns_bwt / (double)b->ns_plain : 0.0);
    }
    fprintf(f, "\nverified: %" PRIu64 " decode mismatches\n", r->verify_mismatches);
    fprintf(f, "time: %.2f s wall, %.2f s CPU (%.0f MiB/min of memory per CPU)\n",
            r->wall_s, r->cpu_s,
            r->cpu_s > 0 ? mib((int64_t)total_bytes) * 60.0 / r->cpu_s : 0.0);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_counts(FILE *f, const struct analyze_counts *c)
{
    fprintf(f, "\"pages_total\":%" PRIu64 ",\"pages_zero\":%" PRIu64
               ",\"pages_dup\":%" PRIu64 ",\"pages_shared_first\":%" PRIu64
               ",\"pages_patched\":%" PRIu64 ",\"patch_bytes\":%" PRIu64
               ",\"pages_reference\":%" PRIu64 ",\"pages_compressed\":%" PRIu64
               ",\"compress_bytes\":%" PRIu64 ",\"pages_incompressible\":%" PRIu64,
            c->pages_total, c->pages_zero, c->pages_dup, c->pages_shared_first,
            c->pages_patched, c->patch_bytes, c->pages_reference,
            c->pages_compressed, c->compress_bytes, c->pages_incompressible);
}

static void json_codec(FILE *f, const struct analyze_codec *a)
{
    fprintf(f, "{\"tried\":%" PRIu64 ",\"accepted\":%" PRIu64
               ",\"bytes\":%" PRIu64 ",\"encode_us\":%.3f,\"decode_us\":%.3f"
               ",\"saved_bytes\":%" PRId64 ",\"mismatches\":%" PRIu64 "}",
            a->tried, a->accepted, a->bytes, us_per(a->encode_ns, a->tried),
            us_per(a->decode_ns, a->accepted), a->saved_bytes, a->mismatches);
}

void report_json(FILE *f, const struct analyze_result *r,
                 const struct analyze_opts *o, char *const *names, int verify)
{
    const struct analyze_cost *c = &r->cost;

    fputc('{', f);
    json_counts(f, &r->total);
    fprintf(f, ",\"saved_bytes\":{\"share\":%" PRId64 ",\"compress\":%" PRId64
               ",\"patch\":%" PRId64 ",\"share_patch\":%" PRId64
               ",\"de\":%" PRId64 "}",
            r->saved.share, r->saved.compress, r->saved.patch,
            r->saved.share_patch, r->saved.de);
    fprintf(f, ",\"cost_bytes\":{\"canonical\":%" PRIu64 ",\"reference\":%" PRIu64
               ",\"patch\":%" PRIu64 ",\"compress\":%" PRIu64 ",\"whole\":%" PRIu64
               ",\"records\":%" PRIu64 ",\"share_index\":%" PRIu64
               ",\"simdetect\":%" PRIu64 "}",
            c->canonical_bytes, c->reference_bytes, c->patch_bytes,
            c->compress_bytes, c->whole_bytes, c->record_bytes,
            c->share_index_bytes, c->simdetect_bytes);
    fprintf(f, ",\"settings\":{\"patch_codec\":\"%s\",\"compressor\":\"%s\","
               "\"patch_threshold\":%zu,\"compress_threshold\":%zu,"
               "\"simdetect\":{\"k\":%u,\"s\":%u,\"c\":%u},"
               "\"compress_objects\":%s}",
            patch_codec_name(o->patch_codec), compressor_name(o->compressor),
            o->patch_threshold, o->compress_threshold, o->sd.k, o->sd.s, o->sd.c,
            o->whole_objects ? "false" : "true");
    fputs(",\"codecs\":{\"patch\":{", f);
    for (int i = 0, first = 1; i < PATCH_NCODECS; i++) {
        if (!r->patch_measured[i])
            continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", r->patch[i].name);
        json_codec(f, &r->patch[i]);
        first = 0;
    }
    fputs("},\"compress\":{", f);
    for (int i = 0, first = 1; i < COMP_NCOMPRESSORS; i++) {
        if (!r->comp_measured[i])
            continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", r->comp[i].name);
        json_codec(f, &r->comp[i]);
        first = 0;
    }
    fputs("},\"compress_only\":{", f);
    for (int i = 0, first = 1; i < COMP_NCOMPRESSORS; i++) {
        if (!r->comp_measured[i])
            continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", r->comp_only[i].name);
        json_codec(f, &r->comp_only[i]);
        first = 0;
    }
    fputs("}}", f);
    if (r->bwt.ran) {
        const struct analyze_bwt *b = &r->bwt;
        fprintf(f, ",\"bwt\":{\"helps\":%s,\"sim_hits\":[%" PRIu64 ",%" PRIu64
                   "],\"pages_patched\":[%" PRIu64 ",%" PRIu64 "],\"patch_bytes\":[%"
                   PRIu64 ",%" PRIu64 "],\"pages_compressed\":[%" PRIu64 ",%" PRIu64
                   "],\"compress_bytes\":[%" PRIu64 ",%" PRIu64 "],\"saved_bytes\":[%"
                   PRId64 ",%" PRId64 "],\"cpu_s\":[%.3f,%.3f],\"mismatches\":%" PRIu64 "}",
                b->saved_bwt > b->saved_plain ? "true" : "false",
                b->sim_hits_plain, b->sim_hits_bwt, b->patched_plain,
                b->patched_bwt, b->patch_bytes_plain, b->patch_bytes_bwt,
                b->compressed_plain, b->compressed_bwt, b->compress_bytes_plain,
                b->compress_bytes_bwt, b->saved_plain, b->saved_bwt,
                (double)b->ns_plain / 1e9, (double)b->ns_bwt / 1e9, b->mismatches);
    }
    fputs(",\"images\":[", f);
    for (size_t m = 0; m < r->nimages; m++) {
        fprintf(f, "%s{\"path\":", m ? "," : "");
        json_str(f, names[m]);
        fputc(',', f);
        json_counts(f, &r->image[m]);
        fprintf(f, ",\"saved_bytes_de\":%" PRId64 "}", r->image_saved_de[m]);
    }
    fputc(']', f);
    if (verify)
        fprintf(f, ",\"verify_mismatches\":%" PRIu64, r->verify_mismatches);
    fprintf(f, ",\"hash_lookup_us\":%.3f,\"wall_s\":%.3f,\"cpu_s\":%.3f}\n",
            us_per(r->hash_ns, r->total.pages_total - r->total.pages_zero),
            r->wall_s, r->cpu_s);
}
