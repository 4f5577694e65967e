/*
 * Small helpers shared by every module: hex, wiping, secret files, time.
 */
#ifndef IMPRINT_UTIL_H
#define IMPRINT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

#define IMP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Write line[0..n) to fd (STDOUT_FILENO or STDERR_FILENO) from any thread so
 * that lines never interleave. To a regular file (one write(2) is atomic
 * with respect to the other threads', XSH 2.9.7) it is one write without a
 * lock; otherwise (a pipe, a terminal, a socket) the writers of that fd
 * queue on a mutex: a pipe's write is atomic only up to PIPE_BUF, and a
 * longer line would take short lines written beside the lock inside it. A short write to a file (disk full) is finished under the
 * mutex. The fd's stdio buffer is not used: a writer that uses stdio on it
 * flushes each line. Errors are dropped (the output is gone).
 */
void imp_write_line(int fd, const char *line, size_t n);

/* Wipe memory that held a secret; never optimised away. */
void imp_wipe(void *p, size_t n);

/* Lowercase hex of bin into out, which must hold 2*n+1 bytes. */
void imp_hex_encode(const uint8_t *bin, size_t n, char *out);
/* Parse exactly 2*n hex digits (either case) into out. */
imp_err imp_hex_decode(const char *hex, uint8_t *out, size_t n);

/*
 * Create a new secret file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600; the umask is not touched)
 * and write data into it, fsync'ed. Fails with IMP_ERR_EXISTS if it exists.
 */
imp_err imp_write_secret_file(const char *path, const void *data, size_t n);

/* Write a public file atomically (temp + fsync + rename), given mode. */
imp_err imp_write_file_atomic(const char *path, const void *data, size_t n, unsigned mode);

/*
 * Read a whole file. On success *out is a malloc'ed buffer, NUL-terminated
 * (the NUL is not counted in *n); the caller frees it. A regular file or a
 * pipe (a FIFO with no writer reads as empty, it does not wait for one);
 * anything else (a directory, a device such as /dev/zero) and anything over
 * IMP_READ_FILE_MAX bytes is refused with IMP_ERR_IO, the reason logged.
 */
#define IMP_READ_FILE_MAX ((size_t)256 << 20)
imp_err imp_read_file(const char *path, uint8_t **out, size_t *n);

/*
 * Copy text from a peer (a registry's reason, an error body) into out (cap
 * bytes, always NUL-terminated, cut at a character boundary), with every
 * control character, C0, DEL and the C1 range of UTF-8, shown as '?': such
 * text goes to terminals and logs, where ESC sequences and newlines would
 * rewrite the screen or forge lines. Returns out.
 */
char *imp_text_safe(const char *in, char *out, size_t cap);

/* Create a directory and its parents with the given mode (like mkdir -p). */
imp_err imp_mkdir_p(const char *path, unsigned mode);

/* Monotonic clock in nanoseconds / seconds. */
uint64_t imp_now_ns(void);
double imp_now_s(void);

/* RFC 3339 UTC timestamp of the current time ("2026-11-26T09:50:00Z"). */
void imp_rfc3339_now(char out[32]);

/* Sleep for the given number of microseconds (restarts on EINTR). */
void imp_sleep_us(uint64_t us);

/*
 * CRC-32 as GDB's qCRC packet defines it: polynomial 0x04C11DB7, processed
 * most significant bit first, no reflection, no final inversion. Pass
 * 0xFFFFFFFF as crc for a fresh sum (GDB does); chains over pieces.
 */
uint32_t imp_crc32_msb(uint32_t crc, const uint8_t *buf, size_t n);

/*
 * Wait, without a timeout, until fd can be read (data, end of file or an
 * error: the read says which) or stop_fd is signalled: true for fd, false
 * when stop_fd is signalled or poll itself fails. EINTR is retried.
 */
bool imp_wait_readable(int fd, int stop_fd);

#endif
