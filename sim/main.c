/*
 * imprint-vboard: N virtual boards (imprint-vb1, nordic-nrf52840, st-stm32u5) in one
 * process, each with an RSP server on loopback TCP, optionally a
 * remote_bitbang debug port, and a provisioning agent on a pseudo-terminal.
 * docs/VBOARD.md is the manual.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/agent_proto.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/control.h"
#include "sim/nrf52_map.h"
#include "sim/stm32u5_map.h"
#include "sim/se.h"
#include "sim/vboard.h"

#define EXIT_OK 0
#define EXIT_USAGE 2
#define EXIT_FAIL 1

enum opt_id {
	O_BOARDS = 1, O_STATE, O_SEED, O_PORT, O_LATENCY, O_UART_CORRUPT, O_UART_DROP,
	O_RSP_NAK, O_RSP_STALL, O_FUSE_FAIL, O_REFUSE, O_BAD_CHALLENGE, O_TAMPER_PUB,
	O_TAMPER_READBACK, O_TAMPER_LOCK, O_POWER_CUT, O_BACKDOOR, O_CAPTURE, O_ENDPOINTS, O_STATS,
	O_PCSC, O_CARD_REMOVE, O_CHIP, O_REVISION, O_BITBANG, O_BUSPIRATE, O_BMP_PTY, O_NO_FLASH_DRIVER, O_FW_KEEPS, O_CARD_BACK, O_CARD_TAMPER, O_CONTROL, O_PRINT_MODEL, O_VERBOSE, O_QUIET, O_HELP, O_VERSION,
};

struct opt_row {
	const char *name;
	int id;
	const char *arg; /* NULL: no argument */
	const char *help;
};

static const char *stats_path; /* --stats FILE */
static int control_port = -1;   /* --control PORT; -1: none */

/* One row per option (STYLE 11); --help prints this table. */
static const struct opt_row opt_table[] = {
	{ "boards", O_BOARDS, "N", "number of boards (default 1)" },
	{ "state-dir", O_STATE, "DIR", "keep each board's non-volatile state in DIR/board-N (default: RAM only)" },
	{ "seed", O_SEED, "S", "derive UIDs and fault dice from S (default: random)" },
	{ "rsp-port", O_PORT, "BASE", "board N's RSP server listens on 127.0.0.1:BASE+N (0, default: ephemeral)" },
	{ "chip", O_CHIP, "NAME", "the boards' chip: imprint-vb1 (default), nordic-nrf52840 or st-stm32u5" },
	{ "revision", O_REVISION, "R[,R...]", "nordic-nrf52840: legacy (AAD0, default) or hardened (AAF0) APPROTECT; board N takes the N-th, the last repeats" },
	{ "fw-keeps-approtect", O_FW_KEEPS, NULL, "nordic-nrf52840: the firmware never writes APPROTECT.DISABLE (hardened parts stay protected)" },
	{ "bitbang", O_BITBANG, "BASE", "offer OpenOCD's remote_bitbang (JTAG) on 127.0.0.1:BASE+N (0: ephemeral; reported as \"bitbang\")" },
	{ "buspirate", O_BUSPIRATE, NULL, "offer a Bus Pirate probe (OpenOCD's buspirate driver, JTAG) per board on a pseudo-terminal (reported as \"buspirate\")" },
	{ "bmp-pty", O_BMP_PTY, NULL, "also offer each board's RSP server on a pseudo-terminal as a Black Magic Probe's GDB port (reported as \"bmp\")" },
	{ "no-flash-driver", O_NO_FLASH_DRIVER, NULL, "the RSP server offers no flash driver (no memory map, no vFlash): clients program flash through the controller's registers" },
	{ "latency", O_LATENCY, "SCALE", "scale of the latency model (default 1.0; 0: no delays)" },
	{ "uart-corrupt", O_UART_CORRUPT, "RATE", "flip one random bit in this fraction of UART bytes, sent and received" },
	{ "uart-drop", O_UART_DROP, "RATE", "lose this fraction of UART bytes, sent and received" },
	{ "rsp-nak", O_RSP_NAK, "RATE", "answer '-' to this fraction of good RSP packets (ack mode)" },
	{ "rsp-stall", O_RSP_STALL, "RATE", "swallow this fraction of RSP packets: no ack, no reply" },
	{ "fuse-fail", O_FUSE_FAIL, NULL, "the next fuse burn of each board sets FUSEC_SR.ERR and burns nothing" },
	{ "refuse", O_REFUSE, "CMD", "the agent answers REFUSED (6) to CMD (name like sign_challenge, or code); repeatable" },
	{ "bad-challenge", O_BAD_CHALLENGE, NULL, "SIGN_CHALLENGE signs with a wrong key (EC) or returns a wrong MAC (PSK)" },
	{ "tamper-pub", O_TAMPER_PUB, NULL, "GENERATE_KEY and IMPORT_WRAPPED_KEY answer a public key that is not the slot's" },
	{ "tamper-readback", O_TAMPER_READBACK, NULL, "flash reads over SWD return one flipped bit (read-back verify must fail)" },
	{ "tamper-lock", O_TAMPER_LOCK, NULL, "the debug-lock fuse burns but never takes effect (lock verify must fail)" },
	{ "power-cut", O_POWER_CUT, "N", "exit at once with code 75 at the N-th non-volatile write of the process" },
	{ "backdoor", O_BACKDOOR, NULL, "TEST ONLY: write slot private keys to STATE/board-N/backdoor/ (needs --state-dir)" },
	{ "capture", O_CAPTURE, "DIR", "append all UART and RSP bytes to DIR/board-N.uart.bin and DIR/board-N.rsp.bin" },
	{ "endpoints", O_ENDPOINTS, "FILE", "also write the endpoint lines to FILE (atomically)" },
	{ "stats", O_STATS, "FILE", "on exit, write each board's modelled time (the physical floor) and mass erases to FILE" },
	{ "pcsc", O_PCSC, "[HOST:]PORT", "give each board a PC/SC card personality: board N's card connects to pcscd's vpcd reader at HOST:PORT+N (HOST 127.0.0.1; vpcd's default PORT is 35963)" },
	{ "card-remove-after", O_CARD_REMOVE, "N", "pull each card out of its reader after N APDUs (once), mid-command" },
	{ "card-back-after", O_CARD_BACK, "SECONDS", "put a pulled card back after this long (default 1)" },
	{ "card-tamper", O_CARD_TAMPER, "N", "flip one bit in the N-th secured response of each card (secure messaging must reject it)" },
	{ "control", O_CONTROL, "PORT", "accept remove/insert/swap commands on 127.0.0.1:PORT (0: ephemeral; named in the ready line)" },
	{ "print-model", O_PRINT_MODEL, NULL, "print the latency model as one JSON object and exit" },
	{ "verbose", O_VERBOSE, NULL, "more log output on stderr (repeat for trace)" },
	{ "quiet", O_QUIET, NULL, "errors only on stderr" },
	{ "help", O_HELP, NULL, "this help" },
	{ "version", O_VERSION, NULL, "print the version" },
};

static const char *const cmd_names[] = {
	[WIRE_CMD_IDENTIFY] = "identify",
	[WIRE_CMD_GENERATE_KEY] = "generate_key",
	[WIRE_CMD_GET_CSR] = "get_csr",
	[WIRE_CMD_IMPORT_WRAPPED_KEY] = "import_wrapped_key",
	[WIRE_CMD_STORE_CERT] = "store_cert",
	[WIRE_CMD_STORE_IDENTITY] = "store_identity",
	[WIRE_CMD_SIGN_CHALLENGE] = "sign_challenge",
	[WIRE_CMD_READ_IDENTITY] = "read_identity",
	[WIRE_CMD_LOCK] = "lock",
	[WIRE_CMD_ECHO] = "echo",
	[WIRE_CMD_STORE_FACTORY_DATA] = "store_factory_data",
	[WIRE_CMD_READ_FACTORY_DATA] = "read_factory_data",
};

static void usage(FILE *f)
{
	fprintf(f, "usage: imprint-vboard [options]\n\n"
		   "Virtual boards (imprint-vb1, nordic-nrf52840, st-stm32u5): an RSP server (loopback TCP),\n"
		   "optionally a remote_bitbang debug port, and a provisioning agent\n"
		   "(pseudo-terminal) per board. Prints one JSON line per board, then\n"
		   "{\"ready\":true}; runs until SIGTERM or SIGINT. Exit codes: 0 clean stop,\n"
		   "1 failure, 2 bad command line, 75 simulated power cut.\n\noptions:\n");
	for (size_t i = 0; i < IMP_ARRAY_SIZE(opt_table); i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", opt_table[i].name,
			 opt_table[i].arg ? " " : "", opt_table[i].arg ? opt_table[i].arg : "");
		fprintf(f, "  %-24s %s\n", left, opt_table[i].help);
	}
	fprintf(f, "\nSee docs/VBOARD.md for the memory map, the latency model and the faults.\n");
}

static void print_model(double scale)
{
	printf("{\"latency_scale\":%g,\"se_keygen_ms\":%g,\"se_sign_ms\":%g,\"se_ecdh_unwrap_ms\":%g,"
	       "\"flash_program_bytes_per_s\":%g,\"flash_page_erase_ms\":%g,\"flash_mass_erase_ms\":%g,"
	       "\"flash_page_bytes\":%u,\"fuse_burn_ms\":%g,\"uart_baud\":%g,\"uart_bits_per_byte\":%g,"
	       "\"uart_byte_us\":%.4f,\"nrf52840_word_write_us\":%g,\"nrf52840_page_erase_ms\":%g,"
	       "\"nrf52840_eraseall_ms\":%g,\"nrf52840_page_bytes\":%u,\"stm32u5_quadword_us\":%g,"
	       "\"stm32u5_page_erase_ms\":%g,\"stm32u5_bank_erase_ms\":%g,"
	       "\"stm32u5_option_program_ms\":%g,\"stm32u5_page_bytes\":%u}\n",
	       scale, SIM_LAT_SE_KEYGEN_MS, SIM_LAT_SE_SIGN_MS, SIM_LAT_SE_ECDH_MS,
	       SIM_LAT_FLASH_BYTES_PER_S, SIM_LAT_PAGE_ERASE_MS, SIM_LAT_MASS_ERASE_MS, 2048u,
	       SIM_LAT_FUSE_BURN_MS, SIM_LAT_UART_BAUD, SIM_LAT_UART_BITS_PER_BYTE,
	       SIM_LAT_UART_BITS_PER_BYTE * 1e6 / SIM_LAT_UART_BAUD, SIM_NRF_LAT_WRITE_US,
	       SIM_NRF_LAT_ERASEPAGE_MS, SIM_NRF_LAT_ERASEALL_MS, NRF_FLASH_PAGE, SIM_U5_LAT_QW_US,
	       SIM_U5_LAT_PAGE_ERASE_MS, SIM_U5_LAT_BANK_ERASE_MS, SIM_U5_LAT_OPT_PROGRAM_MS,
	       SIM_U5_FLASH_PAGE);
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (e == s || *e || errno || !(v >= lo && v <= hi)) /* NaN fails too */
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *e;
	unsigned long long v;

	if (*s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &e, 0);
	if (e == s || *e || errno)
		return false;
	*out = v;
	return true;
}

static bool parse_refuse(const char *s, uint8_t refuse[256])
{
	uint64_t v;

	for (size_t i = 0; i < IMP_ARRAY_SIZE(cmd_names); i++) {
		if (cmd_names[i] && strcasecmp(s, cmd_names[i]) == 0) {
			refuse[i] = 1;
			return true;
		}
	}
	if (parse_u64(s, &v) && v < 256) {
		refuse[v] = 1;
		return true;
	}
	return false;
}

static int bad(const char *opt, const char *val)
{
	fprintf(stderr, "imprint-vboard: error: bad value '%s' for --%s, see --help\n", val, opt);
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct sim_config *cfg, const char **endpoints,
		      uint64_t *power_cut, bool *model)
{
	struct option lopts[IMP_ARRAY_SIZE(opt_table) + 1];
	int verbosity = IMP_LOG_INFO;

	memset(lopts, 0, sizeof(lopts));
	for (size_t i = 0; i < IMP_ARRAY_SIZE(opt_table); i++) {
		lopts[i].name = opt_table[i].name;
		lopts[i].has_arg = opt_table[i].arg ? required_argument : no_argument;
		lopts[i].val = opt_table[i].id;
	}
	for (;;) {
		int idx = 0, c = getopt_long(argc, argv, "hvq", lopts, &idx);
		uint64_t u;
		const char *name;

		if (c == -1)
			break;
		if (c == 'h')
			c = O_HELP;
		if (c == 'v')
			c = O_VERBOSE;
		if (c == 'q')
			c = O_QUIET;
		name = lopts[idx].name;
		switch (c) {
		case O_BOARDS:
			if (!parse_u64(optarg, &u) || u < 1 || u > 256)
				return bad("boards", optarg);
			cfg->boards = (int)u;
			break;
		case O_STATE:
			cfg->state_dir = optarg;
			break;
		case O_SEED:
			if (!parse_u64(optarg, &cfg->seed))
				return bad("seed", optarg);
			break;
		case O_PORT:
			if (!parse_u64(optarg, &u) || u > 65000)
				return bad("rsp-port", optarg);
			cfg->rsp_port = (int)u;
			break;
		case O_CHIP:
			if (!sim_chip_family_known(optarg)) {
				fprintf(stderr, "imprint-vboard: error: unknown chip '%s' (known: %s)\n",
					optarg, sim_chip_family_names());
				return EXIT_USAGE;
			}
			cfg->chip = optarg;
			break;
		case O_REVISION: {
			char *dup = strdup(optarg), *save = NULL;

			if (!dup)
				return EXIT_FAIL;
			for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (strcasecmp(t, "legacy") != 0 && strcasecmp(t, "hardened") != 0) {
					free(dup);
					fprintf(stderr, "imprint-vboard: error: unknown revision '%s' in --revision "
						"(known: legacy, hardened)\n", t);
					return EXIT_USAGE;
				}
			}
			free(dup);
			cfg->revisions = optarg;
			break;
		}
		case O_FW_KEEPS:
			cfg->fw_keeps_approtect = true;
			break;
		case O_BUSPIRATE:
			cfg->buspirate = true;
			break;
		case O_BMP_PTY:
			cfg->bmp_pty = true;
			break;
		case O_NO_FLASH_DRIVER:
			cfg->no_flash_driver = true;
			break;
		case O_BITBANG:
			if (!parse_u64(optarg, &u) || u > 65000)
				return bad("bitbang", optarg);
			cfg->bitbang_port = (int)u;
			break;
		case O_LATENCY:
			if (!parse_double(optarg, 0, 1000, &cfg->latency))
				return bad("latency", optarg);
			break;
		case O_UART_CORRUPT:
			if (!parse_double(optarg, 0, 1, &cfg->faults.uart_corrupt))
				return bad(name, optarg);
			break;
		case O_UART_DROP:
			if (!parse_double(optarg, 0, 1, &cfg->faults.uart_drop))
				return bad(name, optarg);
			break;
		case O_RSP_NAK:
			if (!parse_double(optarg, 0, 1, &cfg->faults.rsp_nak))
				return bad(name, optarg);
			break;
		case O_RSP_STALL:
			if (!parse_double(optarg, 0, 1, &cfg->faults.rsp_stall))
				return bad(name, optarg);
			break;
		case O_FUSE_FAIL:
			cfg->faults.fuse_fail = true;
			break;
		case O_REFUSE:
			if (!parse_refuse(optarg, cfg->faults.refuse))
				return bad("refuse", optarg);
			break;
		case O_BAD_CHALLENGE:
			cfg->faults.bad_challenge = true;
			break;
		case O_TAMPER_PUB:
			cfg->faults.tamper_pub = true;
			break;
		case O_TAMPER_READBACK:
			cfg->faults.tamper_readback = true;
			break;
		case O_TAMPER_LOCK:
			cfg->faults.tamper_lock = true;
			break;
		case O_POWER_CUT:
			if (!parse_u64(optarg, power_cut) || *power_cut == 0)
				return bad("power-cut", optarg);
			break;
		case O_BACKDOOR:
			cfg->backdoor = true;
			break;
		case O_CAPTURE:
			cfg->capture_dir = optarg;
			break;
		case O_PCSC: {
			char *colon = strrchr(optarg, ':');

			if (colon) {
				*colon = 0;
				cfg->pcsc_host = optarg;
			}
			if (!parse_u64(colon ? colon + 1 : optarg, &u) || u == 0 || u > 65000)
				return bad("pcsc", optarg);
			cfg->pcsc_port = (int)u;
			break;
		}
		case O_CARD_REMOVE:
			if (!parse_u64(optarg, &cfg->card_remove_after) || !cfg->card_remove_after)
				return bad(name, optarg);
			break;
		case O_CARD_BACK:
			if (!parse_double(optarg, 0, 3600, &cfg->card_back_after_s))
				return bad(name, optarg);
			break;
		case O_CARD_TAMPER:
			if (!parse_u64(optarg, &cfg->card_tamper) || !cfg->card_tamper)
				return bad(name, optarg);
			break;
		case O_ENDPOINTS:
			*endpoints = optarg;
			break;
		case O_STATS:
			stats_path = optarg;
			break;
		case O_CONTROL:
			if (!parse_u64(optarg, &u) || u > 65000)
				return bad("control", optarg);
			control_port = (int)u;
			break;
		case O_PRINT_MODEL:
			*model = true;
			break;
		case O_VERBOSE:
			verbosity = verbosity < IMP_LOG_TRACE ? verbosity + 1 : verbosity;
			break;
		case O_QUIET:
			verbosity = IMP_LOG_ERROR;
			break;
		case O_HELP:
			usage(stdout);
			exit(EXIT_OK);
		case O_VERSION:
			printf("imprint-vboard %s\n", IMPRINT_VERSION);
			exit(EXIT_OK);
		default:
			fprintf(stderr, "imprint-vboard: error: see --help for the options\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "imprint-vboard: error: unexpected argument '%s', see --help\n", argv[optind]);
		return EXIT_USAGE;
	}
	if ((cfg->revisions || cfg->fw_keeps_approtect) &&
	    (!cfg->chip || strcmp(cfg->chip, "nordic-nrf52840") != 0)) {
		fprintf(stderr, "imprint-vboard: error: --revision and --fw-keeps-approtect need --chip nordic-nrf52840\n");
		return EXIT_USAGE;
	}
	if (cfg->backdoor && !cfg->state_dir) {
		fprintf(stderr, "imprint-vboard: error: --backdoor needs --state-dir\n");
		return EXIT_USAGE;
	}
	imp_log_set_level((enum imp_log_level)verbosity);
	return EXIT_OK;
}

/* One JSON line per board: the time its latency model charged, in seconds. */
static void write_stats(const char *path, struct sim_board **boards, int n)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		IMP_ERROR("cannot write %s: %s", path, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++)
		fprintf(f, "{\"board\":%d,\"modelled_s\":%.6f,\"mass_erases\":%llu}\n", i,
			sim_board_modelled_s(boards[i]),
			(unsigned long long)sim_board_mass_erases(boards[i]));
	fclose(f);
}

/* The control port's listener on 127.0.0.1:port (0: ephemeral). */
static int control_open(struct sim_control *ctl, int port)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int one = 1;

	ctl->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0)
		return -1;
	setsockopt(ctl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (bind(ctl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(ctl->listen_fd, 4) != 0 ||
	    getsockname(ctl->listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
		IMP_ERROR("cannot listen on 127.0.0.1:%d for --control: %s; pick another port",
			  port, strerror(errno));
		return -1;
	}
	ctl->port = ntohs(sa.sin_port);
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_config cfg = { .boards = 1, .latency = 1.0, .card_back_after_s = 1.0,
				  .bitbang_port = -1 };
	struct sim_board **boards = NULL;
	const char *endpoints = NULL;
	uint64_t power_cut = 0;
	bool model = false;
	sigset_t sigs;
	int stop[2] = { -1, -1 }, ret = EXIT_FAIL, sig = 0, started = 0;
	char *lines = NULL;
	size_t lines_len = 0;
	struct sim_control ctl = { .listen_fd = -1 };
	pthread_t ctl_thread;
	bool ctl_started = false;

	imp_log_set_prog("imprint-vboard");
	ret = parse_args(argc, argv, &cfg, &endpoints, &power_cut, &model);
	if (ret != EXIT_OK)
		return ret;
	ret = EXIT_FAIL;
	if (model) {
		print_model(cfg.latency);
		return EXIT_OK;
	}
	if (cfg.backdoor)
		IMP_WARN("the test back door is on: slot private keys are written to the state directory");
	if (power_cut)
		sim_power_cut_arm(power_cut);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (pipe2(stop, O_CLOEXEC) != 0) {
		IMP_ERROR("cannot create a pipe: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (cfg.state_dir && imp_mkdir_p(cfg.state_dir, 0700) != IMP_OK)
		goto cleanup;
	boards = calloc((size_t)cfg.boards, sizeof(*boards));
	if (!boards)
		goto cleanup;
	for (started = 0; started < cfg.boards; started++) {
		if (sim_board_start(&cfg, started, stop[0], &boards[started]) != IMP_OK) {
			IMP_ERROR("board %d did not start", started);
			if (boards[started])
				started++;
			goto cleanup;
		}
	}
	if (control_port >= 0 && control_open(&ctl, control_port) != 0)
		goto cleanup;
	lines = sim_endpoint_lines(boards, started, ctl.port, &lines_len);
	if (!lines)
		goto cleanup;
	if (ctl.listen_fd >= 0) {
		ctl.stop_fd = stop[0];
		ctl.boards = boards;
		ctl.n = started;
		ctl.endpoints = endpoints;
		if (pthread_create(&ctl_thread, NULL, sim_control_main, &ctl) != 0)
			goto cleanup;
		ctl_started = true;
	}
	if (endpoints && imp_write_file_atomic(endpoints, lines, lines_len, 0644) != IMP_OK) {
		IMP_ERROR("cannot write the endpoints file %s", endpoints);
		goto cleanup;
	}
	fwrite(lines, 1, lines_len, stdout);
	fflush(stdout);
	if (sigwait(&sigs, &sig) == 0)
		IMP_INFO("signal %d: stopping", sig);
	ret = EXIT_OK;
	if (stats_path)
		write_stats(stats_path, boards, started);
cleanup:
	if (stop[1] >= 0) {
		ssize_t w = write(stop[1], "x", 1);

		(void)w;
	}
	if (ctl_started)
		pthread_join(ctl_thread, NULL);
	if (ctl.listen_fd >= 0)
		close(ctl.listen_fd);
	for (int i = 0; i < started; i++)
		sim_board_free(boards[i]);
	free(boards);
	free(lines);
	if (stop[0] >= 0)
		close(stop[0]);
	if (stop[1] >= 0)
		close(stop[1]);
	return ret;
}
