/*
 * Thread per core: the split of one device into per-core page-store
 * regions (urt_ps_shard_region, include/urt/ps.h).
 *
 * A page store (struct urt_ps) is single-threaded: every call runs on its
 * core, so it needs no locks.  To run one store per core on one device,
 * store i gets region i; a call for a store on another core is shipped
 * there with urt_core_run (include/urt/rt.h).
 */
#include "engine/ps_impl.h"

#define SHARD_ALIGN (1ull << 20)	/* Regions start on 1 MiB boundaries (any block size). */

void urt_ps_shard_region(uint64_t device_bytes, uint32_t shard_count, uint32_t shard_id,
			 uint64_t *offset, uint64_t *bytes)
{
	uint64_t each = device_bytes / (shard_count ? shard_count : 1) / SHARD_ALIGN * SHARD_ALIGN;

	*offset = each * shard_id;
	*bytes = each;
}
