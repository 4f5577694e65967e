/*
 * Push records from a JSON-lines file ({"id":..,"jws":..}) to a registry in
 * one batch through the https exporter, and say how each came back.
 *
 *   imprint-test-push URL TLS_DIR RECORDS.jsonl
 *
 * Prints "accepted N duplicate N rejected N pending N"; exit 0 if push()
 * returned IMP_OK. A batch this large goes as two requests at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"

int main(int argc, char **argv)
{
	const struct exp_driver *d = exp_driver_find("https");
	struct exp_settings s = { 0 };
	struct exp_record *recs = NULL;
	struct exp_result *res = NULL;
	char ca[4200], cert[4200], key[4200], *line = NULL;
	size_t cap = 0, n = 0, room = 0;
	unsigned long count[4] = { 0 };
	void *st = NULL;
	FILE *f;
	imp_err rc;

	if (argc != 4 || !d)
		return 2;
	imp_log_set_level(IMP_LOG_ERROR);
	f = fopen(argv[3], "r");
	while (f && getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);

		if (n == room) {
			room = room ? room * 2 : 1024;
			recs = realloc(recs, room * sizeof(*recs));
			if (!recs)
				return 1;
		}
		const char *kind = json_string_value(json_object_get(o, "kind"));

		recs[n] = (struct exp_record){ strdup(json_string_value(json_object_get(o, "id"))),
					       "", "",
					       kind && strcmp(kind, "revocation") == 0
						       ? JNL_OUTBOX_REVOCATION
						       : JNL_OUTBOX_IDENTITY,
					       strdup(json_string_value(json_object_get(o, "jws"))) };
		n++;
		json_decref(o);
	}
	free(line);
	if (f)
		fclose(f);
	res = calloc(n ? n : 1, sizeof(*res));
	snprintf(ca, sizeof(ca), "%s/ca.pem", argv[2]);
	snprintf(cert, sizeof(cert), "%s/client.pem", argv[2]);
	snprintf(key, sizeof(key), "%s/client.key", argv[2]);
	s.url = argv[1];
	s.ca = ca;
	s.cert = cert;
	s.key = key;
	s.retry_for_s = 20;
	if (!res || n == 0 || d->open(&s, &st) != IMP_OK)
		return 1;
	rc = d->push(st, recs, n, res);
	d->close(st);
	for (size_t i = 0; i < n; i++) {
		count[res[i].status]++;
		free((char *)recs[i].id);
		free((char *)recs[i].jws);
	}
	printf("accepted %lu duplicate %lu rejected %lu pending %lu\n", count[EXP_ACCEPTED],
	       count[EXP_DUPLICATE_SAME], count[EXP_REJECTED], count[EXP_PENDING]);
	free(recs);
	free(res);
	return rc == IMP_OK ? 0 : 1;
}
