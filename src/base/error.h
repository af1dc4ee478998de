/*
 * The calling thread's last error message (urt_last_error, include/urt/error.h).
 *
 * Any layer that returns an error the caller cannot explain from the code
 * alone (a path, a limit, a page id) sets a message here first.  The engine
 * and the kv store include this header; it pulls in nothing of the runtime.
 */
#ifndef URT_BASE_ERROR_H
#define URT_BASE_ERROR_H

#include "urt/error.h"

/* Set the thread's message, printf style; replaces any earlier one. */
void urt_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Clear it: called on entry to each public call that may set one. */
void urt_clear_error(void);

#endif /* URT_BASE_ERROR_H */
