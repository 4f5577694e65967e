/*
 * imp_write_line to a pipe that a slow reader keeps full: a line longer
 * than PIPE_BUF (which the kernel splits) and short lines from another
 * thread, and not one short line lands inside the long one.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imprint/util.h"

#define LONG_LEN (PIPE_BUF + 1904)
#define LONGS 50
#define SHORTS 2000

struct sink {
	int fd;
	char *buf;
	size_t n, cap;
};

static void *reader(void *arg)
{
	struct sink *s = arg;
	ssize_t r;

	do {
		if (s->cap - s->n < 512) {
			s->cap = s->cap ? 2 * s->cap : 1 << 20;
			s->buf = realloc(s->buf, s->cap);
			if (!s->buf)
				abort();
		}
		r = read(s->fd, s->buf + s->n, 512);
		if (r > 0)
			s->n += (size_t)r;
		usleep(500); /* slow: the pipe stays full */
	} while (r > 0);
	return NULL;
}

static void *longs(void *arg)
{
	static char line[LONG_LEN];

	(void)arg;
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (int i = 0; i < LONGS; i++) {
		imp_write_line(STDOUT_FILENO, line, sizeof(line));
		usleep(3000);
	}
	return NULL;
}

static void *shorts(void *arg)
{
	(void)arg;
	for (int i = 0; i < SHORTS; i++) {
		imp_write_line(STDOUT_FILENO, "bbbbbbbb\n", 9);
		usleep(200);
	}
	return NULL;
}

static void test_long_line_to_pipe(void **state)
{
	struct sink s = { 0 };
	pthread_t rd, t1, t2;
	int p[2], saved;
	size_t nlong = 0, nshort = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	/* stdout is the pipe before imp_write_line first looks at it */
	assert_int_equal(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	close(p[1]);
	s.fd = p[0];
	assert_int_equal(pthread_create(&rd, NULL, reader, &s), 0);
	assert_int_equal(pthread_create(&t2, NULL, shorts, NULL), 0);
	usleep(20000);
	assert_int_equal(pthread_create(&t1, NULL, longs, NULL), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);
	pthread_join(rd, NULL);
	close(p[0]);

	for (size_t i = 0; i < s.n;) {
		char *nl = memchr(s.buf + i, '\n', s.n - i);
		size_t len;

		assert_non_null(nl);
		len = (size_t)(nl - (s.buf + i));
		if (len == 8 && memcmp(s.buf + i, "bbbbbbbb", 8) == 0)
			nshort++;
		else if (len == LONG_LEN - 1 && s.buf[i] == 'A' &&
			 !memchr(s.buf + i, 'b', len))
			nlong++;
		else
			fail_msg("a line of %zu bytes is two lines mixed", len);
		i += len + 1;
	}
	assert_int_equal(nlong, LONGS);
	assert_int_equal(nshort, SHORTS);
	free(s.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_line_to_pipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
