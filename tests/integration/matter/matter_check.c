/*
 * The Matter test's independent reader (matter.sh): decodes what the board
 * holds and what a label says with imprint's onboarding library, so the
 * shell test can hold each against the others.
 *
 *   matter-check qr MT:...        vid pid flow discovery discriminator passcode manual
 *   matter-check verifier PASSCODE SALT_HEX ITERATIONS   W0||L in hex
 *   matter-check factory FILE     vid pid discriminator iterations salt verifier cd_sha256
 *                                 (a factory-data record as the virtual board stores it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "formats/matter.h"
#include "imprint/util.h"
#include "wire/factory.h"
#include "wire/payload.h"

static void hex_out(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "qr") == 0) {
		struct fmt_matter_payload p;
		char manual[FMT_MATTER_MANUAL_MAX];

		if (fmt_matter_qr_parse(argv[2], &p) != IMP_OK ||
		    fmt_matter_manual_code(&p, manual) != IMP_OK)
			return 1;
		printf("%u %u %u %u %u %u %s\n", p.vendor_id, p.product_id, (unsigned)p.flow,
		       p.discovery, p.discriminator, p.passcode, manual);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "verifier") == 0) {
		uint8_t salt[64], v[FMT_MATTER_VERIFIER_LEN];
		size_t sl = strlen(argv[3]) / 2;

		if (sl > sizeof(salt) || imp_hex_decode(argv[3], salt, sl) != IMP_OK ||
		    fmt_matter_verifier((uint32_t)strtoul(argv[2], NULL, 10), salt, sl,
					(uint32_t)strtoul(argv[4], NULL, 10), v) != IMP_OK)
			return 1;
		hex_out(v, sizeof(v));
		printf("\n");
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "factory") == 0) {
		uint8_t *d = NULL, md[32];
		size_t n = 0;
		struct wire_rd r;
		struct wire_factory f;

		if (imp_read_file(argv[2], &d, &n) != IMP_OK)
			return 1;
		wire_rd_init(&r, d, n);
		if (!wire_factory_read(&r, &f) || !wire_rd_done(&r))
			return 1;
		printf("%u %u %u %u ", f.vendor_id, f.product_id, f.discriminator, f.iterations);
		hex_out(f.salt, f.salt_len);
		printf(" ");
		hex_out(f.verifier, WIRE_FACTORY_VERIFIER_LEN);
		printf(" ");
		if (f.cd_len) {
			EVP_Digest(f.cd, f.cd_len, md, NULL, EVP_sha256(), NULL);
			hex_out(md, 32);
		} else {
			printf("-");
		}
		printf("\n");
		free(d);
		return 0;
	}
	fprintf(stderr, "usage: matter-check qr PAYLOAD | verifier PASSCODE SALT_HEX ITER | "
			"factory FILE\n");
	return 2;
}
