#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
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

int board_io_socket_setup(int fd)
{
	struct timeval tv = { .tv_sec = BOARD_IO_SLICE_MS / 1000,
			      .tv_usec = (BOARD_IO_SLICE_MS % 1000) * 1000 };
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		return -1;
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

enum board_io board_io_recv(int fd, uint64_t deadline, uint8_t *buf, size_t cap, size_t *got)
{
	uint64_t now = imp_now_ns();
	ssize_t n;

	*got = 0;
	if (now >= deadline)
		return BOARD_IO_TIMEOUT;
	if (deadline - now < (uint64_t)BOARD_IO_SLICE_MS * 1000000u)
		return board_io_read(fd, deadline, buf, cap, got);
	n = recv(fd, buf, cap, 0);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? BOARD_IO_AGAIN
										 : BOARD_IO_ERROR;
	if (n == 0)
		return BOARD_IO_EOF;
	*got = (size_t)n;
	return BOARD_IO_DATA;
}
