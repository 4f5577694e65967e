/*
 * imprint's one error enum.
 *
 * 0 is success. Every other value is an error and is also the process exit
 * code of the `imprint` command that met it. The numbers are FROZEN: they are
 * part of the command-line contract (scripts test them, the README and the
 * man page list them). Never renumber, never reorder, never reuse a retired
 * number; add new values just before IMP_ERR__COUNT.
 */
#ifndef IMPRINT_ERR_H
#define IMPRINT_ERR_H

typedef enum imp_err {
	IMP_OK = 0,                  /* 0: success */
	IMP_ERR_INTERNAL = 1,        /* 1: internal error (a bug: please report it) */
	IMP_ERR_USAGE = 2,           /* 2: bad command line */
	IMP_ERR_CONFIG = 3,          /* 3: configuration missing or invalid */
	IMP_ERR_IO = 4,              /* 4: file or device I/O failed */
	IMP_ERR_NOMEM = 5,           /* 5: out of memory */
	IMP_ERR_HSM = 6,             /* 6: the HSM (PKCS#11) reported a failure */
	IMP_ERR_PIN = 7,             /* 7: wrong PIN, or no PIN could be read */
	IMP_ERR_PIN_LOCKED = 8,      /* 8: the token's PIN is locked */
	IMP_ERR_NOT_FOUND = 9,       /* 9: module, token, object or board not found */
	IMP_ERR_EXISTS = 10,         /* 10: would overwrite something that exists */
	IMP_ERR_CRYPTO = 11,         /* 11: a cryptographic operation failed */
	IMP_ERR_VERIFY = 12,         /* 12: a signature or digest did not verify */
	IMP_ERR_INSECURE = 13,       /* 13: unsafe setting (file mode, key attributes) */
	IMP_ERR_PROBE = 14,          /* 14: debug probe (SWD / RSP) failure */
	IMP_ERR_TARGET_LOCKED = 15,  /* 15: the target refuses debug access (locked) */
	IMP_ERR_LINK = 16,           /* 16: UART link failure */
	IMP_ERR_PROTOCOL = 17,       /* 17: malformed or unexpected frame / packet */
	IMP_ERR_TIMEOUT = 18,        /* 18: a peer did not answer in time */
	IMP_ERR_BOARD = 19,          /* 19: the board refused or failed a command */
	IMP_ERR_JOURNAL = 20,        /* 20: journal (database) failure */
	IMP_ERR_QUOTA = 21,          /* 21: production quota exhausted */
	IMP_ERR_QUARANTINE = 22,     /* 22: board quarantined (locked and unknown) */
	IMP_ERR_DUPLICATE = 23,      /* 23: identity already issued or complete */
	IMP_ERR_UNSUPPORTED = 24,    /* 24: operation not supported by this driver/token */
	IMP_ERR_FIRMWARE = 25,       /* 25: firmware image rejected */
	IMP_ERR_CHALLENGE = 26,      /* 26: the board failed the identity challenge */
	IMP_ERR_EXPORT = 27,         /* 27: delivery to the registry failed */
	IMP_ERR_AUDIT = 28,          /* 28: the audit found problems */
	IMP_ERR_INTERRUPTED = 29,    /* 29: interrupted by a signal; resumable */
	IMP_ERR__COUNT               /* sentinel: not an error, keep last */
} imp_err;

/* Short stable name of an error ("IMP_ERR_PIN"); never NULL. */
const char *imp_err_name(imp_err e);

/* Human sentence for an error, lowercase, no full stop; never NULL. */
const char *imp_err_str(imp_err e);

#endif
