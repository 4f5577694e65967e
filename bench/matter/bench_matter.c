/*
 * bench-matter: the station's own cost of Matter factory data per board
 * (docs/MATTER.md), on one core:
 *
 *   bench-matter [SECONDS]   (default 1 per row)
 *
 * One row per PBKDF2 iteration count: SPAKE2+ verifiers per second and
 * milliseconds per verifier (the station computes it twice per board: at
 * CERTIFY and again at INJECT, from the unsealed passcode). The last row:
 * onboarding payloads (QR string and manual code) per second. The HSM's
 * share (random bytes, one seal and one unseal per board, one more unseal
 * per label) is the token's and is in bench/hsm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "formats/matter.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const unsigned iters[] = { 1000, 2000, 5000, 10000, 20000, 50000, 100000 };
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	uint8_t salt[32] = { 7 }, v[FMT_MATTER_VERIFIER_LEN];
	char qr[FMT_MATTER_QR_MAX], manual[FMT_MATTER_MANUAL_MAX];
	struct fmt_matter_payload p = { 0xFFF1, 0x8000, FMT_MATTER_FLOW_STANDARD,
					FMT_MATTER_DISC_BLE, 3840, 20202021 };
	unsigned long n;
	double t0, t;

	if (secs <= 0)
		secs = 1.0;
	printf("%-12s %14s %12s %16s\n", "iterations", "verifiers/s", "ms each", "ms per board (x2)");
	for (size_t i = 0; i < sizeof(iters) / sizeof(iters[0]); i++) {
		n = 0;
		t0 = now_s();
		do {
			if (fmt_matter_verifier(20202021 + (uint32_t)(n % 1000), salt, sizeof(salt),
						iters[i], v) != IMP_OK)
				return 1;
			n++;
			t = now_s() - t0;
		} while (t < secs);
		printf("%-12u %14.1f %12.3f %16.3f\n", iters[i], (double)n / t, 1e3 * t / (double)n,
		       2e3 * t / (double)n);
	}
	n = 0;
	t0 = now_s();
	do {
		p.passcode = 20202021 + (uint32_t)(n % 1000);
		if (fmt_matter_qr(&p, qr) != IMP_OK || fmt_matter_manual_code(&p, manual) != IMP_OK)
			return 1;
		n++;
		t = now_s() - t0;
	} while (t < secs);
	printf("%-12s %14.0f %12.5f\n", "qr+manual", (double)n / t, 1e3 * t / (double)n);
	return 0;
}
