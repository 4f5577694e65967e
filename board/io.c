#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "imprint/util.h"
#include "io_int.h"

enum board_io board_io_read(int fd, uint64_t deadline, uint8_t *buf, size_t cap, size_t *got)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t now = imp_now_ns();
	ssize_t n;
	int pr;

	*got = 0;
	if (now >= deadline)
		return BOARD_IO_TIMEOUT;
	pr = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
	if (pr < 0)
		return errno == EINTR ? BOARD_IO_AGAIN : BOARD_IO_ERROR;
	if (pr == 0)
		return BOARD_IO_TIMEOUT;
	if (pfd.revents & (POLLERR | POLLNVAL)) {
		errno = EIO;
		return BOARD_IO_ERROR;
	}
	n = read(fd, buf, cap);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? BOARD_IO_AGAIN : BOARD_IO_ERROR;
	if (n == 0)
		return (pfd.revents & POLLHUP) ? BOARD_IO_HANGUP : BOARD_IO_EOF;
	*got = (size_t)n;
	return BOARD_IO_DATA;
}
