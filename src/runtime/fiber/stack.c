/*
 * Guarded fiber stacks: one mmap per stack, the low URT_STACK_GUARD_PAGES made
 * PROT_NONE.  The mapping is MAP_NORESERVE so that a thousand idle 256 KiB
 * stacks cost only the pages they touched, and MAP_STACK so the kernel does
 * not back them with transparent huge pages.  Each stack costs two VMAs (guard
 * and usable part), which bounds the number of live stacks by
 * vm.max_map_count / 2.
 */
#include "runtime/fiber/stack.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int urt_stack_alloc(struct urt_stack *st, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t guard = URT_STACK_GUARD_PAGES * page;
	void *map;
	int err;

	memset(st, 0, sizeof(*st));
	if (size == 0)
		return -EINVAL;
	/* Rounding up to a page and adding the guard must not wrap. */
	if (size > SIZE_MAX - guard - page)
		return -ENOMEM;
	size = (size + page - 1) & ~(page - 1);

	map = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	if (mprotect(map, guard, PROT_NONE) != 0) {
		err = -errno;
		goto err_unmap;
	}

	st->map = map;
	st->map_len = guard + size;
	st->base = (char *)map + guard;
	st->size = size;
	return 0;

err_unmap:
	munmap(map, guard + size);
	return err;
}

void urt_stack_free(struct urt_stack *st)
{
	if (st->map == NULL)
		return;
	urt_stack_unpoison(st);
	munmap(st->map, st->map_len);
	memset(st, 0, sizeof(*st));
}
