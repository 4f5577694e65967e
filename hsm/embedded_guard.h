/*
 * The embedded token's guard (embedded_guard.c): a lock around the window
 * in which SoftHSM2 rewrites the token's files, and a verified copy of
 * those files from which a damaged one is restored. docs/SECURITY.md
 * "The embedded token" has the design and why.
 *
 * Layout under DATA/hsm (persisted):
 *   token.lock            an empty file; flock(LOCK_EX) held by every imprint
 *                         process from before C_Initialize until C_Login
 *                         has returned (and around token creation)
 *   tokens.copy/<dir>/    the verified copy of tokens/<dir>/: every
 *                         "*.object" file and "generation", each written
 *                         temp + fsync + rename, the directory fsync'ed
 *   tokens.quarantine/<dir>/  empty object files moved out of tokens/<dir>/
 *                         (no copy, so they held nothing; kept, not deleted)
 */
#ifndef HSM_EMBEDDED_GUARD_H
#define HSM_EMBEDDED_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

/*
 * Take the guard lock DIR/token.lock (created 0600 if missing), waiting for
 * another process that holds it. *fd receives the descriptor for
 * hsm_guard_unlock. IMP_ERR_IO if it cannot be opened or locked.
 */
imp_err hsm_guard_lock(const char *hsm_dir, int *fd);
void hsm_guard_unlock(int fd);

/*
 * With the lock held and before C_Initialize: every token file in
 * TOKENS/<dir>/ that is missing, empty, cut short or lacks an attribute its
 * verified copy has is restored from COPY/<dir>/ (atomically; each restore
 * logged as a warning); every sound file that differs from its copy (other
 * than in SoftHSM's leading generation counter) or has none is copied.
 * *restored (if not NULL) counts the files restored. An empty object file
 * with no copy, older than a minute (younger, another process may be creating
 * it), is moved to TOKENS.quarantine/<dir>/ with one warning; a non-empty
 * damaged one with no copy is left in place and warned about. IMP_ERR_HSM
 * names the file and the next step when token.object is damaged and has no
 * copy.
 */
imp_err hsm_guard_sync(const char *tokens_dir, const char *copy_dir, size_t *restored);

/*
 * True if the n bytes are a complete SoftHSM2 file-backend object (the
 * generation counter, then attributes to the very last byte); *types and
 * *ntypes (either may be NULL) receive the attribute types, at most cap.
 * Exposed for the unit test.
 */
/*
 * An object file that ends before its records do: empty, the 8-byte
 * generation counter alone, or a record that runs past the end (what a stop
 * while softhsm wrote it leaves). false for a sound file, and for one that
 * holds a kind of record this code does not read (another softhsm's format
 * is never taken for a cut file).
 */
bool hsm_guard_object_cut(const uint8_t *b, size_t n);

bool hsm_guard_object_sound(const uint8_t *b, size_t n, uint64_t *types, size_t cap,
			    size_t *ntypes);

#endif
