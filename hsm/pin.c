/*
 * PIN sources (environment, file, TTY prompt, memory) and login. A PIN lives
 * in a stack buffer only between reading and C_Login, then it is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

static imp_err pin_copy(const char *src, size_t n, char *pin, size_t cap, size_t *len)
{
	while (n > 0 && (src[n - 1] == '\n' || src[n - 1] == '\r'))
		n--;
	if (n == 0) {
		IMP_ERROR("the pin is empty: check the pin source");
		return IMP_ERR_PIN;
	}
	if (n >= cap || n > HSM_PIN_MAX) {
		IMP_ERROR("the pin is too long (more than %u bytes): check the pin source",
			  HSM_PIN_MAX);
		return IMP_ERR_PIN;
	}
	memcpy(pin, src, n);
	pin[n] = '\0';
	*len = n;
	return IMP_OK;
}

static imp_err pin_from_file(const char *path, char *pin, size_t cap, size_t *len)
{
	char buf[HSM_PIN_MAX + 3];
	struct stat st;
	size_t got = 0;
	imp_err rc;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP) {
			IMP_ERROR("pin file %s is a symbolic link: give the real file", path);
			return IMP_ERR_INSECURE;
		}
		/* No pin could be read (exit 7, as an unset variable is): not a
		 * missing module or token, which is what IMP_ERR_NOT_FOUND would
		 * tell the caller. */
		if (errno == ENOENT || errno == ENOTDIR) {
			IMP_ERROR("pin file %s does not exist: create it holding the pin (mode "
				  "0600), or correct the pin file's path in the configuration", path);
			return IMP_ERR_PIN;
		}
		if (errno == EACCES) {
			IMP_ERROR("cannot open pin file %s: %s: make it readable by the user "
				  "imprint runs as (and only by it: chmod 600)", path, strerror(errno));
			return IMP_ERR_PIN;
		}
		IMP_ERROR("cannot open pin file %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		IMP_ERROR("cannot stat pin file %s: %s", path, strerror(errno));
		rc = IMP_ERR_IO;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		IMP_ERROR("pin file %s is not a regular file", path);
		rc = IMP_ERR_INSECURE;
		goto cleanup;
	}
	if (st.st_mode & 077) {
		IMP_ERROR("pin file %s has mode %04o: it must not be readable by group or "
			  "others (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
		rc = IMP_ERR_INSECURE;
		goto cleanup;
	}
	while (got < sizeof(buf)) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			IMP_ERROR("cannot read pin file %s: %s", path, strerror(errno));
			rc = IMP_ERR_IO;
			goto cleanup;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	rc = pin_copy(buf, got, pin, cap, len);
cleanup:
	imp_wipe(buf, sizeof(buf));
	close(fd);
	return rc;
}

static imp_err pin_from_tty(const char *prompt, char *pin, size_t cap, size_t *len)
{
	char buf[HSM_PIN_MAX + 3];
	struct termios old, quiet;
	size_t got = 0;
	imp_err rc = IMP_OK;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		IMP_ERROR("no terminal to ask for the pin: give it in an environment variable "
			  "or a file");
		return IMP_ERR_PIN;
	}
	if (tcgetattr(fd, &old) != 0) {
		IMP_ERROR("cannot read the terminal settings: give the pin in an environment "
			  "variable or a file");
		close(fd);
		return IMP_ERR_PIN;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
		close(fd);
		return IMP_ERR_PIN;
	}
	while (got < sizeof(buf)) {
		ssize_t r = read(fd, buf + got, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || buf[got] == '\n')
			break;
		got++;
	}
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		rc = IMP_ERR_IO;
	close(fd);
	if (rc == IMP_OK)
		rc = pin_copy(buf, got, pin, cap, len);
	imp_wipe(buf, sizeof(buf));
	return rc;
}

imp_err hsm_pin_read(const struct hsm_pin_source *src, char *pin, size_t cap, size_t *len)
{
	const char *v;

	*len = 0;
	if (!src) {
		IMP_ERROR("no pin source: give the pin in an environment variable, a file or "
			  "at the prompt");
		return IMP_ERR_PIN;
	}
	switch (src->kind) {
	case HSM_PIN_ENV:
		v = src->name ? getenv(src->name) : NULL;
		if (!v) {
			IMP_ERROR("environment variable %s is not set: set it to the token's pin",
				  src->name ? src->name : "(none)");
			return IMP_ERR_PIN;
		}
		return pin_copy(v, strlen(v), pin, cap, len);
	case HSM_PIN_FILE:
		if (!src->name)
			return IMP_ERR_PIN;
		return pin_from_file(src->name, pin, cap, len);
	case HSM_PIN_PROMPT:
		return pin_from_tty(src->name ? src->name : "token pin: ", pin, cap, len);
	case HSM_PIN_BUFFER:
		if (!src->buf)
			return IMP_ERR_PIN;
		return pin_copy(src->buf, src->len, pin, cap, len);
	}
	IMP_ERROR("unknown pin source kind %d", (int)src->kind);
	return IMP_ERR_INTERNAL;
}

const char *hsm_pin_source_describe(const struct hsm_pin_source *src)
{
	if (!src)
		return "no pin source";
	switch (src->kind) {
	case HSM_PIN_ENV:
		return "the environment variable";
	case HSM_PIN_FILE:
		return "the pin file";
	case HSM_PIN_PROMPT:
		return "the pin typed at the prompt";
	case HSM_PIN_BUFFER:
		return "the embedded pins file";
	}
	return "an unknown pin source";
}

imp_err hsm_login(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sh, CK_USER_TYPE user,
		  const struct hsm_pin_source *src, const char *token_label)
{
	char pin[HSM_PIN_MAX + 1];
	const char *who = user == CKU_SO ? "so" : "user";
	const char *name = src && src->kind != HSM_PIN_BUFFER && src->kind != HSM_PIN_PROMPT
			   ? src->name : NULL;
	size_t len;
	imp_err rc;

	rc = hsm_pin_read(src, pin, sizeof(pin), &len);
	if (rc != IMP_OK)
		goto cleanup;
	rc = P11_OK_IF(CKR_USER_ALREADY_LOGGED_IN, fl, C_Login, sh, user,
		       (CK_UTF8CHAR *)pin, (CK_ULONG)len);
	if (rc == IMP_ERR_PIN)
		IMP_ERROR("wrong %s pin for token \"%s\" (from %s%s%s): check the pin source; "
			  "the token locks the pin after too many wrong tries",
			  who, token_label, hsm_pin_source_describe(src), name ? " " : "",
			  name ? name : "");
	else if (rc == IMP_ERR_PIN_LOCKED)
		IMP_ERROR("the %s pin of token \"%s\" is locked after too many wrong tries: "
			  "unlock it with the so pin (re-initialise the user pin)", who, token_label);
cleanup:
	imp_wipe(pin, sizeof(pin));
	return rc;
}
