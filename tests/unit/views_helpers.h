/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the views' unit tests (test_views.c,
 * test_views_stacks.c): a hand-made sample (model + timeline) finished as
 * the collector and timeline.c would finish it, the views rendered into
 * strings or parsed JSON, fake page assets, and the files their --sample
 * mode writes.
 *
 * Include after <cmocka.h> and unit_helpers.h (the helpers assert with
 * cmocka; fake assets go to unit_tmpdir).
 */
#ifndef GILTRACE_VIEWS_HELPERS_H
#define GILTRACE_VIEWS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "model.h"
#include "timeline.h"

/*
 * Start a sample: @m as model_py312() in exact mode, @tl from @t0 with
 * @nthreads zeroed threads (4,000,000 cycles at most). Fill in the
 * threads' tids, names and cycles and tl->t_end, then views_sample_close().
 */
void views_sample_init(struct model *m, struct timeline *tl, pid_t pid,
		       bool library, uint64_t t0, size_t nthreads);

/*
 * Finish it as the collector and timeline.c would: each thread's wait and
 * hold sums and its model thread (open and abandoned intervals per the
 * cycles' flags), the holder switches of the holds in time order,
 * model__close() at tl->t_end, and who waited behind whom.
 */
void views_sample_close(struct model *m, struct timeline *tl);

/* Free @m and @tl, the threads' cycle arrays included. */
void views_sample_free(struct model *m, struct timeline *tl);

/* report_html() into a string (free it); its return in *@rc. */
char *render_html(const struct model *m, const struct timeline *tl,
		  const char *assets, int *rc, char *err, size_t errlen);

/* The page data: the JSON between <script type="application/json"
 * id="giltrace-data"> and </script>; fails the test if it does not parse. */
json_t *html_data(const char *html);

/* report_perfetto() parsed; fails the test if it fails or does not parse. */
json_t *render_perfetto(const struct model *m, const struct timeline *tl);

/* How often @needle occurs in @s (overlaps count). */
size_t count_of(const char *s, const char *needle);

/*
 * Fake page assets in unit_tmpdir/@sub, each file the given text: the
 * flame graph libraries (d3.min.js, d3-flamegraph.umd.min.js) only if
 * @d3 and @flame are not NULL. Returns the directory (a static buffer).
 */
const char *fake_assets(const char *sub, const char *echarts, const char *app,
			const char *css, const char *d3, const char *flame);

/*
 * --sample: @dir/@name.json (with blocked_by), @name.perfetto.json,
 * @name.txt (terminal report + 100-column timeline) when @text, and
 * @name.html (the default assets). 0, or 1 if any failed.
 */
int write_views(const char *dir, const char *name, const struct model *m,
		const struct timeline *tl, bool text);

#endif
