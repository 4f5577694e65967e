/*
 * Supervisor authorisation for reissues: a second PIN, held by a supervisor,
 * distinct from the HSM's. `imprint supervisor set` stores a salted
 * PBKDF2-HMAC-SHA256 of it in DATA/supervisor (mode 0600; persisted format:
 * one line "pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX"); `provision
 * --reissue` asks for the PIN and checks it against that file. The PIN comes
 * from the configuration's hsm.supervisor_pin source (an environment
 * variable, a 0600 file) or, by default, a prompt without echo.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "station.h"

#define SUP_ITERATIONS 200000 /* persisted in the file, may grow */
#define SUP_SALT_LEN 16
#define SUP_HASH_LEN 32

static void sup_path(const struct station_ctx *ctx, char *out, size_t cap)
{
	snprintf(out, cap, "%s/supervisor", ctx->data_dir);
}

static imp_err read_supervisor_pin(const struct fmt_config *cfg, char *pin, size_t cap,
				   size_t *len)
{
	struct hsm_pin_source src = { .kind = HSM_PIN_PROMPT, .name = "supervisor pin: " };

	if (cfg->hsm.supervisor_pin.source == FMT_PIN_ENV) {
		src.kind = HSM_PIN_ENV;
		src.name = cfg->hsm.supervisor_pin.value;
	} else if (cfg->hsm.supervisor_pin.source == FMT_PIN_FILE) {
		src.kind = HSM_PIN_FILE;
		src.name = cfg->hsm.supervisor_pin.value;
	}
	return hsm_pin_read(&src, pin, cap, len);
}

static imp_err derive(const char *pin, size_t len, const uint8_t *salt, long iter,
		      uint8_t out[SUP_HASH_LEN])
{
	if (PKCS5_PBKDF2_HMAC(pin, (int)len, salt, SUP_SALT_LEN, (int)iter, EVP_sha256(),
			      SUP_HASH_LEN, out) != 1)
		return IMP_ERR_CRYPTO;
	return IMP_OK;
}

imp_err st_supervisor_check(struct station_ctx *ctx, const struct fmt_config *cfg)
{
	return st_supervisor_confirm(ctx, cfg, "the reissue");
}

imp_err st_supervisor_confirm(struct station_ctx *ctx, const struct fmt_config *cfg,
			      const char *what)
{
	char path[4200], pin[HSM_PIN_MAX + 1];
	char salt_hex[2 * SUP_SALT_LEN + 1], hash_hex[2 * SUP_HASH_LEN + 1];
	uint8_t salt[SUP_SALT_LEN], want[SUP_HASH_LEN], got[SUP_HASH_LEN];
	uint8_t *file = NULL;
	size_t flen = 0, plen = 0;
	long iter = 0;
	imp_err rc;

	sup_path(ctx, path, sizeof(path));
	rc = imp_read_file(path, &file, &flen);
	if (rc != IMP_OK) {
		IMP_ERROR("no supervisor pin is set (%s); a supervisor runs 'imprint supervisor set' "
			  "first", path);
		return rc == IMP_ERR_NOT_FOUND ? IMP_ERR_PIN : rc;
	}
	if (sscanf((char *)file, "pbkdf2-sha256$%ld$%32[0-9a-f]$%64[0-9a-f]", &iter, salt_hex,
		   hash_hex) != 3 || iter < 1 || iter > INT_MAX ||
	    imp_hex_decode(salt_hex, salt, SUP_SALT_LEN) ||
	    imp_hex_decode(hash_hex, want, SUP_HASH_LEN)) {
		free(file);
		IMP_ERROR("%s is not a supervisor pin file; set it again with 'imprint supervisor "
			  "set'", path);
		return IMP_ERR_CONFIG;
	}
	free(file);
	rc = read_supervisor_pin(cfg, pin, sizeof(pin), &plen);
	if (rc == IMP_OK)
		rc = derive(pin, plen, salt, iter, got);
	imp_wipe(pin, sizeof(pin));
	if (rc != IMP_OK)
		return rc;
	if (CRYPTO_memcmp(got, want, SUP_HASH_LEN) != 0) {
		IMP_ERROR("wrong supervisor pin: %s is not authorised", what);
		return IMP_ERR_PIN;
	}
	return IMP_OK;
}

imp_err st_supervisor_set(struct station_ctx *ctx, const struct fmt_config *cfg)
{
	char path[4200], pin[HSM_PIN_MAX + 1], line[160];
	char salt_hex[2 * SUP_SALT_LEN + 1], hash_hex[2 * SUP_HASH_LEN + 1];
	uint8_t salt[SUP_SALT_LEN], hash[SUP_HASH_LEN];
	size_t plen = 0;
	imp_err rc;

	rc = read_supervisor_pin(cfg, pin, sizeof(pin), &plen);
	if (rc == IMP_OK && plen < 6) {
		IMP_ERROR("a supervisor pin needs at least 6 characters");
		rc = IMP_ERR_PIN;
	}
	if (rc == IMP_OK && RAND_bytes(salt, sizeof(salt)) != 1)
		rc = IMP_ERR_CRYPTO;
	if (rc == IMP_OK)
		rc = derive(pin, plen, salt, SUP_ITERATIONS, hash);
	imp_wipe(pin, sizeof(pin));
	if (rc != IMP_OK)
		return rc;
	imp_hex_encode(salt, sizeof(salt), salt_hex);
	imp_hex_encode(hash, sizeof(hash), hash_hex);
	snprintf(line, sizeof(line), "pbkdf2-sha256$%d$%s$%s\n", SUP_ITERATIONS, salt_hex,
		 hash_hex);
	sup_path(ctx, path, sizeof(path));
	unlink(path); /* a new pin replaces the old one */
	rc = imp_write_secret_file(path, line, strlen(line));
	if (rc == IMP_OK && !ctx->json)
		printf("supervisor pin set (%s)\n", path);
	return rc;
}
