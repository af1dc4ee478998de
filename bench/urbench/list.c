/*
 * urbench --list: the NVMe controllers and namespaces this machine has,
 * what this process may do with them, and each controller's interrupt
 * coalescing, from urt_nvme_list (include/urt/nvme.h).
 */
#include <stdio.h>

#include "urbench/app.h"
#include "urbench/opts.h"
#include "urt/error.h"
#include "urt/nvme.h"

int ub_list(FILE *out, FILE *errf)
{
	struct urt_nvme_list *l;
	int ret = urt_nvme_list(&l);

	if (ret) {
		fprintf(errf, "urbench: listing NVMe devices: %s\n",
			urt_last_error()[0] ? urt_last_error() : urt_strerror(ret));
		return UB_EXIT_FAIL;
	}
	ret = urt_nvme_list_print(l, out);
	urt_nvme_list_free(l);
	if (ret || fflush(out)) {
		fprintf(errf, "urbench: writing the list failed\n");
		return UB_EXIT_FAIL;
	}
	return UB_EXIT_OK;
}
