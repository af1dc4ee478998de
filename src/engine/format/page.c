/*
 * Page header: initialise, seal (stamp pgno, LSN and CRC) and verify.
 *
 * A page's CRC covers all of its bytes, the header included, with the crc
 * field taken as zero, so every byte of a page written home is protected
 * and a torn page write (some sectors new, some old) never verifies.  The
 * header also names the page (pgno) and the store (store_id), which turns
 * two silent failures into errors: a write that the device put in the
 * wrong place, and a page left behind by an earlier store on a reused
 * device.  What the header cannot catch is a lost write (the old version
 * of the right page, intact); the page LSN lets recovery see that against
 * the log.
 *
 * verify's order matters: "all zero" first, because a never-written page
 * is normal and must not be called corrupt; then the CRC, because nothing
 * else in the header means anything before it holds; then store and page
 * identity.
 */
#include "base/assert.h"
#include "base/crc32c.h"
#include "engine/format/format.h"

typedef struct urt_page_hdr_disk phd;

void page_init(void *page, size_t page_size, uint64_t pgno, uint16_t type, uint64_t store_id)
{
	URT_ASSERT(urt_page_size_valid(page_size));
	URT_ASSERT(type != 0);
	URT_ASSERT(store_id != 0);
	memset(page, 0, page_size);
	URT_PUT16(page, phd, type, type);
	URT_PUT64(page, phd, pgno, pgno);
	URT_PUT64(page, phd, store_id, store_id);
}

uint32_t page_crc(const void *page, size_t page_size)
{
	static const uint8_t zero[4];
	uint32_t crc;

	URT_ASSERT(page_size > URT_PAGE_HDR_SIZE);
	_Static_assert(offsetof(phd, crc) == 0, "the crc field opens the page");
	crc = urt_crc32c(0, zero, sizeof(zero));
	return urt_crc32c(crc, (const uint8_t *)page + 4, page_size - 4);
}

void page_seal(void *page, size_t page_size, uint64_t pgno, uint64_t lsn)
{
	URT_ASSERT(urt_page_size_valid(page_size));
	/* A zero type or store id means page_init never ran on this buffer. */
	URT_ASSERT(URT_GET16(page, phd, type) != 0);
	URT_ASSERT(URT_GET64(page, phd, store_id) != 0);
	URT_PUT64(page, phd, pgno, pgno);
	URT_PUT64(page, phd, lsn, lsn);
	URT_PUT32(page, phd, crc, page_crc(page, page_size));
}

void page_hdr_read(const void *page, struct page_hdr *out)
{
	out->crc = URT_GET32(page, phd, crc);
	out->type = URT_GET16(page, phd, type);
	out->flags = URT_GET16(page, phd, flags);
	out->pgno = URT_GET64(page, phd, pgno);
	out->lsn = URT_GET64(page, phd, lsn);
	out->store_id = URT_GET64(page, phd, store_id);
}

int page_verify(const void *page, size_t page_size, uint64_t pgno, uint64_t store_id,
		const char **why)
{
	struct page_hdr h;

	URT_ASSERT(urt_page_size_valid(page_size));
	page_hdr_read(page, &h);
	/* An all-zero page has a zero crc field; only then is the full scan needed. */
	if (h.crc == 0 && urt_is_zero(page, page_size))
		return fmt_reject(why, PAGE_UNUSED, "page was never written");
	if (page_crc(page, page_size) != h.crc)
		return fmt_reject(why, URT_E_CORRUPT, "page checksum mismatch (torn write or media error)");
	if (h.type == 0)
		return fmt_reject(why, URT_E_CORRUPT, "page type is zero under a valid checksum");
	if (h.store_id != store_id)
		return fmt_reject(why, URT_E_FOREIGN, "page belongs to another store");
	if (h.pgno != pgno)
		return fmt_reject(why, URT_E_MISDIRECTED, "page carries another page number (misdirected write)");
	if (why)
		*why = NULL;
	return 0;
}
