/*
 * libpq, loaded at the first use of the line (imprint/dynlib.h): the
 * functions line.c calls, under their own names. A row per function; its
 * prototype is checked against libpq-fe.h's.
 */
#include <libpq-fe.h>

#include "imprint/dynlib.h"
#include "line_int.h"

#define PQ_FUNCTIONS(X, V) \
	V(PQclear, (PGresult *res), (res)) \
	X(PGconn *, PQconnectdbParams, (const char *const *keywords, const char *const *values, \
					int expand_dbname), (keywords, values, expand_dbname)) \
	X(char *, PQerrorMessage, (const PGconn *conn), (conn)) \
	X(PGresult *, PQexec, (PGconn *conn, const char *query), (conn, query)) \
	X(PGresult *, PQexecParams, (PGconn *conn, const char *command, int nParams, \
				     const Oid *paramTypes, const char *const *paramValues, \
				     const int *paramLengths, const int *paramFormats, \
				     int resultFormat), \
	  (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, \
	   resultFormat)) \
	V(PQfinish, (PGconn *conn), (conn)) \
	X(char *, PQfname, (const PGresult *res, int field_num), (res, field_num)) \
	X(Oid, PQftype, (const PGresult *res, int field_num), (res, field_num)) \
	X(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), \
	  (res, tup_num, field_num)) \
	X(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num), \
	  (res, tup_num, field_num)) \
	X(char *, PQhost, (const PGconn *conn), (conn)) \
	X(int, PQnfields, (const PGresult *res), (res)) \
	X(int, PQntuples, (const PGresult *res), (res)) \
	X(char *, PQport, (const PGconn *conn), (conn)) \
	X(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode)) \
	X(char *, PQresultErrorMessage, (const PGresult *res), (res)) \
	X(ExecStatusType, PQresultStatus, (const PGresult *res), (res)) \
	X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *conn, PQnoticeProcessor proc, \
						    void *arg), (conn, proc, arg)) \
	X(ConnStatusType, PQstatus, (const PGconn *conn), (conn)) \
	X(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn))

enum { PQ_FUNCTIONS(IMP_DYNLIB_ROW_INDEX, IMP_DYNLIB_ROW_INDEX_V) IMP_DL__COUNT };
static const char *const pq_names[] = { PQ_FUNCTIONS(IMP_DYNLIB_ROW_NAME, IMP_DYNLIB_ROW_NAME_V) };
static void *pq_fns[IMP_DL__COUNT];
static struct imp_dynlib pq_lib = IMP_DYNLIB("libpq.so.5", "libpq5", pq_names, pq_fns);

#define IMP_DYNLIB_SELF pq_lib
PQ_FUNCTIONS(IMP_DYNLIB_ROW_WRAP, IMP_DYNLIB_ROW_WRAP_V)

imp_err line_pq_load(void)
{
	return imp_dynlib_load(&pq_lib);
}
