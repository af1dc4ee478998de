/*
 * Probe what the running kernel's io_uring accepts.  Each setup flag is
 * tried on a tiny ring of its own, each opcode through IORING_REGISTER_PROBE.
 * The header we compile against (liburing 2.3) is older than the kernel, so
 * compile-time constants say nothing about the machine we run on.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "runtime/compat.h"
#include "runtime/probe.h"

static struct urt_kernel_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;
static int uring_err;
static pthread_once_t uring_once = PTHREAD_ONCE_INIT;

/*
 * A plain ring with no flags: what every mode needs first.  Only the errors
 * that mean "not allowed or not there" count as unavailable; a transient
 * one (ENOMEM from a low RLIMIT_MEMLOCK) is left to the ring setup that
 * meets it, which names the limit, and must not stick for the process.
 */
static void uring_once_check(void)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(2, &ring, 0);

	if (ret == 0)
		io_uring_queue_exit(&ring);
	uring_err = ret == -EPERM || ret == -EACCES || ret == -ENOSYS ? ret : 0;
}

int probe_uring_usable(void)
{
	pthread_once(&uring_once, uring_once_check);
	return uring_err;
}

static bool flags_work(uint32_t flags)
{
	struct io_uring_params p;
	struct io_uring ring;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = 1;
	if (io_uring_queue_init_params(4, &ring, &p))
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

static void probe_once(void)
{
	struct io_uring_probe *pr;

	/* Blocked (sysctl, seccomp): every flag would read as refused, which says nothing. */
	features.io_uring = probe_uring_usable() == 0;
	if (!features.io_uring)
		return;
	features.single_issuer = flags_work(IORING_SETUP_SINGLE_ISSUER);
	features.defer_taskrun = flags_work(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	features.sqpoll = flags_work(IORING_SETUP_SQPOLL);
	features.iopoll = flags_work(IORING_SETUP_IOPOLL);
	features.hybrid_iopoll = flags_work(IORING_SETUP_IOPOLL | IORING_SETUP_HYBRID_IOPOLL);
	features.sqe128 = flags_work(IORING_SETUP_SQE128 | IORING_SETUP_CQE32);
	pr = io_uring_get_probe();
	if (pr) {
		features.msg_ring = io_uring_opcode_supported(pr, IORING_OP_MSG_RING);
		features.uring_cmd = io_uring_opcode_supported(pr, IORING_OP_URING_CMD);
		features.link_timeout = io_uring_opcode_supported(pr, IORING_OP_LINK_TIMEOUT);
		features.rw_vec_fixed = io_uring_opcode_supported(pr, URT_IORING_OP_READV_FIXED) &&
					io_uring_opcode_supported(pr, URT_IORING_OP_WRITEV_FIXED);
		io_uring_free_probe(pr);
	}
}

const struct urt_kernel_features *probe_features(void)
{
	pthread_once(&features_once, probe_once);
	return &features;
}

URT_API int urt_kernel_probe(struct urt_kernel_features *out)
{
	*out = *probe_features();
	return 0;
}

URT_API int urt_io_uring_check(char *why, size_t len)
{
	int err = probe_uring_usable();

	if (err && why && len)
		uring_blocked_explain(err, why, len);
	else if (why && len)
		why[0] = '\0';
	return err;
}
