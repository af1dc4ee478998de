/*
 * Helpers of urkv's expiry, string and keyspace commands (cmd_ext.h):
 * error replies, argument parsing, whole-value reads, and the store's
 * clock with the offset DEBUG CLOCK-ADVANCE adds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_ext.h"
#include "urt/urt.h"

void urkv_out_store_error(struct urkv_conn *c, int err)
{
	switch (err) {
	case URT_E_TOOBIG:
		urkv_out_error(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
		break;
	case URT_E_FULL:
		urkv_out_error(c, "ERR store full (the data file has no free pages)");
		break;
	case -ESHUTDOWN:
		urkv_out_error(c, "ERR server is shutting down");
		break;
	case -ENOMEM:
		urkv_out_error(c, "ERR out of memory");
		break;
	default:
		urkv_out_errorf(c, "ERR store error: %s", urt_strerror(err));
		break;
	}
}

const char *urkv_key_error(const struct resp_arg *key)
{
	if (key->len == 0)
		return "ERR empty keys are not supported by urkv";
	if (key->len > URT_KV_KEY_MAX)
		return "ERR key too large (urkv keys are at most 1024 bytes)";
	return NULL;
}

bool urkv_arg_ll(const struct resp_arg *a, long long *out)
{
	return resp_parse_ll(a->ptr, a->len, out) == 0;
}

int urkv_read_value(struct urkv_conn *c, const struct resp_arg *key, char **val, size_t *vlen,
		    uint64_t *expire_at)
{
	struct urt_kv *kv = urkv_conn_server(c)->kv;
	size_t cap = 256;
	int ret;

	*val = NULL;
	/* A value may grow between two reads: retry with its new size. */
	for (int tries = 0; tries < 8; tries++) {
		char *buf = malloc(cap);
		size_t len = 0;

		if (!buf)
			return -ENOMEM;
		ret = urt_kv_get_expire(kv, key->ptr, key->len, buf, cap, &len, expire_at);
		if (ret != 0 || len <= cap) {
			if (ret != 0) {
				free(buf);
				return ret;
			}
			*val = buf;
			*vlen = len;
			return 0;
		}
		free(buf);
		cap = len;
	}
	return -EAGAIN;
}

uint64_t urkv_now_ms(struct urkv_conn *c)
{
	return urt_kv_now_ms(urkv_conn_server(c)->kv);
}

uint64_t urkv_store_clock(void *arg)
{
	struct urkv_server *srv = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
	       (uint64_t)atomic_load_explicit(&srv->clock_offset_ms, memory_order_relaxed);
}
