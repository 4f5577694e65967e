#include "imprint/err.h"

struct err_desc {
	const char *name;
	const char *text;
};

static const struct err_desc err_table[IMP_ERR__COUNT] = {
	[IMP_OK] = { "IMP_OK", "success" },
	[IMP_ERR_INTERNAL] = { "IMP_ERR_INTERNAL", "internal error" },
	[IMP_ERR_USAGE] = { "IMP_ERR_USAGE", "bad command line" },
	[IMP_ERR_CONFIG] = { "IMP_ERR_CONFIG", "configuration missing or invalid" },
	[IMP_ERR_IO] = { "IMP_ERR_IO", "input/output error" },
	[IMP_ERR_NOMEM] = { "IMP_ERR_NOMEM", "out of memory" },
	[IMP_ERR_HSM] = { "IMP_ERR_HSM", "hsm failure" },
	[IMP_ERR_PIN] = { "IMP_ERR_PIN", "wrong or missing pin" },
	[IMP_ERR_PIN_LOCKED] = { "IMP_ERR_PIN_LOCKED", "pin locked" },
	[IMP_ERR_NOT_FOUND] = { "IMP_ERR_NOT_FOUND", "not found" },
	[IMP_ERR_EXISTS] = { "IMP_ERR_EXISTS", "already exists" },
	[IMP_ERR_CRYPTO] = { "IMP_ERR_CRYPTO", "cryptographic operation failed" },
	[IMP_ERR_VERIFY] = { "IMP_ERR_VERIFY", "verification failed" },
	[IMP_ERR_INSECURE] = { "IMP_ERR_INSECURE", "insecure setting refused" },
	[IMP_ERR_PROBE] = { "IMP_ERR_PROBE", "debug probe failure" },
	[IMP_ERR_TARGET_LOCKED] = { "IMP_ERR_TARGET_LOCKED", "target locked" },
	[IMP_ERR_LINK] = { "IMP_ERR_LINK", "uart link failure" },
	[IMP_ERR_PROTOCOL] = { "IMP_ERR_PROTOCOL", "protocol error" },
	[IMP_ERR_TIMEOUT] = { "IMP_ERR_TIMEOUT", "timed out" },
	[IMP_ERR_BOARD] = { "IMP_ERR_BOARD", "board refused the command" },
	[IMP_ERR_JOURNAL] = { "IMP_ERR_JOURNAL", "journal failure" },
	[IMP_ERR_QUOTA] = { "IMP_ERR_QUOTA", "production quota exhausted" },
	[IMP_ERR_QUARANTINE] = { "IMP_ERR_QUARANTINE", "board quarantined" },
	[IMP_ERR_DUPLICATE] = { "IMP_ERR_DUPLICATE", "identity already issued" },
	[IMP_ERR_UNSUPPORTED] = { "IMP_ERR_UNSUPPORTED", "not supported" },
	[IMP_ERR_FIRMWARE] = { "IMP_ERR_FIRMWARE", "firmware image rejected" },
	[IMP_ERR_CHALLENGE] = { "IMP_ERR_CHALLENGE", "identity challenge failed" },
	[IMP_ERR_EXPORT] = { "IMP_ERR_EXPORT", "export failed" },
	[IMP_ERR_AUDIT] = { "IMP_ERR_AUDIT", "audit findings" },
	[IMP_ERR_INTERRUPTED] = { "IMP_ERR_INTERRUPTED", "interrupted" },
};

const char *imp_err_name(imp_err e)
{
	if ((int)e < 0 || e >= IMP_ERR__COUNT || !err_table[e].name)
		return "IMP_ERR_UNKNOWN";
	return err_table[e].name;
}

const char *imp_err_str(imp_err e)
{
	if ((int)e < 0 || e >= IMP_ERR__COUNT || !err_table[e].text)
		return "unknown error";
	return err_table[e].text;
}
