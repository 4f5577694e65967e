#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "probe_priv.h"

const struct board_probe_driver *const board_probe_drivers[] = {
	&board_probe_openocd,
	&board_probe_rsp,
	&board_probe_rsp_serial,
	&board_probe_sim,
	NULL,
};

const struct board_probe_driver *board_probe_driver_find(const char *name)
{
	for (size_t i = 0; board_probe_drivers[i]; i++)
		if (strcmp(board_probe_drivers[i]->name, name) == 0)
			return board_probe_drivers[i];
	return NULL;
}

static const struct board_probe_driver *driver_of(const char *uri);

imp_err board_probe_open(const char *uri, struct board_probe **out)
{
	const struct board_probe_driver *drv;
	struct board_probe *p;
	imp_err rc;

	*out = NULL;
	drv = driver_of(uri);
	if (!drv)
		return IMP_ERR_USAGE;
	p = calloc(1, sizeof(*p));
	if (!p)
		return IMP_ERR_NOMEM;
	p->drv = drv;
	rc = drv->open(uri, &p->priv);
	if (rc != IMP_OK) {
		free(p);
		return rc;
	}
	*out = p;
	return IMP_OK;
}

/* The driver a URI's scheme names, or NULL (logged). */
static const struct board_probe_driver *driver_of(const char *uri)
{
	const struct board_probe_driver *drv;
	char scheme[16];
	size_t n = strcspn(uri, ":");

	if (uri[n] != ':' || n == 0 || n >= sizeof(scheme)) {
		IMP_ERROR("probe '%s': expected a URI like rsp://127.0.0.1:3333, openocd://CONFIG or sim:", uri);
		return NULL;
	}
	memcpy(scheme, uri, n);
	scheme[n] = '\0';
	drv = board_probe_driver_find(scheme);
	if (!drv)
		IMP_ERROR("probe '%s': unknown driver '%s' (known: openocd, rsp, rsp+serial, sim)", uri, scheme);
	return drv;
}

imp_err board_probe_server_start(const char *uri)
{
	const struct board_probe_driver *drv = driver_of(uri);

	if (!drv)
		return IMP_ERR_USAGE;
	if (!drv->server_start)
		return IMP_ERR_UNSUPPORTED;
	return drv->server_start(uri);
}

void board_probe_servers_wait(void)
{
	for (size_t i = 0; board_probe_drivers[i]; i++)
		if (board_probe_drivers[i]->servers_wait)
			board_probe_drivers[i]->servers_wait();
}

void board_probe_servers_stop(void)
{
	for (size_t i = 0; board_probe_drivers[i]; i++)
		if (board_probe_drivers[i]->servers_stop)
			board_probe_drivers[i]->servers_stop();
}

imp_err board_probe_attach_sim(struct sim_chip *chip, struct board_probe **out)
{
	struct board_probe *p;
	imp_err rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return IMP_ERR_NOMEM;
	p->drv = &board_probe_sim;
	rc = board_probe_sim_attach_priv(chip, &p->priv);
	if (rc != IMP_OK) {
		free(p);
		return rc;
	}
	*out = p;
	return IMP_OK;
}

void board_probe_close(struct board_probe *p)
{
	if (!p)
		return;
	p->drv->close(p->priv);
	free(p);
}

const char *board_probe_driver_name(const struct board_probe *p)
{
	return p->drv->name;
}

static imp_err locked(struct board_probe *p, imp_err rc)
{
	if (rc == IMP_ERR_TARGET_LOCKED && !p->expect_locked)
		IMP_ERROR("target locked: the debug port refuses access (debug-lock fuse)");
	return rc;
}

void board_probe_expect_locked(struct board_probe *p, bool expect)
{
	p->expect_locked = expect;
}

imp_err board_probe_read(struct board_probe *p, uint32_t addr, void *buf, size_t n)
{
	if (n == 0)
		return IMP_OK;
	if ((uint64_t)addr + n - 1 > 0xFFFFFFFFull) {
		IMP_ERROR("probe read of %zu bytes at 0x%08x wraps the address space", n, addr);
		return IMP_ERR_USAGE;
	}
	return locked(p, p->drv->read_mem(p->priv, addr, buf, n));
}

imp_err board_probe_write(struct board_probe *p, uint32_t addr, const void *buf, size_t n)
{
	if (n == 0)
		return IMP_OK;
	if ((uint64_t)addr + n - 1 > 0xFFFFFFFFull) {
		IMP_ERROR("probe write of %zu bytes at 0x%08x wraps the address space", n, addr);
		return IMP_ERR_USAGE;
	}
	return locked(p, p->drv->write_mem(p->priv, addr, buf, n));
}

imp_err board_probe_reset(struct board_probe *p)
{
	if (!p->drv->reset) {
		IMP_ERROR("probe driver '%s' cannot reset the target", p->drv->name);
		return IMP_ERR_UNSUPPORTED;
	}
	return locked(p, p->drv->reset(p->priv));
}

imp_err board_probe_halt(struct board_probe *p)
{
	if (!p->drv->halt) {
		IMP_ERROR("probe driver '%s' cannot halt the target", p->drv->name);
		return IMP_ERR_UNSUPPORTED;
	}
	return locked(p, p->drv->halt(p->priv));
}

imp_err board_probe_monitor(struct board_probe *p, const char *cmd, char *out, size_t cap)
{
	if (!p->drv->monitor) {
		IMP_ERROR("probe driver '%s' has no monitor commands", p->drv->name);
		return IMP_ERR_UNSUPPORTED;
	}
	if (out && cap)
		out[0] = '\0';
	return locked(p, p->drv->monitor(p->priv, cmd, out, cap));
}

imp_err board_probe_read_u32(struct board_probe *p, uint32_t addr, uint32_t *v)
{
	uint8_t b[4];
	imp_err rc;

	rc = board_probe_read(p, addr, b, 4);
	if (rc != IMP_OK)
		return rc;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return IMP_OK;
}

imp_err board_probe_write_u32(struct board_probe *p, uint32_t addr, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	return board_probe_write(p, addr, b, 4);
}

imp_err board_probe_flash_program(struct board_probe *p, uint32_t addr, const void *buf,
				  size_t n)
{
	if (!p->drv->flash_program)
		return IMP_ERR_UNSUPPORTED;
	if (n == 0)
		return IMP_OK;
	if ((uint64_t)addr + n - 1 > 0xFFFFFFFFull) {
		IMP_ERROR("probe flash write of %zu bytes at 0x%08x wraps the address space", n,
			  addr);
		return IMP_ERR_USAGE;
	}
	return locked(p, p->drv->flash_program(p->priv, addr, buf, n));
}

imp_err board_probe_crc32(struct board_probe *p, uint32_t addr, size_t n, uint32_t *crc)
{
	if (!p->drv->crc32)
		return IMP_ERR_UNSUPPORTED;
	if (n == 0 || (uint64_t)addr + n - 1 > 0xFFFFFFFFull)
		return IMP_ERR_USAGE;
	return locked(p, p->drv->crc32(p->priv, addr, n, crc));
}

imp_err board_probe_ap_read(struct board_probe *p, unsigned ap, uint32_t reg, uint32_t *v)
{
	if (!p->drv->ap_read)
		return IMP_ERR_UNSUPPORTED;
	return p->drv->ap_read(p->priv, ap, reg, v);
}

imp_err board_probe_ap_write(struct board_probe *p, unsigned ap, uint32_t reg, uint32_t v)
{
	if (!p->drv->ap_write)
		return IMP_ERR_UNSUPPORTED;
	return p->drv->ap_write(p->priv, ap, reg, v);
}
