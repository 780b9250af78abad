/*
 * xen_abi.h - XENMEM_dex_op as defined by the project's hypervisor patch
 * (hypervisor/patches/0003-x86-mm-add-CONFIG_MEM_DEX-and-XENMEM_dex_op.patch,
 * xen/include/public/memory.h). Debian's libxen-dev headers do not have it,
 * so it is mirrored here with plain uint64_t in place of guest handles
 * (XEN_GUEST_HANDLE_64 is a 64-bit field on x86). Not installed.
 */
#ifndef DEXC_XEN_ABI_H
#define DEXC_XEN_ABI_H

#include <stdint.h>

#define XENMEM_dex_op                29

#define XENMEM_dex_op_freeze         0  /* pages[]: gfn -> handle       */
#define XENMEM_dex_op_thaw           1  /* pages[]: gfn,handle          */
#define XENMEM_dex_op_query          2  /* pages[]: gfn -> state,handle */
#define XENMEM_dex_op_share          3  /* shares[]: src_domid -> domid */
#define XENMEM_dex_op_reclaim        4  /* pages[]: gfn,handle          */
#define XENMEM_dex_op_restore        5  /* pages[]: gfn; data[nr*4096]  */
#define XENMEM_dex_op_harvest_ad     6  /* bits[nr] from first_gfn      */
#define XENMEM_dex_op_ad_control     7  /* flags: XEN_DEX_F_ENABLE      */

#define XEN_DEX_F_FORCE   (1u << 0)
#define XEN_DEX_F_CLEAR   (1u << 1)
#define XEN_DEX_F_ENABLE  (1u << 2)

#define XEN_DEX_STATE_OTHER   0
#define XEN_DEX_STATE_RW      1
#define XEN_DEX_STATE_FROZEN  2
#define XEN_DEX_STATE_SHARED  3
#define XEN_DEX_STATE_PAGED   4

#define XEN_DEX_AD_A  (1u << 0)
#define XEN_DEX_AD_D  (1u << 1)

struct xen_dex_page {
    uint64_t gfn;
    uint64_t handle;
    int32_t rc;
    uint32_t state;
};

struct xen_dex_share {
    uint64_t cli_gfn, cli_handle;
    uint64_t src_gfn, src_handle;
    uint64_t cookie;
    int32_t rc;
    uint32_t pad;
};

struct xen_dex_op {
    uint8_t op;
    uint8_t pad0;
    uint16_t domid;
    uint16_t src_domid;
    uint16_t flags;
    uint32_t nr;
    uint32_t done;
    uint64_t list;          /* XEN_GUEST_HANDLE_64(void) */
    uint64_t data;          /* XEN_GUEST_HANDLE_64(const_uint8) */
    uint64_t first_gfn;
};

_Static_assert(sizeof(struct xen_dex_page) == 24, "xen_dex_page is 24 bytes");
_Static_assert(sizeof(struct xen_dex_share) == 48, "xen_dex_share is 48 bytes");
_Static_assert(sizeof(struct xen_dex_op) == 40, "xen_dex_op is 40 bytes");

#endif
