/* One virtual board: chip, secure element, pty agent, RSP listener. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "board_int.h"
#include "card.h"
#include "imprint/log.h"
#include "imprint/util.h"

uint64_t sim_rand64(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x2545F4914F6CDD1Dull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

double sim_rand01(uint64_t *s)
{
	return (double)(sim_rand64(s) >> 11) / 9007199254740992.0;
}

void sim_capture(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	if (fd < 0)
		return;
	while (n > 0) {
		ssize_t w = write(fd, q, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		q += w;
		n -= (size_t)w;
	}
}

static uint64_t mix(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sim_uid_from_seed(uint64_t seed, int index, uint8_t uid[16])
{
	uint64_t a = mix(seed ^ mix((uint64_t)index + 1)), b = mix(a ^ 0x5EED);

	for (int i = 0; i < 8; i++) {
		uid[i] = (uint8_t)(a >> (56 - 8 * i));
		uid[8 + i] = (uint8_t)(b >> (56 - 8 * i));
	}
}

/* A raw pseudo-terminal: the master for us, the slave held open (so the
 * master never sees a hang-up) and its path for the station. */
static imp_err raw_pty(int *master, int *slave, char *path, size_t cap)
{
	struct termios t;
	const char *name;

	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0) {
		IMP_ERROR("cannot create a pseudo-terminal: %s", strerror(errno));
		return IMP_ERR_IO;
	}
	name = ptsname(*master);
	if (!name || strlen(name) >= cap)
		return IMP_ERR_IO;
	strcpy(path, name);
	*slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0) {
		IMP_ERROR("cannot open %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (tcgetattr(*slave, &t) == 0) {
		cfmakeraw(&t);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(*slave, TCSANOW, &t);
	}
	return IMP_OK;
}

static imp_err open_pty(struct sim_board *b)
{
	struct termios t;
	int slave;
	const char *name;

	b->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (b->pty_master < 0 || grantpt(b->pty_master) != 0 || unlockpt(b->pty_master) != 0) {
		IMP_ERROR("cannot create a pseudo-terminal: %s", strerror(errno));
		return IMP_ERR_IO;
	}
	name = ptsname(b->pty_master);
	if (!name || strlen(name) >= sizeof(b->pty_path))
		return IMP_ERR_IO;
	strcpy(b->pty_path, name);
	/* The slave looks like a raw serial port until the station sets its own. */
	slave = open(b->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		IMP_ERROR("cannot open %s: %s", b->pty_path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (tcgetattr(slave, &t) == 0) {
		cfmakeraw(&t);
		cfsetispeed(&t, B921600);
		cfsetospeed(&t, B921600);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(slave, TCSANOW, &t);
	}
	/* Keep our own slave descriptor: the master never sees a hang-up, and
	 * what the station left unread can be flushed when it closes. */
	b->pty_slave = slave;
	b->pty_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (b->pty_watch < 0 || inotify_add_watch(b->pty_watch, b->pty_path, IN_CLOSE) < 0)
		IMP_WARN("board %d: cannot watch %s: stale bytes are not flushed on close",
			 b->index, b->pty_path);
	fcntl(b->pty_master, F_SETFL, fcntl(b->pty_master, F_GETFL) | O_NONBLOCK);
	return IMP_OK;
}

static imp_err open_listener(struct sim_board *b, int port, const char *opt, int *fd_out,
			     uint16_t *port_out)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*fd_out = fd;
	if (fd < 0)
		return IMP_ERR_IO;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		IMP_ERROR("board %d: cannot listen on 127.0.0.1:%d: %s, pick another --%s",
			  b->index, port, strerror(errno), opt);
		return IMP_ERR_IO;
	}
	*port_out = ntohs(sa.sin_port);
	return IMP_OK;
}

/* Board index's revision from the comma-separated list; NULL: default. */
static const char *revision_of(const char *list, int index, char *buf, size_t cap)
{
	const char *p = list;

	if (!list)
		return NULL;
	for (int i = 0; i < index; i++) {
		const char *comma = strchr(p, ',');

		if (!comma)
			break;
		p = comma + 1;
	}
	snprintf(buf, cap, "%.*s", (int)strcspn(p, ","), p);
	return buf;
}

static int open_capture(const struct sim_config *cfg, int index, const char *what)
{
	char path[4096];
	int fd;

	if (!cfg->capture_dir)
		return -1;
	if (imp_mkdir_p(cfg->capture_dir, 0700) != IMP_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/board-%d.%s.bin", cfg->capture_dir, index, what);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		IMP_WARN("cannot open capture file %s: %s", path, strerror(errno));
	return fd;
}

/*
 * The board itself (chip and secure element) for fixture b, generation gen:
 * generation 0 is the board the process starts with, each insert after a
 * removal makes the next. With a state directory generation 0 lives in
 * STATE/board-N, generation G in STATE/board-N.gG.
 */
static imp_err make_board(struct sim_board *b, unsigned gen, struct sim_chip **chip_out,
			  struct sim_se **se_out)
{
	const struct sim_config *cfg = b->cfg;
	struct sim_chip_opts co = { 0 };
	struct sim_se_opts so = { 0 };
	char dir[4096], se_dir[4200], bd_dir[4200], rev[32];
	uint8_t uid[16];
	uint32_t faults = 0;

	*chip_out = NULL;
	*se_out = NULL;
	if (b->state_dir) {
		if (gen == 0)
			snprintf(dir, sizeof(dir), "%s", b->state_dir);
		else
			snprintf(dir, sizeof(dir), "%s.g%u", b->state_dir, gen);
		snprintf(se_dir, sizeof(se_dir), "%s/se", dir);
		snprintf(bd_dir, sizeof(bd_dir), "%s/backdoor", dir);
		so.dir = se_dir;
		if (cfg->backdoor)
			so.backdoor_dir = bd_dir;
		co.state_dir = dir;
	}
	co.latency_scale = cfg->latency;
	co.family = cfg->chip;
	co.revision = revision_of(cfg->revisions, b->index, rev, sizeof(rev));
	co.fw_keeps_approtect = cfg->fw_keeps_approtect;
	if (cfg->seed) {
		/* Fixture index < 256: every (fixture, generation) has its own UID. */
		sim_uid_from_seed(cfg->seed, b->index + 256 * (int)gen, uid);
		co.uid = uid;
	}
	*chip_out = sim_chip_new(&co);
	if (!*chip_out)
		return IMP_ERR_IO;
	if (cfg->faults.fuse_fail)
		faults |= SIM_FAULT_FUSE_FAIL;
	if (cfg->faults.tamper_readback)
		faults |= SIM_FAULT_TAMPER_READBACK;
	if (cfg->faults.tamper_lock)
		faults |= SIM_FAULT_TAMPER_LOCK;
	sim_chip_set_faults(*chip_out, faults);
	so.latency_scale = cfg->latency;
	*se_out = sim_se_new(&so);
	if (!*se_out) {
		sim_chip_free(*chip_out);
		*chip_out = NULL;
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

imp_err sim_board_start(const struct sim_config *cfg, int index, int stop_fd, struct sim_board **out)
{
	struct sim_board *b = calloc(1, sizeof(*b));
	imp_err rc = IMP_ERR_IO;

	*out = NULL;
	if (!b)
		return IMP_ERR_NOMEM;
	b->index = index;
	b->cfg = cfg;
	b->faults = &cfg->faults;
	b->stop_fd = stop_fd;
	b->listen_fd = -1;
	b->pty_master = -1;
	b->pty_slave = -1;
	b->pty_watch = -1;
	b->cap_rsp_fd = -1;
	b->cap_uart_fd = -1;
	b->cap_jtag_fd = -1;
	b->bb_listen_fd = -1;
	pthread_rwlock_init(&b->slot_lock, NULL);
	b->bmp_master = -1;
	b->bmp_slave = -1;
	b->pirate_master = -1;
	b->cap_pirate_fd = -1;
	if (getrandom(&b->uart_rng, sizeof(b->uart_rng), 0) != sizeof(b->uart_rng) || cfg->seed)
		b->uart_rng = mix(cfg->seed * 31 + (uint64_t)index * 2 + 1);
	b->rsp_rng = mix(b->uart_rng);

	if (cfg->state_dir) {
		if (asprintf(&b->state_dir, "%s/board-%d", cfg->state_dir, index) < 0) {
			b->state_dir = NULL;
			rc = IMP_ERR_NOMEM;
			goto fail;
		}
	}
	rc = make_board(b, 0, &b->chip, &b->se);
	if (rc != IMP_OK)
		goto fail;
	rc = IMP_ERR_IO;
	b->cap_uart_fd = open_capture(cfg, index, "uart");
	b->cap_rsp_fd = open_capture(cfg, index, "rsp");
	rc = open_pty(b);
	if (rc != IMP_OK)
		goto fail;
	rc = open_listener(b, cfg->rsp_port ? cfg->rsp_port + index : 0, "rsp-port",
			   &b->listen_fd, &b->rsp_port);
	if (rc != IMP_OK)
		goto fail;
	if (cfg->bitbang_port >= 0) {
		rc = open_listener(b, cfg->bitbang_port ? cfg->bitbang_port + index : 0, "bitbang",
				   &b->bb_listen_fd, &b->bb_port);
		if (rc != IMP_OK)
			goto fail;
		b->cap_jtag_fd = open_capture(cfg, index, "jtag");
	}
	if (cfg->bmp_pty) {
		rc = raw_pty(&b->bmp_master, &b->bmp_slave, b->bmp_path, sizeof(b->bmp_path));
		if (rc != IMP_OK)
			goto fail;
	}
	if (cfg->buspirate) {
		int slave = -1;

		rc = raw_pty(&b->pirate_master, &slave, b->pirate_path, sizeof(b->pirate_path));
		/* Not held: the master's POLLHUP is how a host's close is seen. */
		if (slave >= 0)
			close(slave);
		if (rc != IMP_OK)
			goto fail;
		fcntl(b->pirate_master, F_SETFL, fcntl(b->pirate_master, F_GETFL) | O_NONBLOCK);
		b->cap_pirate_fd = open_capture(cfg, index, "pirate");
	}
	if (pthread_create(&b->agent_thread, NULL, sim_agent_main, b) != 0) {
		rc = IMP_ERR_INTERNAL;
		goto fail;
	}
	b->agent_started = true;
	if (pthread_create(&b->rsp_thread, NULL, sim_rsp_main, b) != 0) {
		rc = IMP_ERR_INTERNAL;
		goto fail;
	}
	b->rsp_started = true;
	if (b->bmp_master >= 0) {
		if (pthread_create(&b->bmp_thread, NULL, sim_rsp_bmp_main, b) != 0) {
			rc = IMP_ERR_INTERNAL;
			goto fail;
		}
		b->bmp_started = true;
	}
	if (b->bb_listen_fd >= 0) {
		if (pthread_create(&b->bb_thread, NULL, sim_bitbang_main, b) != 0) {
			rc = IMP_ERR_INTERNAL;
			goto fail;
		}
		b->bb_started = true;
	}
	if (b->pirate_master >= 0) {
		if (pthread_create(&b->pirate_thread, NULL, sim_pirate_main, b) != 0) {
			rc = IMP_ERR_INTERNAL;
			goto fail;
		}
		b->pirate_started = true;
		if (pthread_create(&b->pirate_hup_thread, NULL, sim_pirate_hup_main, b) != 0) {
			rc = IMP_ERR_INTERNAL;
			goto fail;
		}
		b->pirate_hup_started = true;
	}
	if (cfg->pcsc_port) {
		struct sim_card_opts ko = { cfg->pcsc_host ? cfg->pcsc_host : "127.0.0.1",
					    cfg->pcsc_port + index, cfg->card_remove_after,
					    cfg->card_back_after_s, cfg->card_tamper };

		b->card = sim_card_start(&ko, b->se, b->chip, stop_fd);
		if (!b->card) {
			rc = IMP_ERR_INTERNAL;
			goto fail;
		}
	}
	*out = b;
	return IMP_OK;
fail:
	if (b->agent_started) {
		/* Its thread runs until stop_fd is readable: the caller frees it. */
		*out = b;
		return rc;
	}
	sim_board_free(b);
	return rc;
}

void sim_board_free(struct sim_board *b)
{
	if (!b)
		return;
	if (b->agent_started)
		pthread_join(b->agent_thread, NULL);
	if (b->rsp_started)
		pthread_join(b->rsp_thread, NULL);
	if (b->bb_started)
		pthread_join(b->bb_thread, NULL);
	if (b->bmp_started)
		pthread_join(b->bmp_thread, NULL);
	if (b->pirate_started)
		pthread_join(b->pirate_thread, NULL);
	if (b->pirate_hup_started)
		pthread_join(b->pirate_hup_thread, NULL);
	if (b->pirate_master >= 0)
		close(b->pirate_master);
	if (b->cap_pirate_fd >= 0)
		close(b->cap_pirate_fd);
	if (b->bmp_slave >= 0)
		close(b->bmp_slave);
	if (b->bmp_master >= 0)
		close(b->bmp_master);
	if (b->bb_listen_fd >= 0)
		close(b->bb_listen_fd);
	if (b->cap_jtag_fd >= 0)
		close(b->cap_jtag_fd);
	sim_card_free(b->card);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	if (b->pty_watch >= 0)
		close(b->pty_watch);
	if (b->pty_slave >= 0)
		close(b->pty_slave);
	if (b->pty_master >= 0)
		close(b->pty_master);
	if (b->cap_uart_fd >= 0)
		close(b->cap_uart_fd);
	if (b->cap_rsp_fd >= 0)
		close(b->cap_rsp_fd);
	sim_se_free(b->se);
	sim_chip_free(b->chip);
	free(b->factory);
	pthread_rwlock_destroy(&b->slot_lock);
	free(b->state_dir);
	free(b);
}

imp_err sim_board_remove(struct sim_board *b)
{
	struct sim_chip *chip;
	struct sim_se *se;

	if (b->card) {
		IMP_ERROR("board %d: a board with a PC/SC card cannot be swapped", b->index);
		return IMP_ERR_UNSUPPORTED;
	}
	pthread_rwlock_wrlock(&b->slot_lock);
	chip = b->chip;
	se = b->se;
	if (chip) {
		b->retired_ns += sim_chip_modelled_ns(chip) + sim_se_modelled_ns(se);
		b->retired_erases += sim_chip_mass_erases(chip);
	}
	b->chip = NULL;
	b->se = NULL;
	b->cache_valid = false;
	/* the factory data left with the board */
	free(b->factory);
	b->factory = NULL;
	b->factory_len = 0;
	b->factory_loaded = false;
	pthread_rwlock_unlock(&b->slot_lock);
	if (!chip)
		return IMP_ERR_NOT_FOUND;
	sim_se_free(se);
	sim_chip_free(chip);
	IMP_INFO("board %d: removed from its fixture", b->index);
	return IMP_OK;
}

imp_err sim_board_insert(struct sim_board *b)
{
	struct sim_chip *chip = NULL;
	struct sim_se *se = NULL;
	imp_err rc;

	if (b->card) {
		IMP_ERROR("board %d: a board with a PC/SC card cannot be swapped", b->index);
		return IMP_ERR_UNSUPPORTED;
	}
	pthread_rwlock_wrlock(&b->slot_lock);
	if (b->chip) {
		pthread_rwlock_unlock(&b->slot_lock);
		return IMP_ERR_EXISTS;
	}
	rc = make_board(b, b->generation + 1, &chip, &se);
	if (rc == IMP_OK) {
		b->generation++;
		b->chip = chip;
		b->se = se;
		b->cache_valid = false;
	}
	pthread_rwlock_unlock(&b->slot_lock);
	if (rc == IMP_OK)
		IMP_INFO("board %d: a new board (generation %u) on the fixture", b->index,
			 b->generation);
	return rc;
}

bool sim_board_present(struct sim_board *b)
{
	bool present;

	pthread_rwlock_rdlock(&b->slot_lock);
	present = b->chip != NULL;
	pthread_rwlock_unlock(&b->slot_lock);
	return present;
}

char *sim_board_endpoint_json(const struct sim_board *b)
{
	json_t *o = json_object();
	char uid[33], rsp[64], extra[256];
	char *s;

	if (!o)
		return NULL;
	pthread_rwlock_rdlock((pthread_rwlock_t *)&b->slot_lock);
	if (b->chip)
		imp_hex_encode(sim_chip_uid(b->chip), 16, uid);
	snprintf(rsp, sizeof(rsp), "rsp://127.0.0.1:%u", b->rsp_port);
	json_object_set_new(o, "board", json_integer(b->index));
	json_object_set_new(o, "uid", b->chip ? json_string(uid) : json_null());
	json_object_set_new(o, "rsp", json_string(rsp));
	json_object_set_new(o, "uart", json_string(b->pty_path));
	if (b->state_dir && b->generation) {
		char gdir[4200];

		snprintf(gdir, sizeof(gdir), "%s.g%u", b->state_dir, b->generation);
		json_object_set_new(o, "state", json_string(gdir));
	} else {
		json_object_set_new(o, "state",
				    b->state_dir ? json_string(b->state_dir) : json_null());
	}
	if (b->bb_listen_fd >= 0) {
		snprintf(rsp, sizeof(rsp), "127.0.0.1:%u", b->bb_port);
		json_object_set_new(o, "bitbang", json_string(rsp));
	}
	if (b->pirate_master >= 0)
		json_object_set_new(o, "buspirate", json_string(b->pirate_path));
	if (b->bmp_master >= 0)
		json_object_set_new(o, "bmp", json_string(b->bmp_path));
	json_object_set_new(o, "chip", json_string(b->chip ? sim_chip_family(b->chip)
							     : (b->cfg->chip ? b->cfg->chip
									     : "imprint-vb1")));
	if (b->generation)
		json_object_set_new(o, "generation", json_integer(b->generation));
	extra[0] = '\0';
	if (b->chip)
		sim_chip_describe(b->chip, extra, sizeof(extra));
	if (extra[0]) {
		char wrapped[300];
		json_t *x;

		snprintf(wrapped, sizeof(wrapped), "{%s}", extra);
		x = json_loads(wrapped, 0, NULL);
		if (x) {
			json_object_update(o, x);
			json_decref(x);
		}
	}
	pthread_rwlock_unlock((pthread_rwlock_t *)&b->slot_lock);
	if (b->card)
		json_object_set_new(o, "vpcd_port", json_integer(b->cfg->pcsc_port + b->index));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

uint64_t sim_board_mass_erases(const struct sim_board *b)
{
	return b->retired_erases + (b->chip ? sim_chip_mass_erases(b->chip) : 0);
}

double sim_board_modelled_s(const struct sim_board *b)
{
	uint64_t ns = __atomic_load_n(&b->uart_modelled_ns, __ATOMIC_RELAXED) + b->retired_ns;

	if (b->chip)
		ns += sim_chip_modelled_ns(b->chip);
	if (b->se)
		ns += sim_se_modelled_ns(b->se);
	return (double)ns / 1e9;
}

void sim_serve_clients(struct sim_board *b, int listen_fd, const char *what,
		       void (*serve)(struct sim_board *b, int fd))
{
	for (;;) {
		int one = 1, fd;

		if (!imp_wait_readable(listen_fd, b->stop_fd))
			break;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		IMP_DEBUG("board %d: %s client connected", b->index, what);
		serve(b, fd);
		close(fd);
		IMP_DEBUG("board %d: %s client gone", b->index, what);
	}
}
