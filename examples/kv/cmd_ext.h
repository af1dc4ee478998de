/*
 * urkv's expiry, string and keyspace commands (cmd_expire.c, cmd_string.c,
 * cmd_keys.c) and the helpers they share (cmd_common.c).  The command
 * table in commands.c names the handlers declared here.
 *
 * Most of these commands run whole (URKV_SYNC): they read or update one
 * key with a blocking store call in the connection's fiber.  A command
 * that reads, changes and writes one key (APPEND, SETRANGE, SETBIT,
 * INCRBYFLOAT, GETSET, GETDEL, GETEX, EXPIRE..., PERSIST, SET ... GET)
 * does it as one store update (URT_KV_OP_UPDATE), which runs on the key's
 * shard inside its write transaction: atomic per key, as INCR.
 */
#ifndef URKV_CMD_EXT_H
#define URKV_CMD_EXT_H

#include "urkv.h"

/* cmd_common.c */

/*
 * The error reply for a store error (Redis's words where Redis has them);
 * damage is logged first (urkv_store_error_log, without a key).
 */
void urkv_out_store_error(struct urkv_conn *c, int err);
/* Whether err means damaged data or a failing device (corrupt page, I/O error, sticky store). */
bool urkv_store_error_is_damage(int err);
/*
 * Logs a damage error met by c's command on stderr, one line per damage
 * (shard and page) and rate-limited (cmd_common.c); nothing for other
 * errors.  key: the key the error came from, or NULL (every shard that
 * recorded damage is named).  Fiber (asks the shards for their bad page).
 */
void urkv_store_error_log(struct urkv_conn *c, int err, const struct resp_arg *key);
/* A key urkv can never hold (empty, too long): the error text, or NULL. */
const char *urkv_key_error(const struct resp_arg *key);
/* Redis's string2ll on an argument. */
bool urkv_arg_ll(const struct resp_arg *a, long long *out);
/*
 * Reads key's value into a buffer of its size (malloc, the caller frees;
 * a 1-byte one for an empty value).  Returns 0, URT_E_NOTFOUND or an
 * error; *expire_at may be NULL.
 */
int urkv_read_value(struct urkv_conn *c, const struct resp_arg *key, char **val, size_t *vlen,
		    uint64_t *expire_at);
/* The store's clock (ms since the epoch), with DEBUG CLOCK-ADVANCE's offset. */
uint64_t urkv_now_ms(struct urkv_conn *c);
/* Clock of the store's expiry (struct urt_kv_opts.clock_ms); arg is the server. */
uint64_t urkv_store_clock(void *arg);

/* cmd_expire.c */

/*
 * SET's options (NX, XX, GET, EX, PX, EXAT, PXAT, KEEPTTL) from argv[3].
 * Returns NULL and fills the outputs, or the error reply.
 */
const char *urkv_set_options(struct urkv_conn *c, const struct resp_arg *argv, size_t argc,
			     unsigned *flags, bool *get, uint64_t *expire_at);
/* SET's class: SYNC with GET (it reads the old value), else WRITE. */
enum urkv_class urkv_set_class(const struct resp_arg *argv, size_t argc);
void urkv_set_get_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_setex_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_psetex_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_getex_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_getdel_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_expire_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_pexpire_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_expireat_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_pexpireat_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_ttl_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_pttl_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_expiretime_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_pexpiretime_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_persist_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_debug_run(struct urkv_conn *c, struct urkv_slot *s);

/* cmd_string.c */
void urkv_append_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_strlen_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_getrange_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_setrange_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_getset_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_msetnx_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_incrbyfloat_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_setbit_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_getbit_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_bitcount_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_bitpos_run(struct urkv_conn *c, struct urkv_slot *s);

/* cmd_keys.c */
/* Whether urkv_keys_reply lists a key; arg is the caller's. */
typedef bool urkv_key_keep(const void *arg, const char *key, size_t klen);
/*
 * Scans every live key in key order and replies with the first max that
 * keep accepts, as an array (list), or with their count.  KEYS and CLUSTER
 * COUNTKEYSINSLOT / GETKEYSINSLOT.
 */
void urkv_keys_reply(struct urkv_conn *c, urkv_key_keep *keep, const void *arg, uint64_t max, bool list);
void urkv_keys_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_rename_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_renamenx_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_copy_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_randomkey_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_type_run(struct urkv_conn *c, struct urkv_slot *s);
void urkv_touch_run(struct urkv_conn *c, struct urkv_slot *s);

#endif /* URKV_CMD_EXT_H */
