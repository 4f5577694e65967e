/*
 * libmicrohttpd, loaded when `imprint serve` starts (imprint/dynlib.h): the
 * functions cmd_serve.c calls, under their own names, their prototypes
 * checked against microhttpd.h's. MHD_start_daemon's options go on through
 * MHD_start_daemon_va; every MHD_DaemonInfoType of this libmicrohttpd takes
 * no argument after the type.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "dynlibs.h"
#include "imprint/dynlib.h"

#define MHD_FUNCTIONS(X, V) \
	X(enum MHD_Result, MHD_add_response_header, (struct MHD_Response *response, \
						     const char *header, const char *content), \
	  (response, header, content)) \
	X(struct MHD_Response *, MHD_create_response_from_buffer, \
	  (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode)) \
	V(MHD_destroy_response, (struct MHD_Response *response), (response)) \
	X(const char *, MHD_lookup_connection_value, (struct MHD_Connection *connection, \
						      enum MHD_ValueKind kind, const char *key), \
	  (connection, kind, key)) \
	X(enum MHD_Result, MHD_queue_response, (struct MHD_Connection *connection, \
						unsigned int status_code, \
						struct MHD_Response *response), \
	  (connection, status_code, response)) \
	V(MHD_stop_daemon, (struct MHD_Daemon *daemon), (daemon))

enum { MHD_FUNCTIONS(IMP_DYNLIB_ROW_INDEX, IMP_DYNLIB_ROW_INDEX_V) IMP_DL_MHD_start_daemon_va,
       IMP_DL_MHD_get_daemon_info, IMP_DL__COUNT };
static const char *const mhd_names[] = { MHD_FUNCTIONS(IMP_DYNLIB_ROW_NAME, IMP_DYNLIB_ROW_NAME_V)
					 "MHD_start_daemon_va", "MHD_get_daemon_info" };
static void *mhd_fns[IMP_DL__COUNT];
static struct imp_dynlib mhd_lib = IMP_DYNLIB("libmicrohttpd.so.12", "libmicrohttpd12", mhd_names,
					      mhd_fns);

#define IMP_DYNLIB_SELF mhd_lib
MHD_FUNCTIONS(IMP_DYNLIB_ROW_WRAP, IMP_DYNLIB_ROW_WRAP_V)

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *(*fn)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
				 MHD_AccessHandlerCallback, void *, va_list) =
		(struct MHD_Daemon * (*)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
					 MHD_AccessHandlerCallback, void *, va_list))
			imp_dynlib_fn(&mhd_lib, IMP_DL_MHD_start_daemon_va);
	struct MHD_Daemon *d;
	va_list ap;

	va_start(ap, dh_cls);
	d = fn(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
						enum MHD_DaemonInfoType info_type, ...)
{
	const union MHD_DaemonInfo *(*fn)(struct MHD_Daemon *, enum MHD_DaemonInfoType, ...) =
		(const union MHD_DaemonInfo * (*)(struct MHD_Daemon *, enum MHD_DaemonInfoType, ...))
			imp_dynlib_fn(&mhd_lib, IMP_DL_MHD_get_daemon_info);

	return fn(daemon, info_type);
}

imp_err st_mhd_load(void)
{
	return imp_dynlib_load(&mhd_lib);
}
