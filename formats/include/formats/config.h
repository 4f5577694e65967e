/*
 * The station configuration file (JSON; docs/CONFIG.md).
 *
 * The parser is strict: unknown keys, wrong types, unknown enum values and
 * out-of-range numbers are refused with the JSON path of the field and what
 * is expected, e.g.
 *   config: fixtures[1].probe: expected "rsp://HOST:PORT" or "sim:"
 * Every section is optional except "version"; absent fields take the
 * defaults documented below (and in docs/CONFIG.md).
 *
 * Paths in the file (firmware.*, registry.ca/cert/key, journal, hsm pin
 * files, an hsm.module that contains a '/') are relative to the folder of
 * the configuration file; the loaded struct holds them resolved against
 * that folder's real path (so they are absolute).
 */
#ifndef FORMATS_CONFIG_H
#define FORMATS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"
#include "formats/certprofile.h"
#include "formats/record.h"
#include "formats/serial.h"
#include "formats/x509.h"

#define FMT_CONFIG_VERSION 1 /* persisted: "version" */
#define FMT_CONFIG_ERR_MAX 512u /* size of the error buffer of fmt_config_load */

enum fmt_probe_kind {
	FMT_PROBE_SIM = 0, /* "sim:" the virtual board, started by the station */
	FMT_PROBE_RSP = 1, /* "rsp://HOST:PORT[?...]" a GDB remote serial protocol server */
	FMT_PROBE_OPENOCD = 2, /* "openocd://CONFIG[?...]" OpenOCD started by the station */
	FMT_PROBE_RSP_SERIAL = 3, /* "rsp+serial:///dev/ttyACM0[?...]" RSP on a serial port (BMP) */
};

struct fmt_fixture {
	char *name;              /* required, unique */
	enum fmt_probe_kind probe_kind;
	char *probe;             /* as written: "sim:", "rsp://HOST:PORT[?...]", "openocd://..." */
	char *probe_host;        /* rsp: HOST (brackets of an IPv6 literal removed); else NULL */
	unsigned probe_port;     /* rsp: 1..65535; else 0 */
	char *uart;              /* serial device; required for rsp/openocd, NULL = sim's pty */
	unsigned baud;           /* default 921600; a standard termios rate */
	char *reader;            /* PC/SC reader name; NULL = none */
};

enum fmt_pin_source {
	FMT_PIN_DEFAULT = 0, /* absent: the embedded token's pin file */
	FMT_PIN_ENV = 1,     /* {"env": "VAR"}: value is the variable name */
	FMT_PIN_FILE = 2,    /* {"file": "path"}: value is the resolved path */
	FMT_PIN_PROMPT = 3,  /* {"prompt": true}: ask on the terminal */
};

struct fmt_pin_spec {
	enum fmt_pin_source source;
	char *value; /* variable name or path; NULL for DEFAULT / PROMPT */
};

#define FMT_QUOTA_DEFAULT 1000u
#define FMT_HSM_TOKEN_DEFAULT "pkcs11:token=imprint" /* the embedded token's */

/* ---- "matter": Matter factory data per board (docs/MATTER.md) ---- */
#define FMT_MATTER_ITER_DEFAULT 10000u   /* PBKDF2 iterations of the verifier */
#define FMT_MATTER_SALT_DEFAULT 32u      /* bytes of random salt per board */
#define FMT_MATTER_CD_MAX 1024u          /* largest certification declaration */

struct fmt_matter_config {
	/* Matter vendor and product ID as the Matter specification writes
	 * them: 4 uppercase hex digits ("FFF1", "8000"); "" = not set. */
	char vendor_id[5];
	char product_id[5];
	/* The factory data (docs/MATTER.md): made for every board when the
	 * "matter" object is present, which then needs both IDs. */
	bool enabled;              /* the "matter" object is present */
	int discriminator;         /* 0..4095; -1 (default): random per board */
	unsigned iterations;       /* "spake2p_iterations" 1000..100000 */
	unsigned salt_length;      /* "salt_length" 16..32: random per board */
	uint8_t discovery;         /* "discovery": FMT_MATTER_DISC_* bits, default BLE */
	unsigned flow;             /* "commissioning_flow": enum fmt_matter_flow */
	char *certification_declaration; /* resolved path, NULL = none */
};

/* The numeric value of a "vendor_id" / "product_id" as parsed (0 if unset). */
uint16_t fmt_matter_id_value(const char id[5]);

struct fmt_config {
	char *path;           /* the file that was loaded */
	char *dir;            /* its folder: base of relative paths */
	int version;          /* 1 */
	char *station_id;     /* default "station" */
	char *operator_name;  /* default NULL (the station uses $USER) */
	struct {
		char *name;   /* default "Imprint Device" */
		char *sku;    /* default "IMPRINT-DEV" */
	} product;
	struct {
		char *prefix;             /* default "IMP" */
		unsigned width;           /* 1..12, default 6 */
		enum fmt_check_digit check_digit; /* default none */
		uint64_t start;           /* first counter value, default 1 */
	} serial;
	enum fmt_key_mode key_mode;       /* default device */
	struct {
		/* Subject template of device certificates, in file order; values
		 * may hold {serial}, {uid}, {sku} (fmt_subject_expand). Default
		 * O = organisation.name, CN = "{serial}", serialNumber = "{uid}".
		 * Strings owned by cfg. */
		struct fmt_name_entry *subject;
		size_t subject_count;
		bool subject_set;         /* certificate.subject is in the file */
		unsigned validity_days;   /* 1..36500, default 7300 */
		char *profile;            /* device certificate profile, default "default" */
		struct fmt_certprof_set *profiles; /* loaded with the file (owned) */
	} certificate;
	/* Matter vendor and product ID (the certificate profiles' VID/PID)
	 * and the factory data: docs/MATTER.md. */
	struct fmt_matter_config matter;
	struct {
		char *name;               /* default "Imprint Demo Organisation" */
		char country[3];          /* 2 letters, "" = omitted (default) */
		unsigned root_validity_days; /* 1..36500, default 9125 */
		unsigned ca_validity_days;   /* 1..36500, default 7300 */
	} organisation;
	struct {
		char *image;              /* resolved path, NULL = no programming */
		char *signature;          /* resolved path, NULL = none */
	} firmware;
	char *target;                     /* target profile name, default "imprint-vb1" */
	struct fmt_fixture *fixtures;     /* default: one {"F1", "sim:"}, a placeholder */
	size_t fixture_count;
	struct {
		char *module;    /* a p11-kit module name or a path; NULL (default)
				    = the embedded SoftHSM2 token in the data
				    directory */
		char *init_args; /* C_Initialize pReserved string (NSS softoken's
				    "configdir='sql:DIR' ..."), NULL = none */
		char *token;     /* RFC 7512 URI, default FMT_HSM_TOKEN_DEFAULT */
		struct fmt_pin_spec pin;
		struct fmt_pin_spec supervisor_pin;
	} hsm;
	struct {
		char *url;        /* https:// URL; NULL (default) = the local registry */
		char *ca;         /* resolved paths, NULL = none */
		char *cert;
		char *key;
		char *bearer_env; /* variable holding a bearer token; NULL = none */
	} registry;
	uint64_t quota;           /* boards this station may provision; 0 refuses
				     all; default FMT_QUOTA_DEFAULT */
	char *journal;            /* resolved path; NULL = <data dir>/journal.sqlite */
	struct {
		char *url;                /* libpq URI / conninfo; NULL (default) = no line */
		unsigned block;           /* counters per lease, 1..100000, default 50 */
		uint64_t quota;           /* the line's quota to store; 0 (default) keeps */
		unsigned connect_timeout; /* seconds, 1..60, default 2 */
	} line;                           /* docs/LINE.md */
};

/* Fill cfg with the defaults (as if the file were {"version": 1}). */
imp_err fmt_config_defaults(struct fmt_config *cfg);

/*
 * Load and validate the file at path into *cfg (fully overwritten; release
 * it with fmt_config_release, also after a failure). On error the message
 * ("config: JSON.PATH: expected ...") is logged with IMP_ERROR and, if
 * err_buf is not NULL, copied into it (FMT_CONFIG_ERR_MAX bytes).
 * IMP_ERR_CONFIG for invalid content, IMP_ERR_NOT_FOUND if the file does
 * not exist, IMP_ERR_IO if it cannot be read, IMP_ERR_NOMEM.
 */
imp_err fmt_config_load(const char *path, struct fmt_config *cfg, char *err_buf);

/*
 * (Re)load cfg->certificate.profiles for cfg->certificate.profile and the
 * rest of cfg (formats/certprofile.h); fmt_config_load and
 * fmt_config_defaults do it. Errors as fmt_config_load's (IMP_ERR_CONFIG
 * naming the profile, its file and the field).
 */
imp_err fmt_config_load_profiles(struct fmt_config *cfg, char *err_buf);

/* Free everything cfg owns and zero it. Safe on a zeroed struct. */
void fmt_config_release(struct fmt_config *cfg);

/*
 * Expand {serial}, {uid} and {sku} in tmpl. Any other '{' is an error
 * (IMP_ERR_CONFIG). A NULL variable expands to "" . *out malloc'ed (free).
 */
imp_err fmt_subject_expand(const char *tmpl, const char *serial, const char *uid,
			   const char *sku, char **out);

/*
 * The device certificate subject of cfg for one board: the device
 * profile's subject if it has one, else certificate.subject; each template
 * value expanded. *out is a malloc'ed array of *n entries whose strings are
 * malloc'ed too; free it with fmt_name_entries_free(*out, *n).
 */
imp_err fmt_config_device_subject(const struct fmt_config *cfg, const char *serial,
				  const char *uid, const char *sku,
				  struct fmt_name_entry **out, size_t *n);
void fmt_name_entries_free(struct fmt_name_entry *e, size_t n);

/*
 * The template values of cfg for one certificate (formats/certprofile.h):
 * serial, uid and sku as given, vid/pid from matter, org and country from
 * organisation. Pointers borrowed from the arguments and cfg.
 */
void fmt_config_cert_vars(const struct fmt_config *cfg, const char *serial, const char *uid,
			  const char *sku, struct fmt_certprof_vars *out);

#endif
