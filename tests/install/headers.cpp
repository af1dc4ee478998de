/* Every public header, all in one file, compiles and links as C++17 (this file) and C11 (headers.c); each one alone: check-headers-alone.sh. */
#include <urt/buf.h>
#include <urt/common.h>
#include <urt/dev.h>
#include <urt/error.h>
#include <urt/fiber.h>
#include <urt/hist.h>
#include <urt/io.h>
#include <urt/kv.h>
#include <urt/net.h>
#include <urt/ps.h>
#include <urt/rt.h>
#include <urt/sim.h>
#include <urt/urt.h>
#include <urt/version.h>

int main(void)
{
	struct urt_rt_opts o;

	urt_rt_opts_default(&o);
	return o.sq_entries == 256 && urt_version()[0] == URT_VERSION_STRING[0] ? 0 : 1;
}
