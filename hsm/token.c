/*
 * Tokens (discovery by label or RFC 7512 URI, initialisation), struct hsm
 * (open/close, login) and sessions.
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <p11-kit/uri.h>

#include "embedded_guard.h"
#include "hsm/hsm_raw.h"
#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

static void token_info_fill(CK_SLOT_ID slot, const CK_TOKEN_INFO *ti, struct hsm_token_info *out)
{
	memset(out, 0, sizeof(*out));
	out->slot_id = slot;
	hsm_unpad(ti->label, sizeof(ti->label), out->label);
	hsm_unpad(ti->manufacturerID, sizeof(ti->manufacturerID), out->manufacturer);
	hsm_unpad(ti->model, sizeof(ti->model), out->model);
	hsm_unpad(ti->serialNumber, sizeof(ti->serialNumber), out->serial);
	out->flags = ti->flags;
	out->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
	out->user_pin_initialized = (ti->flags & CKF_USER_PIN_INITIALIZED) != 0;
	out->user_pin_locked = (ti->flags & CKF_USER_PIN_LOCKED) != 0;
	out->so_pin_locked = (ti->flags & CKF_SO_PIN_LOCKED) != 0;
}

imp_err hsm_token_info_get(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot, struct hsm_token_info *out)
{
	CK_TOKEN_INFO ti;
	imp_err rc;

	rc = P11(fl, C_GetTokenInfo, slot, &ti);
	if (rc == IMP_OK)
		token_info_fill(slot, &ti, out);
	return rc;
}

/* Slots (with a token present, if present_only); *slots malloc'ed. */
static imp_err slot_list_any(CK_FUNCTION_LIST *fl, CK_BBOOL present_only, CK_SLOT_ID **slots,
			     CK_ULONG *n)
{
	CK_SLOT_ID *list = NULL;
	CK_ULONG count = 0;
	CK_RV rv;
	imp_err rc;

	*slots = NULL;
	*n = 0;
	for (;;) {
		CK_SLOT_ID *nl;

		rc = P11(fl, C_GetSlotList, present_only, NULL, &count);
		if (rc != IMP_OK)
			goto cleanup;
		nl = realloc(list, (count ? count : 1) * sizeof(*list));
		if (!nl) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		list = nl;
		rc = P11_RV(rv, CKR_BUFFER_TOO_SMALL, fl, C_GetSlotList, present_only, list,
			    &count);
		if (rc != IMP_OK)
			goto cleanup;
		if (rv == CKR_OK)
			break;
	}
	*slots = list;
	*n = count;
	list = NULL;
cleanup:
	free(list);
	return rc;
}

static imp_err slot_list(CK_FUNCTION_LIST *fl, CK_SLOT_ID **slots, CK_ULONG *n)
{
	return slot_list_any(fl, CK_TRUE, slots, n);
}

imp_err hsm_token_list(const char *module, struct hsm_token_info **out, size_t *n)
{
	CK_FUNCTION_LIST *fl = NULL;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0;
	struct hsm_token_info *infos = NULL;
	imp_err rc;

	*out = NULL;
	*n = 0;
	rc = hsm_module_get(&(struct hsm_module){ module, NULL }, NULL, &fl);
	if (rc != IMP_OK)
		return rc;
	rc = slot_list(fl, &slots, &count);
	if (rc != IMP_OK)
		goto cleanup;
	infos = calloc(count ? count : 1, sizeof(*infos));
	if (!infos) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	for (CK_ULONG i = 0; i < count; i++) {
		rc = hsm_token_info_get(fl, slots[i], &infos[i]);
		if (rc != IMP_OK)
			goto cleanup;
	}
	*out = infos;
	*n = count;
	infos = NULL;
cleanup:
	free(infos);
	free(slots);
	hsm_module_put(fl);
	return rc;
}

/*
 * The one initialised token matching `token` (URI or label). With
 * `uninit_user` the token must also have no user PIN yet (used right after
 * C_InitToken, when SoftHSM has moved the token to a new slot id).
 */
static imp_err token_find(CK_FUNCTION_LIST *fl, const char *token, int uninit_user,
			  CK_SLOT_ID *slot, struct hsm_token_info *info)
{
	P11KitUri *uri = NULL;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0, matches = 0;
	imp_err rc;
	int r;

	if (strncmp(token, "pkcs11:", 7) == 0) {
		uri = p11_kit_uri_new();
		if (!uri)
			return IMP_ERR_NOMEM;
		r = p11_kit_uri_parse(token, P11_KIT_URI_FOR_ANY, uri);
		if (r != P11_KIT_URI_OK) {
			IMP_ERROR("invalid pkcs11 uri %s: %s", token, p11_kit_uri_message(r));
			rc = IMP_ERR_USAGE;
			goto cleanup;
		}
	}
	rc = slot_list(fl, &slots, &count);
	if (rc != IMP_OK)
		goto cleanup;
	for (CK_ULONG i = 0; i < count; i++) {
		CK_TOKEN_INFO ti;
		struct hsm_token_info one;

		rc = P11(fl, C_GetTokenInfo, slots[i], &ti);
		if (rc != IMP_OK)
			goto cleanup;
		token_info_fill(slots[i], &ti, &one);
		if (!one.initialized)
			continue;
		if (uninit_user && one.user_pin_initialized)
			continue;
		if (uri ? !p11_kit_uri_match_token_info(uri, &ti) : strcmp(one.label, token) != 0)
			continue;
		if (matches++ == 0) {
			*slot = slots[i];
			if (info)
				*info = one;
		}
	}
	if (matches == 0) {
		IMP_ERROR("no initialised token %s on this pkcs11 module: 'imprint hsm tokens' "
			  "lists the modules, slots and tokens with their uris", token);
		rc = IMP_ERR_NOT_FOUND;
	} else if (matches > 1) {
		IMP_ERROR("%lu tokens match %s: name one by uri with its serial "
			  "(pkcs11:token=...;serial=...)", (unsigned long)matches, token);
		rc = IMP_ERR_CONFIG;
	}
cleanup:
	free(slots);
	if (uri)
		p11_kit_uri_free(uri);
	return rc;
}

imp_err hsm_token_init(const char *module, unsigned long slot, const char *label,
		       const struct hsm_pin_source *so_pin,
		       const struct hsm_pin_source *user_pin, unsigned long *new_slot)
{
	CK_FUNCTION_LIST *fl = NULL;
	CK_SESSION_HANDLE sh = CK_INVALID_HANDLE;
	CK_UTF8CHAR label32[32];
	CK_SLOT_ID moved;
	char so[HSM_PIN_MAX + 1], user[HSM_PIN_MAX + 1];
	size_t so_len = 0, user_len = 0, ll;
	struct hsm_pin_source so_buf = { .kind = HSM_PIN_BUFFER };
	imp_err rc;

	ll = label ? strlen(label) : 0;
	if (ll == 0 || ll > sizeof(label32)) {
		IMP_ERROR("token label must be 1 to 32 bytes long");
		return IMP_ERR_USAGE;
	}
	memset(label32, ' ', sizeof(label32));
	memcpy(label32, label, ll);
	rc = hsm_pin_read(so_pin, so, sizeof(so), &so_len);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_pin_read(user_pin, user, sizeof(user), &user_len);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_module_get(&(struct hsm_module){ module, NULL }, NULL, &fl);
	if (rc != IMP_OK)
		goto cleanup;
	rc = P11(fl, C_InitToken, slot, (CK_UTF8CHAR *)so, (CK_ULONG)so_len, label32);
	if (rc != IMP_OK)
		goto cleanup;
	rc = token_find(fl, label, 1, &moved, NULL);
	if (rc != IMP_OK)
		goto cleanup;
	rc = P11(fl, C_OpenSession, moved, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
	if (rc != IMP_OK)
		goto cleanup;
	so_buf.buf = so;
	so_buf.len = so_len;
	rc = hsm_login(fl, sh, CKU_SO, &so_buf, label);
	if (rc != IMP_OK)
		goto cleanup;
	rc = P11(fl, C_InitPIN, sh, (CK_UTF8CHAR *)user, (CK_ULONG)user_len);
	if (rc != IMP_OK)
		goto cleanup;
	P11(fl, C_Logout, sh);
	if (new_slot)
		*new_slot = moved;
cleanup:
	imp_wipe(so, sizeof(so));
	imp_wipe(user, sizeof(user));
	if (sh != CK_INVALID_HANDLE)
		P11(fl, C_CloseSession, sh);
	hsm_module_put(fl);
	return rc;
}

static imp_err mech_cache_load(struct hsm *h)
{
	CK_MECHANISM_TYPE *types = NULL;
	CK_ULONG n = 0;
	imp_err rc;

	rc = P11(h->fl, C_GetMechanismList, h->slot, NULL, &n);
	if (rc != IMP_OK)
		return rc;
	/* One spare entry: p11-kit 0.24's RPC client, filtering the list in
	 * place, reads one element past the count it was given (docs/HSM.md). */
	types = calloc(n + 1, sizeof(*types));
	h->mechs = calloc(n ? n : 1, sizeof(*h->mechs));
	if (!types || !h->mechs) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	rc = P11(h->fl, C_GetMechanismList, h->slot, types, &n);
	if (rc != IMP_OK)
		goto cleanup;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_MECHANISM_INFO mi;

		rc = P11(h->fl, C_GetMechanismInfo, h->slot, types[i], &mi);
		if (rc != IMP_OK)
			goto cleanup;
		h->mechs[i].type = types[i];
		h->mechs[i].flags = mi.flags;
		h->mechs[i].min_size = mi.ulMinKeySize;
		h->mechs[i].max_size = mi.ulMaxKeySize;
	}
	h->n_mechs = n;
cleanup:
	free(types);
	return rc;
}

bool hsm_has_mechanism(const struct hsm *h, unsigned long mech, unsigned long flags)
{
	for (size_t i = 0; i < h->n_mechs; i++)
		if (h->mechs[i].type == mech)
			return (h->mechs[i].flags & flags) == flags;
	return false;
}

imp_err hsm_open_conf(const struct hsm_module *m, const char *conf, const char *token,
		      const struct hsm_pin_source *pin, struct hsm **out)
{
	struct hsm *h;
	struct hsm_token_info info;
	imp_err rc;

	*out = NULL;
	if (!token || !*token) {
		IMP_ERROR("no token given: give its label or a pkcs11: uri");
		return IMP_ERR_CONFIG;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return IMP_ERR_NOMEM;
	h->login_session = CK_INVALID_HANDLE;
	pthread_mutex_init(&h->sign_lock, NULL);
	rc = hsm_module_get(m, conf, &h->fl);
	if (rc != IMP_OK)
		goto cleanup;
	rc = token_find(h->fl, token, 0, &h->slot, &info);
	if (rc != IMP_OK)
		goto cleanup;
	memcpy(h->token_label, info.label, sizeof(h->token_label));
	h->token_flags = info.flags;
	rc = P11(h->fl, C_OpenSession, h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		 &h->login_session);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_login(h->fl, h->login_session, CKU_USER, pin, h->token_label);
	if (rc != IMP_OK)
		goto cleanup;
	rc = mech_cache_load(h);
	if (rc != IMP_OK)
		goto cleanup;
	*out = h;
	h = NULL;
cleanup:
	hsm_close(h);
	return rc;
}

imp_err hsm_open(const char *module, const char *token, const struct hsm_pin_source *pin,
		 struct hsm **out)
{
	return hsm_open_conf(&(struct hsm_module){ module, NULL }, NULL, token, pin, out);
}

imp_err hsm_open_module(const struct hsm_module *m, const char *token,
			const struct hsm_pin_source *pin, struct hsm **out)
{
	return hsm_open_conf(m, NULL, token, pin, out);
}

void hsm_close(struct hsm *h)
{
	if (!h)
		return;
	if (h->login_session != CK_INVALID_HANDLE)
		P11(h->fl, C_CloseSession, h->login_session);
	hsm_module_put(h->fl);
	pthread_mutex_destroy(&h->sign_lock);
	free(h->mechs);
	free(h->guard_dir);
	free(h);
}

imp_err hsm_token_info_raw(struct hsm *h, CK_TOKEN_INFO *ti)
{
	int fd = -1;
	imp_err rc = IMP_OK;

	if (h->guard_dir)
		rc = hsm_guard_lock(h->guard_dir, &fd);
	if (rc == IMP_OK)
		rc = P11(h->fl, C_GetTokenInfo, h->slot, ti);
	hsm_guard_unlock(fd);
	return rc;
}

imp_err hsm_info(struct hsm *h, struct hsm_token_info *out)
{
	CK_TOKEN_INFO ti;
	imp_err rc = hsm_token_info_raw(h, &ti);

	if (rc == IMP_OK)
		token_info_fill(h->slot, &ti, out);
	return rc;
}

imp_err hsm_session_open(struct hsm *h, struct hsm_session **out)
{
	struct hsm_session *s;
	imp_err rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return IMP_ERR_NOMEM;
	s->h = h;
	s->fl = h->fl;
	rc = P11(h->fl, C_OpenSession, h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		 &s->sh);
	if (rc != IMP_OK) {
		free(s);
		return rc;
	}
	*out = s;
	return IMP_OK;
}

void hsm_session_close(struct hsm_session *s)
{
	if (!s)
		return;
	P11(s->fl, C_CloseSession, s->sh);
	free(s);
}

CK_FUNCTION_LIST *hsm_raw_functions(struct hsm *h)
{
	return h->fl;
}

CK_SLOT_ID hsm_raw_slot(struct hsm *h)
{
	return h->slot;
}

/* ------------------------------------------------------ hsm tokens */

static json_t *uri_json(P11KitUri *uri, P11KitUriType type)
{
	char *str = NULL;
	json_t *j;

	if (p11_kit_uri_format(uri, type, &str) != P11_KIT_URI_OK)
		return json_null();
	j = json_string(str);
	free(str);
	return j;
}

static json_t *version_json(CK_VERSION v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u.%u", (unsigned)v.major, (unsigned)v.minor);
	return json_string(buf);
}

static json_t *token_json(const CK_TOKEN_INFO *ti)
{
	struct hsm_token_info one;
	P11KitUri *uri = p11_kit_uri_new();
	json_t *j;

	token_info_fill(0, ti, &one);
	if (!uri)
		return NULL;
	memcpy(p11_kit_uri_get_token_info(uri), ti, sizeof(*ti));
	j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "label", one.label,
		      "manufacturer", one.manufacturer, "model", one.model, "serial", one.serial,
		      "initialized", one.initialized, "user_pin_initialized",
		      one.user_pin_initialized, "user_pin_locked", one.user_pin_locked, "uri",
		      uri_json(uri, P11_KIT_URI_FOR_TOKEN));
	p11_kit_uri_free(uri);
	return j;
}

static imp_err slot_json(CK_FUNCTION_LIST *fl, CK_SLOT_ID id, json_t **out)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	char desc[65], manuf[33];
	P11KitUri *uri = NULL;
	json_t *tok = NULL;
	imp_err rc;

	*out = NULL;
	rc = P11(fl, C_GetSlotInfo, id, &si);
	if (rc != IMP_OK)
		return rc;
	if (si.flags & CKF_TOKEN_PRESENT) {
		rc = P11(fl, C_GetTokenInfo, id, &ti);
		if (rc != IMP_OK)
			return rc;
		tok = token_json(&ti);
		if (!tok)
			return IMP_ERR_NOMEM;
	}
	uri = p11_kit_uri_new();
	if (!uri) {
		json_decref(tok);
		return IMP_ERR_NOMEM;
	}
	memcpy(p11_kit_uri_get_slot_info(uri), &si, sizeof(si));
	p11_kit_uri_set_slot_id(uri, id);
	hsm_unpad(si.slotDescription, sizeof(si.slotDescription), desc);
	hsm_unpad(si.manufacturerID, sizeof(si.manufacturerID), manuf);
	*out = json_pack("{s:I, s:s, s:s, s:o, s:o}", "id", (json_int_t)id, "description", desc,
			 "manufacturer", manuf, "uri", uri_json(uri, P11_KIT_URI_FOR_SLOT), "token",
			 tok ? tok : json_null());
	p11_kit_uri_free(uri);
	return *out ? IMP_OK : IMP_ERR_NOMEM;
}

imp_err hsm_module_report(const struct hsm_module *m, json_t **report)
{
	CK_FUNCTION_LIST *fl = NULL;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0;
	CK_INFO info;
	P11KitUri *uri = NULL;
	char manuf[33], desc[33];
	json_t *jslots = NULL;
	imp_err rc;

	*report = NULL;
	rc = hsm_module_get(m, NULL, &fl);
	if (rc == IMP_OK)
		rc = P11(fl, C_GetInfo, &info);
	if (rc == IMP_OK)
		rc = slot_list_any(fl, CK_FALSE, &slots, &count);
	if (rc != IMP_OK)
		goto cleanup;
	jslots = json_array();
	for (CK_ULONG i = 0; i < count && rc == IMP_OK; i++) {
		json_t *one = NULL;

		rc = slot_json(fl, slots[i], &one);
		if (rc == IMP_OK)
			json_array_append_new(jslots, one);
	}
	if (rc != IMP_OK)
		goto cleanup;
	uri = p11_kit_uri_new();
	if (!uri) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	memcpy(p11_kit_uri_get_module_info(uri), &info, sizeof(info));
	hsm_unpad(info.manufacturerID, sizeof(info.manufacturerID), manuf);
	hsm_unpad(info.libraryDescription, sizeof(info.libraryDescription), desc);
	*report = json_pack("{s:s, s:{s:s, s:s, s:o}, s:o, s:O}", "module", m->name, "library",
			    "manufacturer", manuf, "description", desc, "version",
			    version_json(info.libraryVersion), "uri",
			    uri_json(uri, P11_KIT_URI_FOR_MODULE), "slots", jslots);
	if (!*report)
		rc = IMP_ERR_NOMEM;
cleanup:
	if (rc != IMP_OK)
		*report = json_pack("{s:s, s:s}", "module", m->name, "error", imp_err_name(rc));
	json_decref(jslots);
	if (uri)
		p11_kit_uri_free(uri);
	free(slots);
	hsm_module_put(fl);
	return rc;
}
