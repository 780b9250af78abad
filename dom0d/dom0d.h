/*
 * dom0d.h - de-dom0d's types: the daemon, its guests, their page records,
 * the canonical contents shared between pages, and sharing groups.
 */
#ifndef DE_DOM0D_H
#define DE_DOM0D_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compressor.h"
#include "config.h"
#include "dexc.h"
#include "page.h"
#include "patch_codec.h"
#include "share_index.h"
#include "simdetect.h"
#include "stats.h"
#include "store.h"

struct event;
struct event_base;
struct ctl_server;
struct swapfile;
struct xendoms;

/*
 * What the daemon knows of one guest page. 16 bytes: this is the per-page
 * record de-analyze charges (ANALYZE_RECORD_BYTES).
 */
enum prec_state {
    PR_NORMAL = 0,      /* in the guest, writable */
    PR_FROZEN,          /* in the guest, read-only; `ref` is the dexc handle */
    PR_ZERO,            /* reclaimed, restores as zeros */
    PR_SHARED,          /* reclaimed, `obj` is its canonical content */
    PR_PATCHED,         /* reclaimed, patch in `ref` (store) against `obj` */
    PR_COMPRESSED,      /* reclaimed, `ref` is the store handle */
    PR_SWAPPED,         /* reclaimed, `ref` is a swap slot, `enc` says what */
};

enum prec_enc {         /* encoding of a swapped page */
    ENC_RAW = 0,
    ENC_COMPRESSED,
    ENC_PATCH,
};

/* Frozen-page flags: what was already tried on this unchanged content,
 * so the clock does not redo failed work every sweep. Cleared whenever
 * the page is frozen anew (it may have changed). */
#define PF_OFFERED     1u   /* offered to the similarity detector */
#define PF_NO_PATCH    2u   /* no reference gave a patch under threshold */
#define PF_NO_COMPRESS 4u   /* did not compress under threshold */

struct prec {
    uint64_t ref;
    uint32_t obj;       /* object id (PR_SHARED, PR_PATCHED, swapped patch) */
    uint16_t len : 13;  /* encoded length (<= 4096) */
    uint16_t flags : 3; /* PF_* while PR_FROZEN; once encoded, the id of
                           the codec or compressor that made it, so a
                           policy change never strands a page */
    uint8_t state;      /* enum prec_state */
    uint8_t age : 5;    /* NRU: clock sweeps since last use (saturating) */
    uint8_t enc : 2;    /* enum prec_enc, for PR_SWAPPED */
    uint8_t indexed : 1;/* candidate in the share index (hash in cand_hash) */
};
_Static_assert(sizeof(struct prec) == 16, "the record is 16 bytes");

#define AGE_MAX 31
#define HEAT_MAX 4      /* a page refaulted this often waits 16 sweeps */
#define WT_SKIP 0x0fu
#define WT_MAX_LEVEL 4  /* a page always written is re-armed every 16th sweep */
#define OBJ_NONE UINT32_MAX
#define SCAN_CHUNK 512  /* pages the clock harvests, freezes and reads at once */

/* A canonical content: one copy the daemon owns, which shared pages
 * restore from and patches are made against (the daemon's own copy of a
 * reference page). */
struct object {
    store_handle_t h;   /* store object; NONE when free */
    uint64_t hash;
    uint32_t refs;      /* shared pages + patches (in store or swap) */
    uint32_t group;     /* sharing group index */
    uint32_t next_free;
    uint16_t len;       /* bytes in the store: DE_PAGE_SIZE = held whole */
    uint8_t codec;      /* compressor of a held-compressed object */
};

/* Pages share, and patch against each other, only within a group. */
struct share_group {
    char name[CONFIG_NAME_MAX];
    struct share_index *si;     /* objects and candidate pages */
    struct simdetect *sd;       /* reference candidates */
    struct simdetect_params sdp;
    uint64_t sd_inserts;        /* since the detector was (re)built */
    unsigned users;             /* guests in the group */
};

/* A run of gfns that are guest RAM: [start, end). */
struct ram_run {
    uint64_t start, end;
};

/* The clock re-learns a guest's RAM runs every this many sweeps (a
 * balloon or a populate may have changed them). */
#define RAM_MAP_SWEEPS 16

struct guest {
    struct daemon *d;
    uint32_t slot;              /* index in d->guests */
    uint32_t id;
    char name[CONFIG_NAME_MAX];
    dexc_guest *dx;
    struct event *ev;
    uint64_t npages;
    struct prec *rec;
    uint64_t *cand_hash;        /* hash under which a candidate is indexed */
    uint8_t *heat;              /* refault back-off per page: see scan.c */
    uint8_t *wtrack;            /* write back-off: level << 4 | sweeps left */
    uint64_t hand;              /* clock hand: next gfn to scan */
    /* Where the clock goes: a Xen domain's gfn span (npages) is mostly
     * holes (a PVH domain's ends near 4 GiB for a few magic pages), and
     * every scanned gfn costs hypercalls. Pages outside the runs are
     * never frozen, so never reclaimed. */
    struct ram_run *ram;
    size_t nram;
    size_t ram_cur;             /* the run the hand is in */
    uint64_t ram_pages;         /* pages in the runs */
    uint64_t sweeps;            /* completed clock sweeps */
    struct de_policy pol;       /* effective policy */
    bool paused;
    bool gone;
    uint32_t group;
    struct patch_codec *pc;
    struct compressor *cc;
    struct de_stats st;
    uint64_t enc_bytes;         /* store bytes of its patches and compressed
                                   pages, rounded to the store grain */
};

struct daemon {
    struct event_base *base;
    struct de_config *cfg;
    char cfg_path[CONFIG_PATH_MAX];
    struct ctl_server *ctl;
    dexc_listener *lis;
    struct event *lis_ev;
    struct event *tick_ev;
    struct event *sig_ev[4];
    struct store *store;
    struct swapfile *swap;
    struct guest **guests;      /* slots; NULL when free */
    uint32_t nguests_cap;
    uint32_t next_id;
    struct object *obj;
    uint32_t nobj, obj_cap, obj_free;
    struct share_group *groups;
    uint32_t ngroups;
    struct de_stats gone_st;    /* totals of guests that have left */
    uint64_t start_ns;
    uint8_t scratch[DE_PAGE_SIZE];   /* a page decoded to check an encoding or serve a fault */
    uint8_t idxbuf[DE_PAGE_SIZE];    /* index_page() reads candidates here */
    /* copies of a scan chunk's frozen pages, read in one batch */
    uint8_t chunkbuf[SCAN_CHUNK][DE_PAGE_SIZE];
    /* decoders for every codec: a page decodes with what encoded it */
    struct patch_codec *dec_pc[PATCH_NCODECS];
    struct compressor *dec_cc[COMP_NCOMPRESSORS];
    uint8_t encbuf[DE_PAGE_SIZE + 64];
    /* objects held compressed: the compressor that makes them, and the
     * last one decoded (object_data() hands out this buffer) */
    struct compressor *obj_cc;
    uint8_t objbuf[DE_PAGE_SIZE];
    uint8_t objenc[DE_PAGE_SIZE + 64];
    uint32_t objbuf_id;
    bool objbuf_ok;             /* objbuf holds object objbuf_id */
    bool stopping;
    struct xendoms *xen;        /* backend xen: xenstore-driven domains */
};

/* xendoms.c (built with the Xen libraries): domains adopted from
 * xenstore. xendoms_start returns 0 or -1 (logged). */
int xendoms_start(struct daemon *d);
void xendoms_reload(struct daemon *d);
void xendoms_stop(struct daemon *d);

/* objects.c */
int group_for(struct daemon *d, const char *name, uint32_t *out);
void group_release(struct daemon *d, uint32_t g);
int object_new(struct daemon *d, uint32_t group, const void *page,
               uint64_t hash, uint32_t *out);
/* The object's 4 KiB content, or NULL when it is free (or, held
 * compressed, fails to decode). The pointer is valid until the next
 * object_data(), object_new() or object_unref(). */
const void *object_data(struct daemon *d, uint32_t id);
bool object_live(const struct daemon *d, uint32_t id);
struct compressor *daemon_decompressor(struct daemon *d, unsigned id);
void object_ref(struct daemon *d, uint32_t id);
void object_unref(struct daemon *d, uint32_t id);
const void *index_page(void *ctx, uint64_t id);
void group_offer_reference(struct daemon *d, uint32_t g,
                           const struct simdetect_keys *k, uint64_t id);
uint64_t cand_id(const struct guest *g, uint64_t gfn);
bool id_is_cand(uint64_t id);
struct guest *cand_guest(const struct daemon *d, uint64_t id, uint64_t *gfn);

/* guest.c */
/* name NULL: the backend's; pol NULL: the configuration's policy for the
 * guest's name (the Xen backend passes the domain's xenstore policy). */
int guest_adopt(struct daemon *d, dexc_guest *dx, const char *name,
                const struct de_policy *pol);
void guest_gone(struct guest *g);
int guest_flush(struct guest *g);
struct guest *guest_find(struct daemon *d, const char *name);
int guest_read(struct guest *g, uint64_t gfn, void *buf);
void guest_uncandidate(struct guest *g, uint64_t gfn);
void guest_apply_policy(struct guest *g);
void guest_drop_record(struct guest *g, uint64_t gfn);
int guest_map_ram(struct guest *g);

/* fault.c */
void fault_service(struct guest *g);
int fault_decode(struct guest *g, uint64_t gfn, void *page,
                 enum page_kind *kind);

/* scan.c */
void scan_tick(struct daemon *d);

/* ctlcmd.c */
extern const struct ctl_ops dom0d_ctl_ops;

#endif
