#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"

void imp_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void imp_hex_encode(const uint8_t *bin, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

imp_err imp_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	if (!hex || strlen(hex) != 2 * n)
		return IMP_ERR_PROTOCOL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val(hex[2 * i]);
		int lo = hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return IMP_ERR_PROTOCOL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return IMP_OK;
}

static imp_err write_all(int fd, const void *data, size_t n)
{
	const uint8_t *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return IMP_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return IMP_OK;
}

imp_err imp_write_secret_file(const char *path, const void *data, size_t n)
{
	/* Mode 0600 at creation: a umask can only take bits away, so the
	 * process-wide umask (shared by every thread) is left alone. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	imp_err rc;

	if (fd < 0) {
		if (errno == EEXIST)
			return IMP_ERR_EXISTS;
		IMP_ERROR("cannot create %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	rc = write_all(fd, data, n);
	if (rc == IMP_OK && fsync(fd) != 0)
		rc = IMP_ERR_IO;
	close(fd);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot write %s", path);
		unlink(path);
	}
	return rc;
}

imp_err imp_write_file_atomic(const char *path, const void *data, size_t n, unsigned mode)
{
	char tmp[4096];
	int fd;
	imp_err rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return IMP_ERR_IO;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		IMP_ERROR("cannot create %s: %s", tmp, strerror(errno));
		return IMP_ERR_IO;
	}
	rc = write_all(fd, data, n);
	if (rc == IMP_OK && fsync(fd) != 0)
		rc = IMP_ERR_IO;
	close(fd);
	if (rc == IMP_OK && rename(tmp, path) != 0)
		rc = IMP_ERR_IO;
	if (rc != IMP_OK) {
		IMP_ERROR("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

imp_err imp_read_file(const char *path, uint8_t **out, size_t *n)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	imp_err rc = IMP_OK;
	struct stat st;
	FILE *f;
	int fd;

	*out = NULL;
	*n = 0;
	/* Not blocking in open: a FIFO nobody writes to must not hang us. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? IMP_ERR_NOT_FOUND : IMP_ERR_IO;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return IMP_ERR_IO;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		IMP_ERROR("%s is not a file: %s", path,
			  S_ISDIR(st.st_mode) ? "a directory" : "a device or socket");
		close(fd);
		return IMP_ERR_IO;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > IMP_READ_FILE_MAX) {
		IMP_ERROR("%s is %lld bytes, over the %zu MiB any file imprint reads may have",
			  path, (long long)st.st_size, IMP_READ_FILE_MAX >> 20);
		close(fd);
		return IMP_ERR_IO;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, "rb"))) {
		close(fd);
		return IMP_ERR_IO;
	}
	for (;;) {
		size_t got;

		if (len > IMP_READ_FILE_MAX) {
			IMP_ERROR("%s holds over the %zu MiB any file imprint reads may have", path,
				  IMP_READ_FILE_MAX >> 20);
			rc = IMP_ERR_IO;
			goto cleanup;
		}
		if (cap - len < 4097) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 8192);

			if (!nb) {
				rc = IMP_ERR_NOMEM;
				goto cleanup;
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				rc = IMP_ERR_IO;
			break;
		}
	}
	if (rc == IMP_OK) {
		buf[len] = '\0';
		*out = buf;
		*n = len;
		buf = NULL;
	}
cleanup:
	free(buf);
	fclose(f);
	return rc;
}

char *imp_text_safe(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	if (!cap)
		return out;
	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && o + 1 < cap;
	     p++) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
		size_t k = 0;

		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p < 0xc0) ||
		    (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
			out[o++] = '?'; /* a control, or a byte no character starts with */
			if (*p == 0xc2)
				p++;
			continue;
		}
		if (o + len >= cap)
			break; /* no character cut in two */
		while (k < len && p[k]) {
			out[o++] = (char)p[k];
			k++;
		}
		p += k - 1; /* the loop steps onto the next one (or the NUL) */
	}
	out[o] = '\0';
	return out;
}

imp_err imp_mkdir_p(const char *path, unsigned mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return IMP_ERR_IO;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];

		buf[i] = '\0';
		if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
			IMP_ERROR("cannot create directory %s: %s", buf, strerror(errno));
			return IMP_ERR_IO;
		}
		buf[i] = saved;
	}
	return IMP_OK;
}

uint64_t imp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double imp_now_s(void)
{
	return (double)imp_now_ns() / 1e9;
}

void imp_rfc3339_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void imp_sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* crc_table[k][b]: byte b followed by k zero bytes, so that eight bytes
 * are folded in with eight lookups (slice-by-8) instead of a chain of eight
 * dependent ones; filled once, before any thread reads it. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;

		for (int k = 0; k < 8; k++)
			c = c & 0x80000000u ? c << 1 ^ 0x04C11DB7u : c << 1;
		crc_table[0][i] = c;
	}
	for (int k = 1; k < 8; k++)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = crc_table[k - 1][i];

			crc_table[k][i] = c << 8 ^ crc_table[0][c >> 24];
		}
}

uint32_t imp_crc32_msb(uint32_t crc, const uint8_t *buf, size_t n)
{
	const uint32_t(*t)[256] = crc_table;
	size_t i = 0;

	pthread_once(&crc_once, crc_init);
	for (; i + 8 <= n; i += 8) {
		const uint8_t *p = buf + i;
		uint32_t hi = crc ^ ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
				     (uint32_t)p[2] << 8 | p[3]);

		crc = t[7][hi >> 24] ^ t[6][hi >> 16 & 0xFF] ^ t[5][hi >> 8 & 0xFF] ^
		      t[4][hi & 0xFF] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
	}
	for (; i < n; i++)
		crc = crc << 8 ^ t[0][(crc >> 24 ^ buf[i]) & 0xFF];
	return crc;
}

bool imp_wait_readable(int fd, int stop_fd)
{
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		return !p[1].revents;
	}
}

/* ------------------------------------------------- whole lines, threads */

enum line_kind { LINE_LOCKED, LINE_FILE };

static pthread_mutex_t line_lock[2] = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER };
static pthread_once_t line_once = PTHREAD_ONCE_INIT;
static enum line_kind line_kind[2];

static void line_init(void)
{
	for (int fd = 1; fd <= 2; fd++) {
		struct stat st;

		line_kind[fd - 1] = LINE_LOCKED;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			line_kind[fd - 1] = LINE_FILE;
	}
}

void imp_write_line(int fd, const char *line, size_t n)
{
	enum line_kind kind = LINE_LOCKED;
	pthread_mutex_t *lock;

	if (fd == STDOUT_FILENO || fd == STDERR_FILENO) {
		pthread_once(&line_once, line_init);
		kind = line_kind[fd - 1];
	}
	/* Only a regular file goes without the lock: a pipe's write of more
	 * than PIPE_BUF is split by the kernel whenever the pipe is full, and a
	 * short line written beside the lock would land inside it. */
	if (kind == LINE_FILE) {
		ssize_t w;

		do
			w = write(fd, line, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 || (size_t)w == n)
			return;
		line += w;
		n -= (size_t)w;
	}
	lock = &line_lock[fd == STDERR_FILENO];
	pthread_mutex_lock(lock);
	while (n > 0) {
		ssize_t w = write(fd, line, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		line += w;
		n -= (size_t)w;
	}
	pthread_mutex_unlock(lock);
}
