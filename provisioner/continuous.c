/*
 * Continuous mode (provisioner/provision.h, prov_run_continuous): a
 * fixture's worker waits for a board, provisions it, waits for it to
 * leave, and takes the next.
 *
 * A board is there when its agent answers IDENTIFY on the fixture's UART;
 * the fixture is empty when the UART stays silent. The poll is one
 * IDENTIFY without retransmission and without an error in the log (the
 * link is quiet): silence is the expected answer of an empty fixture. A
 * board that answers with another UID than the one just finished is a new
 * board (swapped faster than one poll). prov_run_board then checks, as for
 * every board, that the UID read through SWD is the agent's.
 */
#include <stdio.h>
#include <string.h>

#include "board/agent.h"
#include "board/link.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "provisioner/provision.h"

#define POLL_US 250000u  /* between two polls of an empty or finished fixture */
#define GONE_POLLS 2     /* silent polls in a row: the board has left */

static bool stopped(const struct prov_station *st)
{
	return st->stop && *st->stop;
}

static void say(struct prov_station *st, const struct fmt_fixture *fx,
		enum prov_activity act, const struct prov_result *last, unsigned boards,
		const char *msg)
{
	struct prov_progress p;

	if (!st->progress)
		return;
	memset(&p, 0, sizeof(p));
	p.fixture = fx->name;
	p.uid = last ? last->uid : "";
	p.serial = last ? last->serial : "";
	p.state = last ? last->state : JNL_ST_CONNECT;
	p.rc = last ? last->rc : IMP_OK;
	p.message = msg;
	p.activity = act;
	p.boards = boards;
	st->progress(st->progress_arg, &p);
}

/* Sleep about us, in short steps, unless a stop is asked for. */
static void nap(const struct prov_station *st, unsigned us)
{
	for (unsigned slept = 0; slept < us && !stopped(st); slept += 50000u)
		imp_sleep_us(50000u);
}

static imp_err poll_link(const struct fmt_fixture *fx, struct board_link **out)
{
	imp_err rc = board_link_open("serial", fx->uart, fx->baud, out);

	if (rc != IMP_OK)
		return rc;
	board_link_set_quiet(*out, true);
	board_link_set_retries(*out, 0);
	return IMP_OK;
}

/*
 * One poll: *there is true and uid filled when an agent answered. Silence
 * and damaged answers are not errors here (*there false; *noise true for a
 * damaged answer: something is on the line).
 */
static imp_err poll_once(struct board_link *l, bool *there, bool *noise,
			 char uid[JNL_UID_HEX_MAX + 1])
{
	struct board_agent_info info;
	imp_err rc = board_agent_identify(l, &info);

	*there = false;
	*noise = false;
	if (rc == IMP_OK) {
		imp_hex_encode(info.uid, WIRE_UID_LEN, uid);
		*there = true;
		return IMP_OK;
	}
	if (rc == IMP_ERR_TIMEOUT)
		return IMP_OK;
	if (rc == IMP_ERR_PROTOCOL) {
		*noise = true;
		return IMP_OK;
	}
	return rc;
}

/* Wait until a board answers on the fixture. */
static imp_err wait_board(struct prov_station *st, const struct fmt_fixture *fx)
{
	struct board_link *l = NULL;
	char uid[JNL_UID_HEX_MAX + 1];
	bool there = false, noise;
	imp_err rc;

	rc = poll_link(fx, &l);
	while (rc == IMP_OK && !stopped(st)) {
		rc = poll_once(l, &there, &noise, uid);
		if (rc != IMP_OK || there)
			break;
		nap(st, POLL_US);
	}
	board_link_close(l);
	if (rc == IMP_OK && !there)
		rc = IMP_ERR_INTERRUPTED;
	return rc;
}

/* Wait until the board `uid` has left the fixture, or another answers. */
static imp_err wait_removal(struct prov_station *st, const struct fmt_fixture *fx,
			    const char *uid)
{
	struct board_link *l = NULL;
	char now[JNL_UID_HEX_MAX + 1];
	unsigned silent = 0;
	bool there, noise;
	imp_err rc;

	rc = poll_link(fx, &l);
	while (rc == IMP_OK) {
		if (stopped(st)) {
			rc = IMP_ERR_INTERRUPTED;
			break;
		}
		rc = poll_once(l, &there, &noise, now);
		if (rc != IMP_OK)
			break;
		if (there && strcmp(now, uid) != 0) {
			IMP_INFO("%s: another board (%s) answers: board %s has left", fx->name, now,
				 uid);
			break;
		}
		silent = there || noise ? 0 : silent + 1;
		if (silent >= GONE_POLLS)
			break;
		nap(st, POLL_US);
	}
	board_link_close(l);
	return rc;
}

/* What became of a board that did not finish, and of its serial. */
static void explain_failure(const struct fmt_fixture *fx, const struct prov_result *r,
			    struct prov_tally *t, char *msg, size_t cap)
{
	const char *step = jnl_state_name(r->state);

	if (r->quarantined) {
		snprintf(msg, cap, "quarantined: set the board aside for inspection, then remove it");
		return;
	}
	if (!r->serial[0]) {
		snprintf(msg, cap, "failed at %s (%s) before a serial was allocated: no serial used; "
			 "remove the board", step, imp_err_name(r->rc));
		IMP_WARN("%s: board %s failed at %s before a serial was allocated: no serial "
			 "was used", fx->name, r->uid[0] ? r->uid : "(no uid)", step);
		return;
	}
	t->serials_held++;
	if (r->state == JNL_ST_FAILED) {
		snprintf(msg, cap, "rejected (%s): serial %s stays with it, never reissued; set "
			 "it aside", imp_err_name(r->rc), r->serial);
		IMP_WARN("%s: board %s was rejected (%s): its serial %s stays bound to it and "
			 "counts against the quota; it is never given to another board (a "
			 "supervisor may 'imprint provision --reissue' it); set the board aside",
			 fx->name, r->uid, imp_err_name(r->rc), r->serial);
		return;
	}
	snprintf(msg, cap, "failed at %s (%s): serial %s reserved for it; put it back to "
		 "finish", step, imp_err_name(r->rc), r->serial);
	IMP_WARN("%s: board %s failed at %s (%s): its serial %s stays reserved for it and "
		 "counts against the quota; put it back on a fixture (it continues from %s "
		 "with that serial) or run 'imprint resume' with it on its fixture",
		 fx->name, r->uid, step, imp_err_name(r->rc), r->serial, step);
}

imp_err prov_run_continuous(struct prov_station *st, const struct fmt_fixture *fx,
			    struct prov_result *res)
{
	struct prov_tally t = { 0 };
	char msg[256];
	imp_err rc;

	memset(res, 0, sizeof(*res));
	for (;;) {
		say(st, fx, PROV_ACT_WAIT_BOARD, NULL, t.boards, "waiting for a board");
		rc = wait_board(st, fx);
		if (rc != IMP_OK)
			break;
		t.boards++;
		rc = prov_run_board(st, fx, res);
		if (res->not_taken || (rc == IMP_ERR_INTERRUPTED && !res->uid[0])) {
			/* --count reached before this board started */
			t.boards--;
			rc = IMP_ERR_INTERRUPTED;
			break;
		}
		if (res->already_done)
			t.already_done++;
		else if (rc == IMP_OK)
			t.done++;
		else if (res->quarantined)
			t.quarantined++;
		else if (rc != IMP_ERR_INTERRUPTED)
			t.failed++;
		if (rc != IMP_OK && !res->quarantined && res->state == JNL_ST_FAILED)
			t.rejected++;
		if (rc == IMP_ERR_INTERRUPTED || rc == IMP_ERR_QUOTA || rc == IMP_ERR_CONFIG)
			break;
		if (rc == IMP_OK)
			snprintf(msg, sizeof(msg), "%s %s: remove the board",
				 res->already_done ? "already done" : "done", res->serial);
		else
			explain_failure(fx, res, &t, msg, sizeof(msg));
		say(st, fx, PROV_ACT_WAIT_REMOVAL, res, t.boards, msg);
		rc = wait_removal(st, fx, res->uid);
		if (rc != IMP_OK)
			break;
	}
	if (rc == IMP_ERR_QUOTA)
		IMP_ERROR("%s: production quota reached: the fixture takes no more boards", fx->name);
	else if (rc != IMP_ERR_INTERRUPTED && rc != IMP_ERR_CONFIG)
		IMP_ERROR("%s: the fixture stops: %s", fx->name, imp_err_str(rc));
	if (rc != IMP_OK && rc != IMP_ERR_INTERRUPTED)
		res->rc = rc;
	else
		res->rc = IMP_ERR_INTERRUPTED;
	res->tally = t;
	return res->rc;
}
