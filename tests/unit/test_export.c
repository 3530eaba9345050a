// SPDX-License-Identifier: MIT
/*
 * test_export.c - unit tests of the stack exporters (export_pprof.c,
 * export_folded.c) on a model built by hand: four threads (one with ';'
 * in its name, one idle), Python frames (two functions named "run" in
 * different files, one function at two lines, a name with ';'), a native
 * frame and marks, stacks waited and held with.
 *
 * pprof: the profile is gunzipped and decoded back with the protobuf-c
 * code generated from pprof's profile.proto: sample types, string table,
 * per-sample values against the model's weights, leaf-first locations,
 * labels, functions, mappings. When `go` is installed, `go tool pprof
 * -top` must report the same totals and `-traces` the same leaf and
 * labels. Folded: the sum of the values is the total within rounding,
 * ';' is replaced, the root frame is "name-tid". The model's indexes
 * (model_stacks.c): enough frames, stacks, aliases and weights to rebuild
 * each several times, every one found again, in a copy too.
 *
 * `test_export --sample FILE` writes the sample's pprof profile to FILE.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>
#include "export.h"
#include "model.h"
#include "model_stacks.h"
#include "profile.pb-c.h"
#include "report.h"
#include "unit_helpers.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (100 * SEC)
#define LEN (10 * SEC)

typedef Perftools__Profiles__Profile PProfile;

static char tmpdir[] = "/tmp/gt-test-export-XXXXXX";

/* ---- the sample model -------------------------------------------------- */

enum { F_MAIN, F_RUN42, F_RUN50, F_OTHER, F_SEMI, F_NATIVE, F_TRUNC,
       F_UNKNOWN, NF };

static const struct {
	enum model_frame_kind kind;
	const char *function, *file;
	int line;
	const char *module;
	const char *pprof_name; /* the Function name export_pprof gives */
} frames[NF] = {
	[F_MAIN] = { MF_PYTHON, "<module>", "/srv/app/main.py", 10, "", "main:<module>" },
	[F_RUN42] = { MF_PYTHON, "Worker.run", "/srv/app/pipeline.py", 42, "", "pipeline:Worker.run" },
	[F_RUN50] = { MF_PYTHON, "Worker.run", "/srv/app/pipeline.py", 50, "", "pipeline:Worker.run" },
	[F_OTHER] = { MF_PYTHON, "Worker.run", "/srv/app/other.py", 7, "", "other:Worker.run" },
	[F_SEMI] = { MF_PYTHON, "a;b", "/srv/app/semi.py", 3, "", "semi:a;b" },
	[F_NATIVE] = { MF_NATIVE, "take_gil", "", 0, "/usr/lib/libpython3.12.so.1.0",
		       "take_gil [libpython3.12.so.1.0]" },
	[F_TRUNC] = { MF_MARK, MS_TRUNCATED, "", 0, "", MS_TRUNCATED },
	[F_UNKNOWN] = { MF_MARK, MS_UNKNOWN, "", 0, "", MS_UNKNOWN },
};

/* Stacks, root first. */
#define NSTK 4
static const uint32_t stk_frames[NSTK][4] = {
	{ F_MAIN, F_RUN42 },
	{ F_MAIN, F_RUN50, F_NATIVE },
	{ F_TRUNC, F_OTHER },
	{ F_MAIN, F_SEMI, F_UNKNOWN },
};
static const uint32_t stk_n[NSTK] = { 2, 3, 2, 3 };

static const struct {
	uint32_t tid;
	const char *name;
} threads[] = {
	{ 100, "MainThread" },
	{ 101, "worker;1" },
	{ 102, "idle" },
	{ 103, "holder" },
};
#define NTH (sizeof(threads) / sizeof(threads[0]))

static const struct {
	uint32_t tid, kind, stack;
	uint64_t count, ns;
} weights[] = {
	{ 100, GT_W_WAIT, 0, 3, 3000123 },
	{ 100, GT_W_HOLD, 0, 5, 7000000 },
	{ 100, GT_W_HOLD, 1, 1, 999 },
	{ 101, GT_W_WAIT, 1, 10, 12345678 },
	{ 101, GT_W_WAIT, 3, 2, 1500 },
	{ 101, GT_W_HOLD, 2, 4, 4000400 },
	{ 103, GT_W_HOLD, 3, 1, 1000000 },
	{ 101, GT_W_WAIT, 1, 1, 1000 }, /* added to the same weight */
};
#define NW (sizeof(weights) / sizeof(weights[0]))

static void sample_model(struct model *m, bool stacks)
{
	struct gt_thread k;

	model__init(m);
	m->pid = 4242;
	snprintf(m->exe, sizeof(m->exe), "/root/.pyenv/versions/3.12.1/bin/python3.12");
	snprintf(m->python_version, sizeof(m->python_version), "3.12.1");
	m->t0_ns = T0;
	for (size_t i = 0; i < NTH; i++) {
		memset(&k, 0, sizeof(k));
		k.tid = threads[i].tid;
		k.state = GT_RUNNING;
		k.first_seen_ns = T0;
		snprintf(k.comm, sizeof(k.comm), "%s", threads[i].name);
		assert_non_null(model__put_thread(m, &k, false));
	}
	model__close(m, T0 + LEN);
	if (!stacks)
		return;
	m->stacks = model_stacks__new();
	assert_non_null(m->stacks);
	for (int i = 0; i < NF; i++)
		assert_int_equal(model_stacks__frame(m->stacks, frames[i].kind,
						     frames[i].function, frames[i].file,
						     frames[i].line, frames[i].module), i);
	for (int i = 0; i < NSTK; i++)
		assert_int_equal(model_stacks__add(m->stacks, 0x1000 + i, 0,
						   stk_frames[i], stk_n[i]), i);
	for (size_t i = 0; i < NW; i++)
		assert_int_equal(model_stacks__add_weight(m->stacks, weights[i].tid, T0,
							  weights[i].kind, weights[i].stack,
							  weights[i].count, weights[i].ns), 0);
}

/* Sum of the sample's weights of @kind for @tid (0: all) and @stack (-1: all). */
static void weight_sum(uint32_t tid, uint32_t kind, int stack, uint64_t *count,
		       uint64_t *ns)
{
	*count = *ns = 0;
	for (size_t i = 0; i < NW; i++)
		if ((!tid || weights[i].tid == tid) && weights[i].kind == kind &&
		    (stack < 0 || (int)weights[i].stack == stack)) {
			*count += weights[i].count;
			*ns += weights[i].ns;
		}
}

/* ---- reading a profile back --------------------------------------------- */

static char *path_in_tmp(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static int export_to(const char *path, const struct model *m,
		     const struct report_opts *o, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	int rc;

	assert_non_null(f);
	rc = export_pprof(f, m, o, err, errlen);
	assert_int_equal(fclose(f), 0);
	return rc;
}

static PProfile *load_profile(const char *path)
{
	size_t len = 0, cap = 1 << 16;
	unsigned char magic[2], *buf = malloc(cap);
	PProfile *p;
	FILE *f;
	gzFile gz;
	int r;

	assert_non_null(buf);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(magic, 1, 2, f), 2);
	fclose(f);
	assert_int_equal(magic[0], 0x1f); /* gzip */
	assert_int_equal(magic[1], 0x8b);
	gz = gzopen(path, "rb");
	assert_non_null(gz);
	while ((r = gzread(gz, buf + len, (unsigned)(cap - len))) > 0) {
		len += (size_t)r;
		if (len == cap) {
			buf = realloc(buf, cap *= 2);
			assert_non_null(buf);
		}
	}
	assert_int_equal(r, 0);
	assert_int_equal(gzclose(gz), Z_OK);
	p = perftools__profiles__profile__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(p);
	return p;
}

static const char *str(const PProfile *p, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < p->n_string_table);
	return p->string_table[i];
}

static const Perftools__Profiles__Location *loc(const PProfile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	fail_msg("location %" PRIu64 " missing", id);
	return NULL;
}

static const Perftools__Profiles__Function *func(const PProfile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	fail_msg("function %" PRIu64 " missing", id);
	return NULL;
}

static const Perftools__Profiles__Mapping *mapping(const PProfile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_mapping; i++)
		if (p->mapping[i]->id == id)
			return p->mapping[i];
	fail_msg("mapping %" PRIu64 " missing", id);
	return NULL;
}

/* The model frame a location stands for (by function, file and line). */
static int frame_of(const PProfile *p, const Perftools__Profiles__Location *l)
{
	const Perftools__Profiles__Function *fn;

	assert_int_equal(l->n_line, 1);
	fn = func(p, l->line[0]->function_id);
	for (int i = 0; i < NF; i++)
		if (!strcmp(str(p, fn->name), frames[i].pprof_name) &&
		    !strcmp(str(p, fn->filename), frames[i].file) &&
		    l->line[0]->line == frames[i].line)
			return i;
	fail_msg("location %" PRIu64 ": %s unknown", l->id, str(p, fn->name));
	return -1;
}

/* The model stack of a sample: its locations read leaf first. */
static int stack_of(const PProfile *p, const Perftools__Profiles__Sample *s)
{
	for (int i = 0; i < NSTK; i++) {
		bool same = s->n_location_id == stk_n[i];

		for (size_t j = 0; same && j < s->n_location_id; j++)
			same = frame_of(p, loc(p, s->location_id[j])) ==
			       (int)stk_frames[i][stk_n[i] - 1 - j];
		if (same)
			return i;
	}
	fail_msg("a sample's stack is none of the model's");
	return -1;
}

static int64_t label_num(const PProfile *p, const Perftools__Profiles__Sample *s,
			 const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(str(p, s->label[i]->key), key))
			return s->label[i]->num;
	fail_msg("label %s missing", key);
	return -1;
}

static const char *label_str(const PProfile *p,
			     const Perftools__Profiles__Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(str(p, s->label[i]->key), key))
			return str(p, s->label[i]->str);
	fail_msg("label %s missing", key);
	return NULL;
}

static const char *thread_name(uint32_t tid)
{
	for (size_t i = 0; i < NTH; i++)
		if (threads[i].tid == tid)
			return threads[i].name;
	return NULL;
}

/* Every sample against the weights; returns how many samples of @tid
 * (0: all) the weights call for. */
static size_t expected_samples(uint32_t only)
{
	bool seen[NTH][NSTK] = { { false } };
	size_t n = 0;

	for (size_t i = 0; i < NW; i++)
		for (size_t t = 0; t < NTH; t++)
			if (threads[t].tid == weights[i].tid &&
			    (!only || only == weights[i].tid) &&
			    !seen[t][weights[i].stack]) {
				seen[t][weights[i].stack] = true;
				n++;
			}
	return n;
}

static void check_samples(const PProfile *p, uint32_t only)
{
	uint64_t tot[4] = { 0 }, c, ns;

	assert_int_equal(p->n_sample, expected_samples(only));
	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		uint32_t tid = (uint32_t)label_num(p, s, "tid");
		int st = stack_of(p, s);

		if (only)
			assert_int_equal(tid, only);
		assert_string_equal(label_str(p, s, "thread"), thread_name(tid));
		assert_int_equal(s->n_value, 4);
		weight_sum(tid, GT_W_WAIT, st, &c, &ns);
		assert_int_equal(s->value[0], c);
		assert_int_equal(s->value[1], ns);
		weight_sum(tid, GT_W_HOLD, st, &c, &ns);
		assert_int_equal(s->value[2], c);
		assert_int_equal(s->value[3], ns);
		for (int k = 0; k < 4; k++)
			tot[k] += (uint64_t)s->value[k];
	}
	weight_sum(only, GT_W_WAIT, -1, &c, &ns);
	assert_int_equal(tot[0], c);
	assert_int_equal(tot[1], ns);
	weight_sum(only, GT_W_HOLD, -1, &c, &ns);
	assert_int_equal(tot[2], c);
	assert_int_equal(tot[3], ns);
}

/* ---- `go tool pprof` ------------------------------------------------------ */

static bool have_go(void)
{
	return access("/usr/bin/go", X_OK) == 0 || access("/usr/local/go/bin/go", X_OK) == 0;
}

/* `go tool pprof ARGS FILE` with a private HOME and build cache, offline. */
static char *go_pprof(const char *args, const char *file)
{
	return run("cd %s && HOME=%s GOCACHE=%s/gocache GOFLAGS=-mod=mod "
		   "GOPROXY=off PPROF_TMPDIR=%s PATH=/usr/local/go/bin:$PATH "
		   "go tool pprof %s %s 2>&1", tmpdir, tmpdir, tmpdir, tmpdir,
		   args, file);
}

/* The total of "Showing nodes accounting for X, 100% of Xns total". */
static uint64_t top_total(const char *out)
{
	const char *s = strstr(out, "% of ");
	unsigned long long v;

	if (!s || sscanf(s, "%% of %lluns total", &v) != 1)
		fail_msg("no total in go tool pprof's output:\n%s", out);
	return v;
}

/* ---- tests -------------------------------------------------------------- */

static void test_pprof_profile(void **state)
{
	char err[256] = "", *path = path_in_tmp("all.pb.gz");
	const Perftools__Profiles__Function *f42 = NULL, *f50 = NULL, *fo = NULL;
	const char *types[4][2] = { { "waits", "count" }, { "wait", "nanoseconds" },
				    { "holds", "count" }, { "hold", "nanoseconds" } };
	struct model m;
	PProfile *p;

	sample_model(&m, true);
	assert_int_equal(export_to(path, &m, NULL, err, sizeof(err)), 0);
	p = load_profile(path);

	assert_true(p->n_string_table > 0);
	assert_string_equal(p->string_table[0], "");
	assert_int_equal(p->n_sample_type, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(str(p, p->sample_type[i]->type), types[i][0]);
		assert_string_equal(str(p, p->sample_type[i]->unit), types[i][1]);
	}
	assert_string_equal(str(p, p->default_sample_type), "wait");
	assert_non_null(p->period_type);
	assert_string_equal(str(p, p->period_type->type), "wait");
	assert_string_equal(str(p, p->period_type->unit), "nanoseconds");
	assert_int_equal(p->period, 1);
	assert_int_equal(p->duration_nanos, LEN);
	assert_int_equal(p->time_nanos, 0); /* t_end is not "just now" */
	assert_true(p->n_comment >= 1);
	assert_non_null(strstr(str(p, p->comment[0]), "PID 4242"));

	check_samples(p, 0);

	/* One location per frame used, one function per function. */
	assert_int_equal(p->n_location, NF);
	assert_int_equal(p->n_function, NF - 1);
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];
		int fi = frame_of(p, l);
		const Perftools__Profiles__Function *fn = func(p, l->line[0]->function_id);

		assert_true(l->id > 0);
		if (fi == F_RUN42)
			f42 = fn;
		if (fi == F_RUN50)
			f50 = fn;
		if (fi == F_OTHER)
			fo = fn;
		if (fi == F_NATIVE) {
			const Perftools__Profiles__Mapping *mp = mapping(p, l->mapping_id);

			assert_string_equal(str(p, mp->filename), frames[F_NATIVE].module);
			assert_true(mp->has_functions);
			assert_string_equal(str(p, fn->system_name), "take_gil");
		} else {
			assert_int_equal(l->mapping_id, 0);
		}
		if (frames[fi].kind == MF_PYTHON)
			assert_string_equal(str(p, fn->system_name), frames[fi].function);
	}
	assert_true(f42 && f50 && fo);
	assert_ptr_equal(f42, f50);      /* one function, two lines */
	assert_ptr_not_equal(f42, fo);   /* same name, other file */
	/* Mapping 1: the executable (pprof's "File:"). */
	assert_true(p->n_mapping >= 2);
	assert_string_equal(str(p, mapping(p, 1)->filename), m.exe);

	perftools__profiles__profile__free_unpacked(p, NULL);
	model__free(&m);
	free(path);
}

static void test_pprof_tid_filter(void **state)
{
	char err[256] = "", *path = path_in_tmp("tid.pb.gz");
	pid_t tids[] = { 101 };
	struct report_opts o = { .tids = tids, .ntids = 1 };
	struct model m;
	PProfile *p;

	sample_model(&m, true);
	assert_int_equal(export_to(path, &m, &o, err, sizeof(err)), 0);
	p = load_profile(path);
	check_samples(p, 101);
	/* Only the frames thread 101's stacks use. */
	assert_int_equal(p->n_location, 7);
	perftools__profiles__profile__free_unpacked(p, NULL);
	model__free(&m);
	free(path);
}

static void test_pprof_empty_and_errors(void **state)
{
	char err[256] = "", *path = path_in_tmp("empty.pb.gz");
	struct model m;
	PProfile *p;
	FILE *f;

	/* No stacks at all. */
	sample_model(&m, false);
	assert_int_equal(export_to(path, &m, NULL, err, sizeof(err)), -ENODATA);
	assert_string_equal(err, "giltrace: this trace has no stacks: record it "
			    "with --stacks");
	/* Stacks captured, none weighed: a valid profile without samples. */
	m.stacks = model_stacks__new();
	assert_non_null(m.stacks);
	assert_int_equal(export_to(path, &m, NULL, err, sizeof(err)), 0);
	p = load_profile(path);
	assert_int_equal(p->n_sample, 0);
	assert_int_equal(p->n_sample_type, 4);
	perftools__profiles__profile__free_unpacked(p, NULL);
	model__free(&m);

	/* A full disk: -EIO and one line. */
	f = fopen("/dev/full", "w");
	if (f) {
		sample_model(&m, true);
		err[0] = '\0';
		assert_int_equal(export_pprof(f, &m, NULL, err, sizeof(err)), -EIO);
		assert_non_null(strstr(err, "cannot write the pprof profile"));
		assert_null(strchr(err, '\n'));
		fclose(f);
		model__free(&m);
	}
	free(path);
}

/* Out-of-range frame indices (a damaged model) are left out, not crashed on. */
static void test_pprof_bad_frame_index(void **state)
{
	char err[256] = "", *path = path_in_tmp("bad.pb.gz");
	struct model m;
	PProfile *p;

	sample_model(&m, true);
	m.stacks->stacks[1].frames[1] = 9999;
	assert_int_equal(export_to(path, &m, NULL, err, sizeof(err)), 0);
	p = load_profile(path);
	for (size_t i = 0; i < p->n_sample; i++)
		for (size_t j = 0; j < p->sample[i]->n_location_id; j++)
			loc(p, p->sample[i]->location_id[j]);
	perftools__profiles__profile__free_unpacked(p, NULL);
	model__free(&m);
	free(path);
}

static void test_pprof_go_tool(void **state)
{
	char err[256] = "", *path = path_in_tmp("go.pb.gz"), *out;
	uint64_t c, ns;
	struct model m;

	if (!have_go()) {
		print_message("[  SKIP    ] go tool pprof: go not installed\n");
		free(path);
		return;
	}
	sample_model(&m, true);
	assert_int_equal(export_to(path, &m, NULL, err, sizeof(err)), 0);

	out = go_pprof("-top -unit=ns -sample_index=wait", path);
	assert_non_null(out);
	weight_sum(0, GT_W_WAIT, -1, &c, &ns);
	assert_int_equal(top_total(out), ns);
	assert_non_null(strstr(out, "File: python3.12"));
	assert_non_null(strstr(out, "Type: wait"));
	free(out);

	out = go_pprof("-top -unit=ns -sample_index=hold", path);
	assert_non_null(out);
	weight_sum(0, GT_W_HOLD, -1, &c, &ns);
	assert_int_equal(top_total(out), ns);
	free(out);

	/* Default sample type: wait. */
	out = go_pprof("-top -unit=ns", path);
	assert_non_null(out);
	weight_sum(0, GT_W_WAIT, -1, &c, &ns);
	assert_int_equal(top_total(out), ns);
	free(out);

	/* -traces lists each sample leaf first, with its labels: thread 101's
	 * stack 1 (12346678 ns) has take_gil as its leaf. */
	out = go_pprof("-traces -sample_index=wait -tagfocus=tid=101", path);
	assert_non_null(out);
	assert_non_null(strstr(out, "worker;1"));
	assert_null(strstr(out, "MainThread"));
	{
		const char *s = strstr(out, "take_gil [libpython3.12.so.1.0]");
		const char *r = strstr(out, "pipeline:Worker.run");

		if (!s || !r || s > r)
			fail_msg("take_gil is not the leaf:\n%s", out);
	}
	free(out);
	model__free(&m);
	free(path);
}

/* ---- folded ----------------------------------------------------------- */

static char *folded(const struct model *m, enum export_weight w,
		    const struct report_opts *o)
{
	char err[256] = "", *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(export_folded(f, m, w, o, err, sizeof(err)), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Sum of a folded output's values; checks every line's form. */
static uint64_t folded_sum(const char *text, size_t *lines)
{
	uint64_t sum = 0;
	char *copy = strdup(text), *save, *line;

	assert_non_null(copy);
	*lines = 0;
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(line, ' '), *semi = strchr(line, ';');
		char root[128];
		bool ok = false;

		assert_non_null(sp);
		assert_non_null(semi);
		snprintf(root, sizeof(root), "%.*s", (int)(semi - line), line);
		for (size_t t = 0; t < NTH; t++) {
			char want[128], *q;

			snprintf(want, sizeof(want), "%s-%u", threads[t].name,
				 threads[t].tid);
			for (q = want; *q; q++)
				if (*q == ';')
					*q = ',';
			ok |= !strcmp(root, want);
		}
		if (!ok)
			fail_msg("root frame %s is no thread's name-tid", root);
		sum += strtoull(sp + 1, NULL, 10);
		(*lines)++;
	}
	free(copy);
	return sum;
}

static void test_folded(void **state)
{
	uint64_t c, ns, sum;
	struct model m;
	size_t lines;
	char *out;

	sample_model(&m, true);

	out = folded(&m, EXPORT_WAIT, NULL);
	sum = folded_sum(out, &lines);
	weight_sum(0, GT_W_WAIT, -1, &c, &ns);
	/* Each line rounds to the nearest microsecond. */
	assert_true(sum * 1000 + lines * 500 >= ns && sum * 1000 <= ns + lines * 500);
	assert_non_null(strstr(out, "worker,1-101;main:<module> (/srv/app/main.py:10);"
			       "semi:a,b (/srv/app/semi.py:3);[unknown] 2\n"));
	assert_non_null(strstr(out, "MainThread-100;main:<module> (/srv/app/main.py:10);"
			       "pipeline:Worker.run (/srv/app/pipeline.py:42) 3000\n"));
	assert_null(strstr(out, "idle-102"));
	free(out);

	out = folded(&m, EXPORT_HOLD, NULL);
	sum = folded_sum(out, &lines);
	weight_sum(0, GT_W_HOLD, -1, &c, &ns);
	assert_true(sum * 1000 + lines * 500 >= ns && sum * 1000 <= ns + lines * 500);
	/* 999 ns rounds to 1 us; the native frame keeps its module. */
	assert_non_null(strstr(out, "take_gil [libpython3.12.so.1.0] 1\n"));
	assert_non_null(strstr(out, "holder-103;"));
	free(out);

	out = folded(&m, EXPORT_COUNT, NULL);
	sum = folded_sum(out, &lines);
	weight_sum(0, GT_W_WAIT, -1, &c, &ns);
	assert_int_equal(sum, c);
	free(out);

	model__free(&m);
}

/* ---- the model's indexes (model_stacks.c) ------------------------------ */

enum { IX_FRAMES = 3000, IX_STACKS = 6000, IX_WEIGHTS = 20000 };

static uint64_t ix_id(uint32_t i)	/* distinct, spread */
{
	return (i + 1) * 0x9e3779b97f4a7c15ULL;
}

/* Frames, stacks, aliases and weights enough to rebuild every index
 * several times (it starts at 256 slots), then each found where it was
 * put, and the same in a copy and after clear_weights. */
static void test_stacks_indexes(void **state)
{
	struct model_stacks *ms = model_stacks__new(), *cp;
	static uint64_t cnt[IX_WEIGHTS], tns[IX_WEIGHTS];
	char fn[32];
	uint32_t fr[8];

	assert_non_null(ms);
	assert_int_equal(model_stacks__find(ms, 1), -1);
	assert_int_equal(model_stacks__find(NULL, 1), -1);
	for (int pass = 0; pass < 2; pass++)	/* the second one interns */
		for (int i = 0; i < IX_FRAMES; i++) {
			snprintf(fn, sizeof(fn), "f%d", i);
			assert_int_equal(model_stacks__frame(ms, i % 2 ? MF_NATIVE : MF_PYTHON,
							     fn, i % 3 ? "/a.py" : NULL,
							     i % 7, NULL), i);
		}
	assert_int_equal(model_stacks__frame(ms, MF_PYTHON, "f0", "", 0, ""), 0);
	assert_int_equal(ms->nframes, IX_FRAMES);

	/* Stack i: frames (i % 3000, i / 3000, ...); every third id an alias
	 * of stack i / 3 (its frames, a new id). */
	for (uint32_t i = 0, n = 0; i < IX_STACKS; i++) {
		uint32_t k = i % 3 == 2 ? i / 3 : n;

		if (i % 3 == 2) {
			const struct model_stack *s = &ms->stacks[k];

			assert_int_equal(model_stacks__add(ms, ix_id(i), s->flags,
							   s->frames, s->nframes), k);
			continue;
		}
		fr[0] = n % IX_FRAMES;
		fr[1] = n / IX_FRAMES;
		for (uint32_t j = 2; j < 2 + n % 6; j++)
			fr[j] = (n * j) % IX_FRAMES;
		assert_int_equal(model_stacks__add(ms, ix_id(i), n % 5 == 0,
						   fr, 2 + n % 6), n);
		n++;
	}
	assert_int_equal(ms->nstacks, IX_STACKS / 3 * 2);
	assert_int_equal(ms->naliases, IX_STACKS / 3);
	for (uint32_t i = 0; i < IX_STACKS; i++) {
		int want = i % 3 == 2 ? (int)(i / 3) : (int)(i - i / 3);

		assert_int_equal(model_stacks__find(ms, ix_id(i)), want);
		/* Known id: its index, whatever the frames. */
		assert_int_equal(model_stacks__add(ms, ix_id(i), 0, NULL, 0), want);
	}
	assert_int_equal(model_stacks__find(ms, ix_id(IX_STACKS)), -1);
	assert_int_equal(ms->nstacks + ms->naliases, IX_STACKS);
	fr[0] = IX_FRAMES;
	assert_int_equal(model_stacks__add(ms, 7, 0, fr, 1), -EINVAL);
	assert_int_equal(model_stacks__add_weight(ms, 1, 0, GT_W_WAIT,
						  (uint32_t)ms->nstacks, 1, 1), -EINVAL);
	assert_int_equal(model_stacks__add_weight(ms, 1, 0, GT_W_HOLD + 1, 0, 1, 1),
			 -EINVAL);

	/* Weight k: thread (k % 50, first seen k % 50 * 3), kind k / 50 % 2,
	 * stack k / 100; added three times, then cleared and added again. */
	for (int round = 0; round < 2; round++) {
		memset(cnt, 0, sizeof(cnt));
		memset(tns, 0, sizeof(tns));
		for (int rep = 0; rep < 3; rep++)
			for (uint32_t k = 0; k < IX_WEIGHTS; k++) {
				assert_int_equal(model_stacks__add_weight(ms, k % 50, k % 50 * 3,
									  k / 50 % 2, k / 100,
									  rep + 1, k + rep), 0);
				cnt[k] += rep + 1;
				tns[k] += k + rep;
			}
		assert_int_equal(ms->nw, IX_WEIGHTS);
		for (uint32_t k = 0; k < IX_WEIGHTS; k++) {
			const struct model_stack_weight *w = &ms->w[k];

			assert_int_equal(w->tid, k % 50);
			assert_int_equal(w->first_seen_ns, k % 50 * 3);
			assert_int_equal(w->kind, k / 50 % 2);
			assert_int_equal(w->stack, k / 100);
			assert_int_equal(w->count, cnt[k]);
			assert_int_equal(w->ns, tns[k]);
		}
		if (!round)
			model_stacks__clear_weights(ms);
	}

	cp = model_stacks__copy(ms);
	assert_non_null(cp);
	assert_int_equal(cp->nframes, ms->nframes);
	assert_int_equal(cp->nstacks, ms->nstacks);
	assert_int_equal(cp->naliases, ms->naliases);
	assert_int_equal(cp->nw, ms->nw);
	assert_int_equal(model_stacks__frame(cp, MF_NATIVE, "f2999", "/a.py", 3, ""),
			 2999);
	for (uint32_t i = 0; i < IX_STACKS; i++)
		assert_int_equal(model_stacks__find(cp, ix_id(i)),
				 model_stacks__find(ms, ix_id(i)));
	assert_memory_equal(cp->w, ms->w, ms->nw * sizeof(*ms->w));
	assert_int_equal(model_stacks__add_weight(cp, 49, 49 * 3, GT_W_HOLD,
						  IX_WEIGHTS / 100 - 1, 1, 1), 0);
	assert_int_equal(cp->nw, IX_WEIGHTS);
	model_stacks__free(cp);
	model_stacks__free(ms);
}

static int setup_tmp(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static int write_sample(const char *path)
{
	char err[256] = "";
	struct model m;
	FILE *f = fopen(path, "w");
	int rc;

	if (!f) {
		perror(path);
		return 1;
	}
	sample_model(&m, true);
	rc = export_pprof(f, &m, NULL, err, sizeof(err));
	if (rc)
		fprintf(stderr, "%s\n", err);
	model__free(&m);
	return fclose(f) || rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pprof_profile),
		cmocka_unit_test(test_pprof_tid_filter),
		cmocka_unit_test(test_pprof_empty_and_errors),
		cmocka_unit_test(test_pprof_bad_frame_index),
		cmocka_unit_test(test_pprof_go_tool),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_stacks_indexes),
	};

	if (argc == 3 && !strcmp(argv[1], "--sample"))
		return write_sample(argv[2]);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
