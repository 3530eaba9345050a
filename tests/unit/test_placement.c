/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of placement: the kernel's emulation rule on raw bytes, the
 * block analysis on a small shared library assembled here (each case is a
 * function whose expected answer is marked by a label), and every
 * interpreter installed on this machine (pyenv 3.6-3.13, Debian's
 * python3.11 and libpython3.11; absent ones are skipped with a reason).
 *
 * Everything placement says about a real binary is checked with binutils,
 * which shares no code with capstone: `nm -S` for function ranges and
 * `.cold` parts, `objdump -d` (from the start of the enclosing function)
 * for instruction boundaries, mnemonics, call names and branch targets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf_image.h"
#include "gil_sites.h"
#include "placement.h"
#include "unit_helpers.h"

#define DEBIAN_PY "/usr/bin/python3.11"
#define DEBIAN_LIBPY "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"

/* ---- shell helpers ----------------------------------------------------- */

static bool have(const char *tools)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "for t in %s; do command -v $t >/dev/null "
		 "|| exit 1; done", tools);
	return system(cmd) == 0;
}

/* ---- objdump --------------------------------------------------------------- */

struct od_insn {
	uint64_t addr;
	char prefixes[64];   /* objdump's prefix words ("data16 rex.W ") */
	char mn[32];
	char ops[192];
	bool flow;           /* ends a basic block: jumps, calls, ret, traps */
	bool has_target;
	uint64_t target;
};

struct od {
	struct od_insn *v;
	size_t n, cap;
};

static bool od_prefix_word(const char *w)
{
	static const char *const p[] = {
		"data16", "addr32", "bnd", "notrack", "lock", "rep", "repz",
		"repnz", "repe", "repne", "cs", "ds", "es", "ss", "fs", "gs",
		"xacquire", "xrelease",
	};
	size_t i;

	if (strncmp(w, "rex", 3) == 0)
		return true;
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (strcmp(w, p[i]) == 0)
			return true;
	return false;
}

static bool od_is_flow(const char *mn)
{
	return mn[0] == 'j' || strncmp(mn, "call", 4) == 0 ||
	       strncmp(mn, "loop", 4) == 0 || strncmp(mn, "ret", 3) == 0 ||
	       strcmp(mn, "hlt") == 0 || strncmp(mn, "ud", 2) == 0 ||
	       strncmp(mn, "int", 3) == 0 || strncmp(mn, "sys", 3) == 0 ||
	       strncmp(mn, "iret", 4) == 0;
}

/* Append objdump's instructions of [lo, hi) in @path. */
static void od_load(const char *path, uint64_t lo, uint64_t hi, struct od *o)
{
	char *out = run("objdump -d -w --no-show-raw-insn --start-address=0x%"
			PRIx64 " --stop-address=0x%" PRIx64 " '%s'", lo, hi, path);
	char *line, *save = NULL;

	assert_non_null(out);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct od_insn x = { 0 };
		char *p = line, *end, *w;

		while (*p == ' ')
			p++;
		x.addr = strtoull(p, &end, 16);
		if (end == p || *end != ':' || end[1] != '\t')
			continue;
		p = end + 2;
		for (;;) {
			while (*p == ' ')
				p++;
			w = p;
			while (*p && *p != ' ')
				p++;
			snprintf(x.mn, sizeof(x.mn), "%.*s", (int)(p - w), w);
			if (!od_prefix_word(x.mn) || !*p)
				break;
			{
				size_t l = strlen(x.prefixes);

				snprintf(x.prefixes + l, sizeof(x.prefixes) - l,
					 "%.31s ", x.mn);
			}
		}
		while (*p == ' ')
			p++;
		snprintf(x.ops, sizeof(x.ops), "%s", p);
		x.flow = od_is_flow(x.mn);
		if (x.flow && isxdigit((unsigned char)x.ops[0])) {
			x.target = strtoull(x.ops, &end, 16);
			x.has_target = end != x.ops;
		}
		if (o->n == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 1024;
			o->v = realloc(o->v, o->cap * sizeof(*o->v));
			assert_non_null(o->v);
		}
		o->v[o->n++] = x;
	}
	free(out);
}

static const struct od_insn *od_at(const struct od *o, uint64_t a)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].addr == a)
			return &o->v[i];
	return NULL;
}

/* The instruction after @a in address order (same range), or NULL. */
static const struct od_insn *od_next(const struct od *o, uint64_t a)
{
	const struct od_insn *best = NULL;
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].addr > a && (!best || o->v[i].addr < best->addr))
			best = &o->v[i];
	return best;
}

static bool od_target_in(const struct od *o, uint64_t lo, uint64_t hi)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].has_target && o->v[i].target > lo &&
		    o->v[i].target <= hi)
			return true;
	return false;
}

/* An emulated kind by objdump's reading: call/jmp/jcc with a direct
 * target, nop, push; and no prefix the kernel refuses. */
static bool od_emulated_kind(const struct od_insn *x)
{
	static const char *const bad[] = { "cs ", "ds ", "es ", "ss ", "lock ",
					   "notrack ", "data16 " };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strstr(x->prefixes, bad[i]))
			return false;
	if (strncmp(x->mn, "nop", 3) == 0 || strncmp(x->mn, "push", 4) == 0)
		return true;
	if (strcmp(x->mn, "xchg") == 0 && strcmp(x->ops, "%ax,%ax") == 0)
		return true;
	if (strncmp(x->mn, "call", 4) == 0 || x->mn[0] == 'j')
		return x->has_target && x->ops[0] != '*';
	return false;
}

/* "prefixes mnemonic operands", without objdump's "# comment" and with
 * the symbol part of a target shortened. */
static void od_text(const struct od_insn *x, char *buf, size_t len)
{
	char ops[64], tmp[160], *p;

	snprintf(ops, sizeof(ops), "%.63s", x->ops);
	p = strstr(ops, "#");
	if (p)
		*p = '\0';
	p = strchr(ops, '<');
	if (p && (p = strpbrk(p, "+>")) && *p != '>')
		strcpy(p, ">");
	for (p = ops + strlen(ops); p > ops && p[-1] == ' '; p--)
		p[-1] = '\0';
	snprintf(tmp, sizeof(tmp), "%.40s%.31s %.63s", x->prefixes, x->mn, ops);
	snprintf(buf, len, "%s", tmp);
}

/* ---- the rule on raw bytes ----------------------------------------------- */

struct byte_case {
	const char *name;
	uint8_t b[15];
	size_t len;
	enum placement_kind kind;
};

static void test_classify(void **state)
{
	static const struct byte_case cases[] = {
		{ "push %r15", { 0x41, 0x57 }, 2, PLACEMENT_EMULATED },
		{ "push %rbx", { 0x53 }, 1, PLACEMENT_EMULATED },
		{ "rex.W push %rax", { 0x48, 0x50 }, 2, PLACEMENT_SSTEP },
		{ "mov rip,%eax", { 0x8b, 0x05, 0x6d, 0x81, 0x55, 0x00 }, 6,
		  PLACEMENT_SSTEP },
		{ "mov 0x10(%rbp),%rax", { 0x48, 0x8b, 0x45, 0x10 }, 4,
		  PLACEMENT_SSTEP },
		{ "sub $8,%rsp", { 0x48, 0x83, 0xec, 0x08 }, 4, PLACEMENT_SSTEP },
		{ "test %eax,%eax", { 0x85, 0xc0 }, 2, PLACEMENT_SSTEP },
		{ "ret", { 0xc3 }, 1, PLACEMENT_SSTEP },
		{ "call rel32", { 0xe8, 0x3c, 0x29, 0xf2, 0xff }, 5,
		  PLACEMENT_EMULATED },
		{ "jmp rel8", { 0xeb, 0x10 }, 2, PLACEMENT_EMULATED },
		{ "jmp rel32", { 0xe9, 0x00, 0x01, 0x00, 0x00 }, 5,
		  PLACEMENT_EMULATED },
		{ "je rel8", { 0x74, 0x09 }, 2, PLACEMENT_EMULATED },
		{ "je rel32", { 0x0f, 0x84, 0xfb, 0xf5, 0xf2, 0xff }, 6,
		  PLACEMENT_EMULATED },
		{ "bnd jmp", { 0xf2, 0xe9, 0x00, 0x01, 0x00, 0x00 }, 6,
		  PLACEMENT_EMULATED },
		{ "data16 data16 rex.W call", { 0x66, 0x66, 0x48, 0xe8, 0xcc,
		  0x1e, 0xe2, 0xff }, 8, PLACEMENT_REJECTED },
		{ "ds je (branch hint)", { 0x3e, 0x74, 0x02 }, 3,
		  PLACEMENT_REJECTED },
		{ "notrack jmp *%rax", { 0x3e, 0xff, 0xe0 }, 3,
		  PLACEMENT_REJECTED },
		{ "call *%rax", { 0xff, 0xd0 }, 2, PLACEMENT_SSTEP },
		{ "call *GOT(%rip)", { 0xff, 0x15, 0x10, 0x00, 0x00, 0x00 }, 6,
		  PLACEMENT_SSTEP },
		{ "lock cmpxchg", { 0xf0, 0x0f, 0xb1, 0x0a }, 4,
		  PLACEMENT_REJECTED },
		{ "nop", { 0x90 }, 1, PLACEMENT_EMULATED },
		{ "xchg %ax,%ax", { 0x66, 0x90 }, 2, PLACEMENT_EMULATED },
		{ "xchg %r8,%rax", { 0x41, 0x90 }, 2, PLACEMENT_REJECTED },
		{ "pause", { 0xf3, 0x90 }, 2, PLACEMENT_SSTEP },
		{ "int3", { 0xcc }, 1, PLACEMENT_REJECTED },
		{ "syscall", { 0x0f, 0x05 }, 2, PLACEMENT_REJECTED },
		{ "ud2", { 0x0f, 0x0b }, 2, PLACEMENT_REJECTED },
		{ "endbr64", { 0xf3, 0x0f, 0x1e, 0xfa }, 4, PLACEMENT_SSTEP },
		{ "cs nopw (10)", { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 },
		  10, PLACEMENT_REJECTED },
		{ "nopw (9)", { 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 9,
		  PLACEMENT_SSTEP },
	};
	static const struct byte_case nops[] = {
		{ "nopl (3)", { 0x0f, 0x1f, 0x00 }, 3, 0 },
		{ "nopl (4)", { 0x0f, 0x1f, 0x40, 0x00 }, 4, 0 },
		{ "nopl (5)", { 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 5, 0 },
		{ "nopw (6)", { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 6, 0 },
		{ "nopl (7)", { 0x0f, 0x1f, 0x80, 0, 0, 0, 0 }, 7, 0 },
		{ "nopl (8)", { 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 8, 0 },
	};
	uint8_t buf[32];
	size_t i, len;

	(void)state;
	placement__set_kernel_version(6, 18);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum placement_kind k;
		char what[160];
		bool emu;

		memset(buf, 0xcc, sizeof(buf));   /* trailing bytes must not matter */
		memcpy(buf, cases[i].b, cases[i].len);
		assert_int_equal(placement__classify(buf, sizeof(buf), 0x1000, &k,
						     &len, what, sizeof(what)), 0);
		if (k != cases[i].kind || len != cases[i].len)
			fail_msg("%s: got %s, %zu bytes (%s); want %s, %zu bytes",
				 cases[i].name, placement_kind__name(k), len, what,
				 placement_kind__name(cases[i].kind), cases[i].len);
		assert_int_equal(placement__emulated(buf, sizeof(buf), 0x1000,
						     &emu, &len), 0);
		assert_int_equal(emu, cases[i].kind == PLACEMENT_EMULATED);
	}
	for (i = 0; i < sizeof(nops) / sizeof(nops[0]); i++) {
		bool emu;

		memset(buf, 0xcc, sizeof(buf));
		memcpy(buf, nops[i].b, nops[i].len);
		placement__set_kernel_version(6, 18);
		assert_int_equal(placement__emulated(buf, sizeof(buf), 0, &emu,
						     &len), 0);
		assert_int_equal(len, nops[i].len);
		if (!emu)
			fail_msg("%s: not emulated on 6.18", nops[i].name);
		placement__set_kernel_version(6, 15);
		assert_int_equal(placement__emulated(buf, sizeof(buf), 0, &emu,
						     &len), 0);
		if (emu)
			fail_msg("%s: emulated on 6.15", nops[i].name);
	}
	placement__set_kernel_version(0, 0);

	/* bad input */
	buf[0] = 0x0f;
	buf[1] = 0xff;
	assert_int_equal(placement__emulated(buf, 1, 0, &(bool){ 0 }, &len),
			 -EINVAL);
	assert_int_equal(placement__emulated(NULL, 4, 0, &(bool){ 0 }, &len),
			 -EINVAL);
}

/* ---- block analysis on an assembled library ------------------------------ */

/*
 * Each t_* function has its site at the function start (or at site_*),
 * and the expected probe address at exp_* ("keep" cases expect the site).
 */
static const char synth_asm[] =
	"	.data\n"
	"x_var:	.quad 0\n"
	"	.text\n"
	/* mov rip; test; je: move to the je */
	"	.globl t_simple\n	.type t_simple,@function\n"
	"t_simple:\n"
	"	movl x_var(%rip),%eax\n"
	"	testl %eax,%eax\n"
	"	.globl exp_simple\n"
	"exp_simple:\n"
	"	je 1f\n"
	"	nop\n"
	"1:	ret\n"
	"	.size t_simple,.-t_simple\n"
	/* emulated site: kept */
	"	.globl t_push\n	.type t_push,@function\n"
	"t_push:\n"
	"	pushq %rbx\n"
	"	popq %rbx\n"
	"	ret\n"
	"	.size t_push,.-t_push\n"
	/* a jump into the gap: keep */
	"	.globl t_target\n	.type t_target,@function\n"
	"t_target:\n"
	"	movl x_var(%rip),%eax\n"
	"2:	addl $1,%eax\n"
	"	jne 2b\n"
	"	ret\n"
	"	.size t_target,.-t_target\n"
	/* the site itself is a target (loop head): allowed */
	"	.globl t_loop\n	.type t_loop,@function\n"
	"t_loop:\n"
	"	pushq %rbx\n"
	"	.globl site_loop\n"
	"site_loop:\n"
	"	movl x_var(%rip),%eax\n"
	"	testl %eax,%eax\n"
	"	.globl exp_loop\n"
	"exp_loop:\n"
	"	jne site_loop\n"
	"	popq %rbx\n"
	"	ret\n"
	"	.size t_loop,.-t_loop\n"
	/* the block ends with ret: keep */
	"	.globl t_ret\n	.type t_ret,@function\n"
	"t_ret:\n"
	"	movl x_var(%rip),%eax\n"
	"	ret\n"
	"	.size t_ret,.-t_ret\n"
	/* the block ends with an indirect call: keep */
	"	.globl t_icall\n	.type t_icall,@function\n"
	"t_icall:\n"
	"	movq x_var(%rip),%rax\n"
	"	call *%rax\n"
	"	ret\n"
	"	.size t_icall,.-t_icall\n"
	/* first call of the block */
	"	.globl t_call\n	.type t_call,@function\n"
	"t_call:\n"
	"	movl x_var(%rip),%eax\n"
	"	movl %eax,%edi\n"
	"	.globl exp_call\n"
	"exp_call:\n"
	"	call t_simple\n"
	"	ret\n"
	"	.size t_call,.-t_call\n"
	/* 70 bytes of single-stepped code: too far, keep */
	"	.globl t_far\n	.type t_far,@function\n"
	"t_far:\n"
	"	movl x_var(%rip),%eax\n"
	"	.rept 14\n	movl $1,%eax\n	.endr\n"
	"	je 3f\n"
	"3:	ret\n"
	"	.size t_far,.-t_far\n"
	/* the .cold part jumps into the gap: keep */
	"	.globl t_cold\n	.type t_cold,@function\n"
	"t_cold:\n"
	"	movl x_var(%rip),%eax\n"
	"4:	addl $1,%eax\n"
	"	jne 5f\n"
	"5:	ret\n"
	"	.size t_cold,.-t_cold\n"
	"	.type t_cold.cold,@function\n"
	"t_cold.cold:\n"
	"	jmp 4b\n"
	"	.size t_cold.cold,.-t_cold.cold\n"
	/* a site in a .cold part, the hot parent jumps into the gap: keep */
	"	.globl t_hot2\n	.type t_hot2,@function\n"
	"t_hot2:\n"
	"	movl x_var(%rip),%eax\n"
	"	testl %eax,%eax\n"
	"	jne 10f\n"
	"	ret\n"
	"	.size t_hot2,.-t_hot2\n"
	"	.type t_hot2.cold,@function\n"
	"t_hot2.cold:\n"
	"	.globl site_cold2\n"
	"site_cold2:\n"
	"	movl x_var(%rip),%eax\n"
	"10:	addl $1,%eax\n"
	"	jne 11f\n"
	"11:	ret\n"
	"	.size t_hot2.cold,.-t_hot2.cold\n"
	/* a PIC jump table entry points into the gap: keep */
	"	.globl t_jt\n	.type t_jt,@function\n"
	"t_jt:\n"
	"	movl x_var(%rip),%eax\n"
	"6:	addl $1,%eax\n"
	"	cmpl $1,%eax\n"
	"	ja 7f\n"
	"	leaq jt_table(%rip),%rdx\n"
	"	movslq (%rdx,%rax,4),%rax\n"
	"	addq %rdx,%rax\n"
	"	jmp *%rax\n"
	"7:	ret\n"
	"	.size t_jt,.-t_jt\n"
	"	.section .rodata\n"
	"	.align 4\n"
	"jt_table:\n"
	"	.long 6b-jt_table, 7b-jt_table\n"
	"	.text\n"
	/* a local indirect jump without a table we can find: keep */
	"	.globl t_unk\n	.type t_unk,@function\n"
	"t_unk:\n"
	"	movl x_var(%rip),%eax\n"
	"	addl $1,%eax\n"
	"	je 8f\n"
	"	jmp *%rax\n"
	"8:	ret\n"
	"	.size t_unk,.-t_unk\n"
	/* a call with 0x66 prefixes is refused by the kernel: keep */
	"	.globl t_tls\n	.type t_tls,@function\n"
	"t_tls:\n"
	"	movl x_var(%rip),%eax\n"
	"	.byte 0x66,0x66,0x48,0xe8\n"
	"	.long 0\n"
	"	ret\n"
	"	.size t_tls,.-t_tls\n"
	/* a refused non-branch instruction is stepped over */
	"	.globl t_csnop\n	.type t_csnop,@function\n"
	"t_csnop:\n"
	"	movl x_var(%rip),%eax\n"
	"	.byte 0x66,0x2e,0x0f,0x1f,0x84,0,0,0,0,0\n"
	"	.globl exp_csnop\n"
	"exp_csnop:\n"
	"	jmp 9f\n"
	"9:	ret\n"
	"	.size t_csnop,.-t_csnop\n"
	/* a 5-byte nop: emulated from 6.16 on */
	"	.globl t_nop5\n	.type t_nop5,@function\n"
	"t_nop5:\n"
	"	movl x_var(%rip),%eax\n"
	"	.globl exp_nop5\n"
	"exp_nop5:\n"
	"	.byte 0x0f,0x1f,0x44,0,0\n"
	"	ret\n"
	"	.size t_nop5,.-t_nop5\n"
	/* take_gil-like calls */
	"	.type _PyThread_cond_timedwait,@function\n"
	"_PyThread_cond_timedwait:\n"
	"	xorl %eax,%eax\n"
	"	ret\n"
	"	.size _PyThread_cond_timedwait,.-_PyThread_cond_timedwait\n"
	"	.globl t_wait\n	.type t_wait,@function\n"
	"t_wait:\n"
	"	pushq %rbx\n"
	"	.globl call_w1\n"
	"call_w1:\n"
	"	call pthread_cond_timedwait@PLT\n"
	"	cmpl $110,%eax\n"
	"	.globl wake_w1\n"
	"wake_w1:\n"
	"	je 20f\n"
	"	.globl call_w2\n"
	"call_w2:\n"
	"	call *pthread_cond_timedwait@GOTPCREL(%rip)\n"
	"	.globl wake_w2\n"
	"wake_w2:\n"
	"	jmp 21f\n"
	"21:	movl x_var(%rip),%eax\n"
	"	.globl call_w3\n"
	"call_w3:\n"
	"	call _PyThread_cond_timedwait\n"
	"	.globl ret_w3\n"
	"ret_w3:\n"
	"	testl %eax,%eax\n"
	"	jne ret_w3\n"
	"	call pthread_cond_signal@PLT\n"
	"	.globl call_w4\n"
	"call_w4:\n"
	"	call pthread_cond_timedwait@PLT\n"
	"	.globl ret_w4\n"
	"ret_w4:\n"
	"	popq %rbx\n"
	"	.globl call_unlock\n"
	"call_unlock:\n"
	"	call pthread_mutex_unlock@PLT\n"
	"	testl %eax,%eax\n"
	"	.globl wake_unlock\n"
	"wake_unlock:\n"
	"	jne 20f\n"
	"	ret\n"
	"20:	call pthread_mutex_unlock@PLT\n"
	"	call abort@PLT\n"
	"	.size t_wait,.-t_wait\n"
	"	.section .note.GNU-stack,\"\",@progbits\n";

struct synth {
	char dir[64];
	char so[96];
	struct nm_tab nm;
	struct elf_image *img;
};

/* Assemble and link the library; false (with a printed reason) when the
 * toolchain is missing. @ldflags: extra linker flags (e.g. IBT PLT). */
static bool synth_build(struct synth *s, const char *ldflags)
{
	char err[256], *out;
	FILE *f;

	if (!have("cc objdump nm")) {
		print_message("  skipped: cc, objdump or nm missing\n");
		return false;
	}
	snprintf(s->dir, sizeof(s->dir), "/tmp/giltrace-test-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->so, sizeof(s->so), "%s/libt.so", s->dir);
	out = run("printf '' > %s/t.s", s->dir);
	free(out);
	{
		char p[96];

		snprintf(p, sizeof(p), "%s/t.s", s->dir);
		f = fopen(p, "w");
		assert_non_null(f);
		fputs(synth_asm, f);
		fclose(f);
	}
	out = run("cc -shared -nostdlib -o %s %s/t.s %s -lc 2>&1 && echo OK",
		  s->so, s->dir, ldflags);
	assert_non_null(out);
	if (!strstr(out, "OK")) {
		print_message("  skipped (%s): cannot link: %s\n", ldflags, out);
		free(out);
		return false;
	}
	free(out);
	nm_load(s->so, &s->nm, false);
	s->img = elf_image__open(s->so, "", err, sizeof(err));
	if (!s->img)
		fail_msg("%s", err);
	return true;
}

static void synth_free(struct synth *s)
{
	char *out;

	elf_image__close(s->img);
	free(s->nm.v);
	if (strncmp(s->dir, "/tmp/giltrace-test-", 19) == 0) {
		out = run("rm -rf '%s'", s->dir);
		free(out);
	}
}

/* placement__equivalent on function @fn at site @site (or its start). */
static uint64_t synth_place(struct synth *s, const char *fn, const char *site)
{
	const struct nm_sym *f = nm_find(&s->nm, fn);
	uint64_t lo, hi, p = 0, at;
	char name[128], why[256];

	assert_non_null(f);
	at = site ? nm_addr(&s->nm, site) : f->addr;
	assert_int_equal(placement__function_at(s->img, at, &lo, &hi, name,
						sizeof(name)), 0);
	assert_string_equal(name, fn);
	assert_int_equal(lo, f->addr);
	assert_int_equal(hi, f->addr + f->size);
	assert_int_equal(placement__equivalent(s->img, at, lo, hi, &p, why,
					       sizeof(why)), 0);
	print_message("    %-10s +%-3" PRIu64 " %s\n", fn, p - at, why);
	return p;
}

static void synth_cases(const char *ldflags)
{
	struct wait_site w[8];
	struct synth s = { 0 };
	const struct nm_sym *f;
	uint64_t lo, hi;
	size_t n;

	if (!synth_build(&s, ldflags))
		return;
	print_message("  synthetic library (%s):\n", ldflags[0] ? ldflags : "default PLT");
	placement__set_kernel_version(6, 18);
#define ADDR(n) nm_addr(&s.nm, n)
	assert_int_equal(synth_place(&s, "t_simple", NULL), ADDR("exp_simple"));
	assert_int_equal(synth_place(&s, "t_push", NULL), ADDR("t_push"));
	assert_int_equal(synth_place(&s, "t_target", NULL), ADDR("t_target"));
	assert_int_equal(synth_place(&s, "t_loop", "site_loop"), ADDR("exp_loop"));
	assert_int_equal(synth_place(&s, "t_ret", NULL), ADDR("t_ret"));
	assert_int_equal(synth_place(&s, "t_icall", NULL), ADDR("t_icall"));
	assert_int_equal(synth_place(&s, "t_call", NULL), ADDR("exp_call"));
	assert_int_equal(synth_place(&s, "t_far", NULL), ADDR("t_far"));
	assert_int_equal(synth_place(&s, "t_cold", NULL), ADDR("t_cold"));
	assert_int_equal(synth_place(&s, "t_hot2.cold", "site_cold2"),
			 ADDR("site_cold2"));
	assert_int_equal(synth_place(&s, "t_jt", NULL), ADDR("t_jt"));
	assert_int_equal(synth_place(&s, "t_unk", NULL), ADDR("t_unk"));
	assert_int_equal(synth_place(&s, "t_tls", NULL), ADDR("t_tls"));
	assert_int_equal(synth_place(&s, "t_csnop", NULL), ADDR("exp_csnop"));
	assert_int_equal(synth_place(&s, "t_nop5", NULL), ADDR("exp_nop5"));
	placement__set_kernel_version(6, 15);
	assert_int_equal(synth_place(&s, "t_nop5", NULL), ADDR("t_nop5"));
	placement__set_kernel_version(6, 18);

	/* a site outside its function, and one off an instruction boundary */
	f = nm_find(&s.nm, "t_simple");
	assert_int_equal(placement__equivalent(s.img, f->addr + f->size,
					       f->addr, f->addr + f->size, &lo,
					       NULL, 0), -EINVAL);
	assert_int_equal(placement__equivalent(s.img, f->addr + 1, f->addr,
					       f->addr + f->size, &lo, NULL, 0),
			 -EINVAL);

	/* take_gil-like: four timed waits, one unlock before ret */
	f = nm_find(&s.nm, "t_wait");
	lo = f->addr;
	hi = f->addr + f->size;
	assert_int_equal(placement__take_wait(s.img, lo, hi, w, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(w[0].call_vaddr, ADDR("call_w1"));
	assert_string_equal(w[0].callee, "pthread_cond_timedwait@plt");
	assert_int_equal(w[0].ret_vaddr, ADDR("call_w1") + 5);
	assert_int_equal(w[0].wake_vaddr, ADDR("wake_w1"));
	assert_true(w[0].wake_emulated);
	assert_false(w[0].ret_is_target);
	assert_int_equal(w[1].call_vaddr, ADDR("call_w2"));
	assert_string_equal(w[1].callee, "*pthread_cond_timedwait@got");
	assert_int_equal(w[1].wake_vaddr, ADDR("wake_w2"));
	assert_true(w[1].wake_emulated);
	assert_int_equal(w[2].call_vaddr, ADDR("call_w3"));
	assert_string_equal(w[2].callee, "_PyThread_cond_timedwait");
	assert_int_equal(w[2].ret_vaddr, ADDR("ret_w3"));
	assert_true(w[2].ret_is_target);
	assert_int_equal(w[3].call_vaddr, ADDR("call_w4"));
	assert_int_equal(w[3].ret_vaddr, ADDR("ret_w4"));
	assert_int_equal(w[3].wake_vaddr, ADDR("call_unlock"));
	assert_true(w[3].wake_emulated);
	/* -ENOSPC keeps the first ones */
	assert_int_equal(placement__take_wait(s.img, lo, hi, w, 2, &n), -ENOSPC);
	assert_int_equal(n, 2);
	assert_int_equal(w[0].call_vaddr, ADDR("call_w1"));

	assert_int_equal(placement__take_held(s.img, lo, hi, w, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(w[0].call_vaddr, ADDR("call_unlock"));
	assert_string_equal(w[0].callee, "pthread_mutex_unlock@plt");
	assert_int_equal(w[0].wake_vaddr, ADDR("wake_unlock"));
#undef ADDR
	placement__set_kernel_version(0, 0);
	synth_free(&s);
}

static void test_synthetic(void **state)
{
	(void)state;
	synth_cases("");
	synth_cases("-Wl,-z,ibtplt");   /* .plt.sec with endbr64 */
	synth_cases("-Wl,-z,now");
}

/* ---- interpreters --------------------------------------------------------- */

/* The function of @nm containing @addr and, if any, its `.cold` part:
 * objdump of both appended to @o. */
static const struct nm_sym *od_function(const char *bin, const struct nm_tab *nm,
					uint64_t addr, struct od *o)
{
	const struct nm_sym *fn = nm_containing(nm, addr);
	char cold[200];
	size_t i;

	assert_non_null(fn);
	od_load(bin, fn->addr, fn->addr + fn->size, o);
	snprintf(cold, sizeof(cold), "%s.cold", fn->name);
	for (i = 0; i < nm->n; i++)
		if (nm->v[i].size && (strcmp(nm->v[i].name, cold) == 0 ||
		    (strncmp(nm->v[i].name, cold, strlen(cold)) == 0 &&
		     nm->v[i].name[strlen(cold)] == '.')))
			od_load(bin, nm->v[i].addr, nm->v[i].addr + nm->v[i].size, o);
	return fn;
}

static void check_drop(struct elf_image *img, const char *bin,
		       const struct nm_tab *nm, const struct gil_site *g)
{
	const struct od_insn *site, *cand, *x;
	const struct nm_sym *fn;
	uint64_t lo, hi, p = 0;
	char name[128], why[320], t1[160], t2[160];
	struct od o = { 0 };

	fn = od_function(bin, nm, g->vaddr, &o);
	assert_int_equal(placement__function_at(img, g->vaddr, &lo, &hi, name,
						sizeof(name)), 0);
	assert_int_equal(lo, fn->addr);
	assert_int_equal(hi, fn->addr + fn->size);
	assert_int_equal(placement__equivalent(img, g->vaddr, lo, hi, &p, why,
					       sizeof(why)), 0);
	site = od_at(&o, g->vaddr);
	cand = od_at(&o, p);
	if (!site || !cand)
		fail_msg("%s: 0x%" PRIx64 " or 0x%" PRIx64 " is not an objdump "
			 "instruction boundary in %s", bin, g->vaddr, p, fn->name);
	assert_true(p >= g->vaddr && p - g->vaddr <= PLACEMENT_MAX_DISTANCE);
	od_text(site, t1, sizeof(t1));
	od_text(cand, t2, sizeof(t2));
	print_message("    drop %-5s %-28s 0x%-8" PRIx64 " %-34s -> 0x%-8" PRIx64
		      " %-28s +%" PRIu64 "\n", g->inlined ? "inl" : "entry",
		      g->inlined ? g->caller : g->symbol, g->vaddr, t1, p, t2,
		      p - g->vaddr);
	if (p != g->vaddr) {
		if (!od_emulated_kind(cand))
			fail_msg("0x%" PRIx64 " `%s` is not of an emulated kind", p, t2);
		/* straight-line from the site to the candidate */
		for (x = site; x && x->addr < p; x = od_next(&o, x->addr))
			if (x->flow)
				fail_msg("branch 0x%" PRIx64 " between the site and "
					 "0x%" PRIx64, x->addr, p);
		if (od_target_in(&o, g->vaddr, p))
			fail_msg("a branch of %s targets (0x%" PRIx64 ", 0x%" PRIx64
				 "]", fn->name, g->vaddr, p);
	} else if (!g->inlined) {
		/* out-of-line entries start with an emulated push on every
		 * build here */
		if (!od_emulated_kind(site))
			print_message("      note: entry `%s` is not emulated: %s\n",
				      t1, why);
	} else {
		print_message("      kept: %s\n", why);
	}
	free(o.v);
}

static void check_take(struct elf_image *img, const char *bin,
		       const struct nm_tab *nm, const struct gil_site *g)
{
	struct wait_site w[16], h[16];
	const struct nm_sym *fn;
	struct od o = { 0 };
	size_t n, nh, k;
	uint64_t lo, hi;
	char t[160], tw[160];

	fn = od_function(bin, nm, g->vaddr, &o);
	assert_int_equal(placement__function_at(img, g->vaddr, &lo, &hi, NULL, 0), 0);
	assert_int_equal(lo, g->vaddr);
	assert_int_equal(placement__take_wait(img, lo, hi, w, 16, &n), 0);
	if (n < 1)
		fail_msg("%s: no condition-variable wait found in %s", bin, fn->name);
	for (k = 0; k < n; k++) {
		const struct od_insn *c = od_at(&o, w[k].call_vaddr);
		const struct od_insn *r = od_at(&o, w[k].ret_vaddr);
		const struct od_insn *wk = od_at(&o, w[k].wake_vaddr);
		uint64_t off;

		if (!c || !r || !wk)
			fail_msg("%s: a wait address is not an objdump boundary", bin);
		assert_true(strncmp(c->mn, "call", 4) == 0);
		assert_true(od_emulated_kind(c));
		if (!strstr(c->ops, "pthread_cond_timedwait") &&
		    !strstr(c->ops, "_PyThread_cond_timedwait") &&
		    !strstr(c->ops, "pthread_cond_clockwait"))
			fail_msg("objdump names 0x%" PRIx64 " `%s`, not a cond wait",
				 c->addr, c->ops);
		assert_ptr_equal(od_next(&o, c->addr), r);
		assert_true(w[k].wake_vaddr >= w[k].ret_vaddr);
		assert_int_equal(w[k].ret_is_target,
				 od_target_in(&o, w[k].ret_vaddr - 1, w[k].ret_vaddr));
		if (w[k].wake_emulated)
			assert_true(od_emulated_kind(wk));
		else
			assert_int_equal(w[k].wake_vaddr, w[k].ret_vaddr);
		if (w[k].wake_vaddr > w[k].ret_vaddr) {
			const struct od_insn *x;

			assert_false(od_target_in(&o, w[k].ret_vaddr, w[k].wake_vaddr));
			for (x = r; x && x->addr < w[k].wake_vaddr;
			     x = od_next(&o, x->addr))
				assert_false(x->flow);
		}
		assert_int_equal(elf_image__vaddr_to_offset(img, w[k].wake_vaddr,
							    &off), 0);
		assert_int_equal(off, w[k].wake_offset);
		assert_int_equal(elf_image__vaddr_to_offset(img, w[k].call_vaddr,
							    &off), 0);
		assert_int_equal(off, w[k].call_offset);
		od_text(c, t, sizeof(t));
		od_text(wk, tw, sizeof(tw));
		print_message("    take %-34s wait 0x%-8" PRIx64 " %-40s wake 0x%-8"
			      PRIx64 " %-22s +%" PRIu64 " %s%s\n", g->symbol,
			      w[k].call_vaddr, t, w[k].wake_vaddr, tw,
			      w[k].wake_vaddr - w[k].ret_vaddr,
			      w[k].wake_emulated ? "emulated" : "SINGLE-STEPPED",
			      w[k].ret_is_target ? " (ret is a branch target)" : "");
	}
	assert_int_equal(placement__take_held(img, lo, hi, h, 16, &nh), 0);
	for (k = 0; k < nh; k++) {
		const struct od_insn *c = od_at(&o, h[k].call_vaddr);
		const struct od_insn *wk = od_at(&o, h[k].wake_vaddr);

		assert_non_null(c);
		assert_non_null(wk);
		assert_non_null(strstr(c->ops, "pthread_mutex_unlock"));
		od_text(wk, tw, sizeof(tw));
		print_message("    take %-34s held 0x%-8" PRIx64 " %-40s wake 0x%-8"
			      PRIx64 " %s\n", "", h[k].call_vaddr, "call pthread_mutex_unlock",
			      h[k].wake_vaddr, tw);
	}
	free(o.v);
}

static void check_interp(const char *label, const char *path)
{
	struct elf_image *img;
	struct gil_sites s;
	struct nm_tab nm;
	const char *symfile;
	char err[512];
	size_t i;

	if (access(path, R_OK) != 0) {
		print_message("  %s: skipped, %s not installed\n", label, path);
		return;
	}
	img = elf_image__open(path, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	if (gil_sites__find(img, &s, err, sizeof(err)) != 0) {
		print_message("  %s: skipped, %s\n", label, err);
		elf_image__close(img);
		return;
	}
	/* symbols from the debug file when there is one (Debian), as
	 * elf_image does for a binary without .symtab */
	symfile = elf_image__debug_path(img) ? elf_image__debug_path(img) : path;
	nm_load(symfile, &nm, false);
	print_message("  %s (%s)\n", label, path);
	for (i = 0; i < s.n; i++) {
		if (s.v[i].func == GIL_DROP)
			check_drop(img, path, &nm, &s.v[i]);
		else if (!s.v[i].inlined)
			check_take(img, path, &nm, &s.v[i]);
	}
	free(nm.v);
	gil_sites__free(&s);
	elf_image__close(img);
}

static void test_interpreters(void **state)
{
	static const char *const vers[] = {
		"3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7",
		"3.12.1", "3.13.0",
	};
	const char *root = getenv("PYENV_ROOT");
	char path[512], pat[600], *out;
	size_t i;

	(void)state;
	if (!have("objdump nm")) {
		print_message("  skipped: binutils missing\n");
		return;
	}
	placement__set_kernel_version(0, 0);
	if (!root)
		root = "/root/.pyenv";
	for (i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
		snprintf(pat, sizeof(pat), "ls %s/versions/%s/lib/libpython3*.so.1.0 "
			 "2>/dev/null | head -1", root, vers[i]);
		out = run("%s", pat);
		path[0] = '\0';
		if (out)
			sscanf(out, "%511s", path);
		free(out);
		if (!path[0]) {
			print_message("  pyenv %s: skipped, not installed under %s\n",
				      vers[i], root);
			continue;
		}
		check_interp(vers[i], path);
	}
	check_interp("Debian python3.11", DEBIAN_PY);
	check_interp("Debian libpython3.11", DEBIAN_LIBPY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_interpreters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
