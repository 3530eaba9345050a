// SPDX-License-Identifier: MIT
/* attach_cache.c - per-build cache of the probe plan and the GIL layout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <jansson.h>
#include "attach_cache.h"
#include "giltrace.h"
#include "elf_image.h"
#include "probes.h"
#include "py_state.h"
#include "target.h"

#define CACHE_FORMAT 1
#define CODE_BYTES 16

static int cache_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");

	if (getenv("GILTRACE_NO_CACHE") && strcmp(getenv("GILTRACE_NO_CACHE"), "0"))
		return -ENOENT;
	if (x && *x)
		snprintf(buf, len, "%s/giltrace", x);
	else if (h && *h)
		snprintf(buf, len, "%s/.cache/giltrace", h);
	else
		return -ENOENT;
	return 0;
}

static int cache_path(struct py_target *t, int mode, char *buf,
		      size_t len)
{
	const char *id = elf_image__build_id(t->img);
	struct utsname u;
	unsigned maj = 0, min = 0;
	char dir[PATH_MAX];

	if (!id || !*id || cache_dir(dir, sizeof(dir)))
		return -ENOENT;
	if (!uname(&u))
		sscanf(u.release, "%u.%u", &maj, &min);
	if (snprintf(buf, len, "%s/%s-d%d-p%d-k%u.%u-f%d.json", dir, id,
		     elf_image__debug_path(t->img) != NULL, mode, maj, min,
		     CACHE_FORMAT) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static int unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static const char *source_name(const char *s)
{
	/* gil_layout.source points to a static string. */
	if (s && !strcmp(s, "debug-offsets"))
		return "debug-offsets";
	if (s && !strcmp(s, "dwarf"))
		return "dwarf";
	return "table";
}

/* The layout's integer fields, by name: one list for store and load. */
#define LAYOUT_FIELDS(X) X(runtime) X(rt_gil) X(rt_main_interp) X(interp_gil) \
	X(s_interval) X(s_last_holder) X(s_locked) X(s_switch_number) \
	X(g_interval) X(g_last_holder) X(g_locked) X(g_switch_number) \
	X(ts_thread_id) X(ts_native_thread_id)

static json_t *layout_json(const struct gil_layout *l)
{
	json_t *o = json_object();

#define STORE(f) json_object_set_new(o, #f, json_integer((json_int_t)l->f));
	LAYOUT_FIELDS(STORE)
#undef STORE
	json_object_set_new(o, "where", json_integer(l->where));
	json_object_set_new(o, "source", json_string(source_name(l->source)));
	return o;
}

static int layout_from_json(json_t *o, struct gil_layout *l)
{
	json_t *v;

	memset(l, 0, sizeof(*l));
#define LOAD(f) if (!json_is_integer(v = json_object_get(o, #f))) return -EINVAL; \
	l->f = (uint64_t)json_integer_value(v);
	LAYOUT_FIELDS(LOAD)
#undef LOAD
	if (!json_is_integer(v = json_object_get(o, "where")))
		return -EINVAL;
	l->where = (enum gil_where)json_integer_value(v);
	if (l->where < GIL_WHERE_STATICS || l->where > GIL_WHERE_INTERP)
		return -EINVAL;
	l->source = source_name(json_string_value(json_object_get(o, "source")));
	return 0;
}

/* @root to @path through a temporary file and rename: readers never see
 * a half-written entry. Returns 0 or a negative errno. */
static int write_atomic(const char *path, json_t *root)
{
	char tmp[PATH_MAX + 16];
	int fd, e = 0;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (json_dumpfd(root, fd, JSON_COMPACT) || fsync(fd))
		e = -EIO;
	close(fd);
	if (!e && rename(tmp, path))
		e = -errno;
	if (e)
		unlink(tmp);
	return e;
}

/* $HOME/.cache may not exist yet. */
static int make_dir(void)
{
	char dir[PATH_MAX], parent[PATH_MAX], *slash;

	if (cache_dir(dir, sizeof(dir)))
		return -ENOENT;
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		mkdir(parent, 0700);
	}
	mkdir(dir, 0700);
	return 0;
}

int attach_cache__store(struct py_target *t, int mode,
			const struct probe_plan *plan,
			const struct gil_layout *l)
{
	char path[PATH_MAX], code[2 * CODE_BYTES + 1];
	json_t *root, *arr;
	uint8_t b[CODE_BYTES];
	int e = 0;

	if (cache_path(t, mode, path, sizeof(path)) || make_dir())
		return -ENOENT;
	root = json_object();
	arr = json_array();
	json_object_set_new(root, "format", json_integer(CACHE_FORMAT));
	json_object_set_new(root, "build_id", json_string(elf_image__build_id(t->img)));
	for (size_t i = 0; i < plan->n; i++) {
		const struct probe_spec *ps = &plan->v[i];
		json_t *o = json_object();

		if (elf_image__read(t->img, ps->vaddr, b, sizeof(b))) {
			json_decref(o);
			json_decref(arr);
			json_decref(root);
			return -EIO;
		}
		hex(b, sizeof(b), code);
		json_object_set_new(o, "prog", json_integer(ps->prog));
		json_object_set_new(o, "func", json_integer(ps->func));
		json_object_set_new(o, "inlined", json_boolean(ps->inlined));
		json_object_set_new(o, "symbol", json_string(ps->symbol));
		json_object_set_new(o, "caller", json_string(ps->caller));
		json_object_set_new(o, "site", json_integer((json_int_t)ps->site_vaddr));
		json_object_set_new(o, "vaddr", json_integer((json_int_t)ps->vaddr));
		json_object_set_new(o, "offset", json_integer((json_int_t)ps->offset));
		json_object_set_new(o, "cookie", json_integer((json_int_t)ps->cookie));
		json_object_set_new(o, "code", json_string(code));
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "probes", arr);
	if (l)
		json_object_set_new(root, "gil_layout", layout_json(l));

	e = write_atomic(path, root);
	json_decref(root);
	return e;
}

static int spec_from_json(struct py_target *t, json_t *o, struct probe_spec *ps)
{
	json_t *v;
	const char *s;
	uint8_t b[CODE_BYTES];
	char code[2 * CODE_BYTES + 1];

	memset(ps, 0, sizeof(*ps));
#define INT(key, dst) if (!json_is_integer(v = json_object_get(o, key))) return -EINVAL; \
	dst = json_integer_value(v);
	INT("prog", ps->prog);
	INT("func", ps->func);
	INT("site", ps->site_vaddr);
	INT("vaddr", ps->vaddr);
	INT("offset", ps->offset);
	INT("cookie", ps->cookie);
#undef INT
	if (ps->prog > PROG_CWAKE || ps->func < 0 || ps->func > 1)
		return -EINVAL;
	ps->inlined = json_is_true(json_object_get(o, "inlined"));
	if (!(s = json_string_value(json_object_get(o, "symbol"))))
		return -EINVAL;
	snprintf(ps->symbol, sizeof(ps->symbol), "%s", s);
	if (!(s = json_string_value(json_object_get(o, "caller"))))
		return -EINVAL;
	snprintf(ps->caller, sizeof(ps->caller), "%s", s);
	/* The binary must still have these bytes where the probe goes, and
	 * the offset must still be that address's. */
	s = json_string_value(json_object_get(o, "code"));
	if (!s || elf_image__read(t->img, ps->vaddr, b, sizeof(b)))
		return -EINVAL;
	hex(b, sizeof(b), code);
	if (strcmp(code, s))
		return -ESTALE;
	{
		uint64_t off;

		if (elf_image__vaddr_to_offset(t->img, ps->vaddr, &off) ||
		    off != ps->offset)
			return -ESTALE;
	}
	return 0;
}

int attach_cache__load(struct py_target *t, int mode,
		       struct probe_plan *plan, struct gil_layout *l,
		       bool *have_layout)
{
	char path[PATH_MAX];
	json_t *root, *arr, *lj;
	size_t n;
	int e = 0;

	memset(plan, 0, sizeof(*plan));
	*have_layout = false;
	if (cache_path(t, mode, path, sizeof(path)))
		return -ENOENT;
	root = json_load_file(path, 0, NULL);
	if (!root)
		return -ENOENT;
	arr = json_object_get(root, "probes");
	if (json_integer_value(json_object_get(root, "format")) != CACHE_FORMAT ||
	    !json_is_array(arr) || !(n = json_array_size(arr)) || n > 4096 ||
	    strcmp(json_string_value(json_object_get(root, "build_id")) ?: "",
		   elf_image__build_id(t->img))) {
		json_decref(root);
		return -ENOENT;
	}
	plan->v = calloc(n, sizeof(*plan->v));
	if (!plan->v) {
		json_decref(root);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !e; i++)
		e = spec_from_json(t, json_array_get(arr, i), &plan->v[i]);
	plan->n = n;
	lj = json_object_get(root, "gil_layout");
	if (!e && lj && layout_from_json(lj, l) == 0)
		*have_layout = true;
	json_decref(root);
	if (e) {
		probe_plan__free(plan);
		return -ENOENT;
	}
	return 0;
}

/* ---- Python frame layouts (--stacks) ----------------------------------- */

#define FRAMES_KEY 99 /* a cache file of its own, whatever the plan's mode */

int attach_cache__load_frames(struct py_target *t, struct gt_py_frame_layout *l)
{
	char path[PATH_MAX];
	struct gt_py_frame_layout v;
	const char *h;
	json_t *root;
	int e = -ENOENT;

	if (cache_path(t, FRAMES_KEY, path, sizeof(path)))
		return -ENOENT;
	root = json_load_file(path, 0, NULL);
	if (!root)
		return -ENOENT;
	h = json_string_value(json_object_get(root, "frame_layout"));
	if (json_integer_value(json_object_get(root, "format")) == CACHE_FORMAT &&
	    !strcmp(json_string_value(json_object_get(root, "build_id")) ?: "",
		    elf_image__build_id(t->img)) &&
	    h && strlen(h) == 2 * sizeof(v) && unhex(h, (uint8_t *)&v, sizeof(v)) == 0 &&
	    v.py_version == (uint32_t)(t->major << 8 | t->minor) &&
	    v.fr_span >= 8 && v.fr_span <= 256) {
		*l = v;
		e = 0;
	}
	json_decref(root);
	return e;
}

int attach_cache__store_frames(struct py_target *t,
			       const struct gt_py_frame_layout *l)
{
	char path[PATH_MAX], h[2 * sizeof(*l) + 1];
	json_t *root;
	int e;

	if (cache_path(t, FRAMES_KEY, path, sizeof(path)) || make_dir())
		return -ENOENT;
	hex((const uint8_t *)l, sizeof(*l), h);
	root = json_object();
	json_object_set_new(root, "format", json_integer(CACHE_FORMAT));
	json_object_set_new(root, "build_id", json_string(elf_image__build_id(t->img)));
	json_object_set_new(root, "frame_layout", json_string(h));
	e = write_atomic(path, root);
	json_decref(root);
	return e;
}
