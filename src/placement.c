/* SPDX-License-Identifier: MIT */
/*
 * placement: where exactly to put each GIL uprobe so that the kernel
 * emulates the probed instruction (see placement.h).
 *
 * The kernel's rule (Linux arch/x86/kernel/uprobes.c, read at 6.16-6.18;
 * arch_uprobe_analyze_insn() -> uprobe_init_insn(), branch_setup_xol_ops(),
 * push_setup_xol_ops()):
 *
 *  1. uprobe_init_insn() refuses the probe (attach fails, -ENOTSUPP) when
 *     the instruction has an ES/CS/SS/DS segment or LOCK prefix
 *     (is_prefix_bad(): 0x26 0x2e 0x36 0x3e 0xf0, so also `notrack jmp`,
 *     branch hints and `cs nopw`), or its opcode is not in the
 *     good_insns_64 / good_2byte_insns tables (int3, int, syscall, ud2,
 *     hlt, in/out...).
 *  2. branch_setup_xol_ops() emulates: a NOP whose bytes equal the kernel's
 *     x86_nops[len] (since 6.16, commit 610f6e14c29d "uprobes/x86: Add
 *     support to emulate NOP instructions"; len <= ASM_NOP_MAX, and the
 *     9..11-byte ones carry a CS prefix that step 1 refuses), opcode 0x90
 *     with any prefixes ("prefix* + nop"), jmp rel8 (eb), jmp rel32 (e9),
 *     call rel32 (e8), jcc rel8 (70-7f) and jcc rel32 (0f 80-8f). A branch
 *     with a 0x66 prefix is refused (-ENOTSUPP: attach fails), e.g. the
 *     `data16 data16 rex.W call __tls_get_addr` of TLS sequences.
 *  3. push_setup_xol_ops() emulates push %reg (50-57), and push %r8-%r15
 *     only with the exact REX prefix 0x41 (2 bytes).
 *  4. Everything else is single-stepped out of line (XOL), with rip-relative
 *     operands rewritten through a scratch register.
 *
 * Deliberately stricter than the kernel where the kernel is unsafe or where
 * versions differ: `41 90` (xchg %r8,%rax) would be emulated as a NOP by
 * 6.18's "case 0x90" and is reported REJECTED (never probe it); `f3 90`
 * (pause) is emulated up to 6.18 but single-stepped from 6.19 (commit
 * 8a5c6cbfe4a3 "x86/insn,uprobes,alternative: Unify insn_is_nop()"), so it
 * counts as single-stepped. 6.19's extra NOP forms (mov %reg,%reg,
 * lea 0(%reg),%reg, jmp +0) are not counted. Multi-byte NOPs count as
 * emulated only when the kernel is 6.16 or later.
 *
 * Basic blocks come from a linear sweep of the enclosing function (its
 * .symtab range plus its gcc `.cold` part, which jumps back into the hot
 * part; or, for a site in a `.cold` part, its hot parent) with capstone. Branch targets are the direct jmp/jcc/call targets
 * plus the entries of jump tables the function loads (int32 offsets
 * relative to the table, PIC; or absolute 64-bit addresses, non-PIC). A
 * function with an indirect local jump whose table is not found is not
 * analysed (the site is kept): a wrong placement could miss releases.
 */
#include "placement.h"
#include "errbuf.h"
#include "elf_image.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define MAX_INSN 15
#define MAX_RANGES 4
#define MAX_TABLE_ENTRIES 4096
#define HELD_WALK_MAX 64

const char *placement_kind__name(enum placement_kind k)
{
	switch (k) {
	case PLACEMENT_EMULATED:
		return "emulated";
	case PLACEMENT_SSTEP:
		return "single-stepped";
	case PLACEMENT_REJECTED:
		return "rejected";
	}
	return "?";
}

/* ---- kernel version ---------------------------------------------------- */

static unsigned int kver_override; /* major * 1000 + minor, 0: uname */

void placement__set_kernel_version(unsigned int major, unsigned int minor)
{
	kver_override = major * 1000 + minor;
}

static unsigned int kernel_version(void)
{
	static unsigned int cached;
	unsigned int major = 0, minor = 0;
	struct utsname u;

	if (kver_override)
		return kver_override;
	if (cached)
		return cached;
	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2)
		cached = major * 1000 + minor;
	else
		cached = 1; /* unknown: assume old, i.e. no NOP emulation */
	return cached;
}

/* ---- the kernel's rule, on raw bytes ----------------------------------- */

struct raw_insn {
	uint8_t pfx[MAX_INSN];  /* legacy prefixes, in order */
	size_t npfx;
	uint8_t rex;            /* 0 if none */
	uint8_t op1, op2;       /* opcode; op2 only when op1 == 0x0f */
	size_t op_at;           /* offset of op1 */
};

static bool legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
	case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
		return true;
	}
	return false;
}

static void raw_parse(const uint8_t *b, size_t len, struct raw_insn *r)
{
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	while (i < len && legacy_prefix(b[i]))
		r->pfx[r->npfx++] = b[i++];
	if (i < len && (b[i] & 0xf0) == 0x40)
		r->rex = b[i++];
	r->op_at = i;
	r->op1 = i < len ? b[i] : 0;
	r->op2 = r->op1 == 0x0f && i + 1 < len ? b[i + 1] : 0;
}

static bool has_prefix(const struct raw_insn *r, uint8_t p)
{
	size_t i;

	for (i = 0; i < r->npfx; i++)
		if (r->pfx[i] == p)
			return true;
	return false;
}

/* One-byte opcodes not in the kernel's good_insns_64 table (64-bit mode). */
static bool bad_opcode1(uint8_t op)
{
	static const uint8_t bad[] = {
		0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37,
		0x3f, 0x60, 0x61, 0x6c, 0x6d, 0x6e, 0x6f, 0x82, 0x9a, 0xcc,
		0xcd, 0xce, 0xcf, 0xd4, 0xd5, 0xd6, 0xe4, 0xe5, 0xe6, 0xe7,
		0xea, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf4, 0xfa, 0xfb,
	};
	size_t i;

	for (i = 0; i < sizeof(bad); i++)
		if (bad[i] == op)
			return true;
	return false;
}

/* Two-byte (0f xx) opcodes not in the kernel's good_2byte_insns table. */
static bool bad_opcode2(uint8_t op)
{
	static const uint8_t bad[] = {
		0x00, 0x01, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x30, 0x34,
		0x35, 0x37, 0x78, 0x79, 0xae,
	};
	size_t i;

	for (i = 0; i < sizeof(bad); i++)
		if (bad[i] == op)
			return true;
	return false;
}

/* The kernel's x86_nops[] for x86-64 (arch/x86/include/asm/nops.h), the
 * lengths that pass is_prefix_bad(). */
static bool kernel_nop(const uint8_t *b, size_t len)
{
	static const uint8_t nops[9][8] = {
		[1] = { 0x90 },
		[2] = { 0x66, 0x90 },
		[3] = { 0x0f, 0x1f, 0x00 },
		[4] = { 0x0f, 0x1f, 0x40, 0x00 },
		[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		[6] = { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		[7] = { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
		[8] = { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	};

	return len >= 1 && len <= 8 && memcmp(b, nops[len], len) == 0;
}

static bool cond_jump(const struct raw_insn *r)
{
	return (r->op1 >= 0x70 && r->op1 <= 0x7f) ||
	       (r->op1 == 0x0f && r->op2 >= 0x80 && r->op2 <= 0x8f);
}

/*
 * The rule for one instruction of @ilen bytes (length known from the
 * disassembler). See the file comment.
 */
static enum placement_kind classify_raw(const uint8_t *b, size_t ilen,
					const char **why)
{
	struct raw_insn r;
	size_t i;

	raw_parse(b, ilen, &r);
	for (i = 0; i < r.npfx; i++) {
		switch (r.pfx[i]) {
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0xf0:
			*why = "segment/lock prefix: is_prefix_bad() refuses it";
			return PLACEMENT_REJECTED;
		}
	}
	if (r.op1 == 0x0f ? bad_opcode2(r.op2) : bad_opcode1(r.op1)) {
		*why = "opcode not in the kernel's good_insns tables";
		return PLACEMENT_REJECTED;
	}
	if (r.op1 == 0x90) {
		if (r.rex & 0x01) {
			*why = "xchg %r8,%rax: 6.18 would wrongly emulate it as a nop";
			return PLACEMENT_REJECTED;
		}
		if (has_prefix(&r, 0xf3)) {
			*why = "pause: emulated up to 6.18 only";
			return PLACEMENT_SSTEP;
		}
		*why = "nop: branch_setup_xol_ops";
		return PLACEMENT_EMULATED;
	}
	if (ilen > 1 && kernel_nop(b, ilen)) {
		if (kernel_version() >= 6016) {
			*why = "x86_nops[] nop: branch_setup_xol_ops (6.16+)";
			return PLACEMENT_EMULATED;
		}
		*why = "multi-byte nop: single-stepped before 6.16";
		return PLACEMENT_SSTEP;
	}
	if (r.op1 == 0xe8 || r.op1 == 0xe9 || r.op1 == 0xeb || cond_jump(&r)) {
		if (has_prefix(&r, 0x66)) {
			*why = "branch with 0x66 prefix: branch_setup_xol_ops refuses it";
			return PLACEMENT_REJECTED;
		}
		*why = r.op1 == 0xe8 ? "call rel32: branch_setup_xol_ops" :
		       cond_jump(&r) ? "jcc: branch_setup_xol_ops" :
				       "jmp rel: branch_setup_xol_ops";
		return PLACEMENT_EMULATED;
	}
	if (r.op1 >= 0x50 && r.op1 <= 0x57 &&
	    (ilen == 1 || (ilen == 2 && r.rex == 0x41 && r.npfx == 0))) {
		*why = "push %reg: push_setup_xol_ops";
		return PLACEMENT_EMULATED;
	}
	*why = "single-stepped out of line";
	return PLACEMENT_SSTEP;
}

/* ---- capstone ---------------------------------------------------------- */

static int cs_new(csh *h)
{
	if (cs_open(CS_ARCH_X86, CS_MODE_64, h) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(*h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_option(*h, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT); /* as objdump prints */
	return 0;
}

/* Decode one instruction; returns a cs_insn to cs_free(, 1) or NULL. */
static cs_insn *decode1(csh h, const uint8_t *code, size_t len, uint64_t vaddr)
{
	cs_insn *insn = NULL;

	if (len > MAX_INSN)
		len = MAX_INSN;
	if (cs_disasm(h, code, len, vaddr, 1, &insn) != 1)
		return NULL;
	return insn;
}

int placement__classify(const uint8_t *code, size_t len, uint64_t vaddr,
			enum placement_kind *kind, size_t *insn_len,
			char *what, size_t whatlen)
{
	const char *why = "";
	cs_insn *insn;
	csh h;

	if (!code || !len || !kind)
		return -EINVAL;
	if (cs_new(&h) != 0)
		return -ENOMEM;
	insn = decode1(h, code, len, vaddr);
	if (!insn) {
		cs_close(&h);
		errbuf_set(what, whatlen, "undecodable bytes at 0x%lx",
			(unsigned long)vaddr);
		return -EINVAL;
	}
	*kind = classify_raw(code, insn->size, &why);
	if (insn_len)
		*insn_len = insn->size;
	errbuf_set(what, whatlen, "%s %s: %s", insn->mnemonic, insn->op_str, why);
	cs_free(insn, 1);
	cs_close(&h);
	return 0;
}

int placement__emulated(const uint8_t *code, size_t len, uint64_t vaddr,
			bool *emulated, size_t *insn_len)
{
	enum placement_kind k;
	int r;

	if (!emulated)
		return -EINVAL;
	r = placement__classify(code, len, vaddr, &k, insn_len, NULL, 0);
	if (r)
		return r;
	*emulated = k == PLACEMENT_EMULATED;
	return 0;
}

/* ---- symbols ----------------------------------------------------------- */

struct fsym {
	const char *name;
	uint64_t vaddr, size;
};

struct symtab {
	struct fsym *v;
	size_t n, cap;
	int err;
};

static int sym_add(const char *name, uint64_t vaddr, uint64_t size, int type,
		   int bind, void *ctx)
{
	struct symtab *t = ctx;

	if (type != STT_FUNC)
		return 0;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 4096;
		void *p = realloc(t->v, nc * sizeof(*t->v));

		if (!p) {
			t->err = -ENOMEM;
			return 1;
		}
		t->v = p;
		t->cap = nc;
	}
	t->v[t->n].name = name;
	t->v[t->n].vaddr = vaddr;
	t->v[t->n].size = size;
	t->n++;
	return 0;
}

static int fsym_cmp(const void *a, const void *b)
{
	const struct fsym *x = a, *y = b;

	if (x->vaddr != y->vaddr)
		return x->vaddr < y->vaddr ? -1 : 1;
	return (x->size < y->size) - (x->size > y->size);
}

static int symtab_load(struct elf_image *img, struct symtab *t)
{
	memset(t, 0, sizeof(*t));
	elf_image__foreach_symbol(img, sym_add, t);
	if (t->err) {
		free(t->v);
		return t->err;
	}
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), fsym_cmp);
	return 0;
}

/* First symbol whose address is >= @vaddr. */
static size_t symtab_lower(const struct symtab *t, uint64_t vaddr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->v[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A function symbol that starts exactly at @vaddr, or NULL. */
static const struct fsym *symtab_at(const struct symtab *t, uint64_t vaddr)
{
	size_t i = symtab_lower(t, vaddr);

	return i < t->n && t->v[i].vaddr == vaddr ? &t->v[i] : NULL;
}

/* The innermost function symbol containing @vaddr, or NULL. */
static const struct fsym *symtab_containing(const struct symtab *t,
					    uint64_t vaddr)
{
	size_t i = symtab_lower(t, vaddr + 1);

	while (i-- > 0) {
		const struct fsym *s = &t->v[i];

		if (s->size && vaddr >= s->vaddr && vaddr - s->vaddr < s->size)
			return s;
		if (vaddr - s->vaddr > (1u << 24))
			break;  /* no function is that large */
	}
	return NULL;
}

int placement__function_at(struct elf_image *img, uint64_t vaddr,
			   uint64_t *lo, uint64_t *hi, char *name,
			   size_t namelen)
{
	const struct fsym *s;
	struct symtab t;
	int r;

	r = symtab_load(img, &t);
	if (r)
		return r;
	s = symtab_containing(&t, vaddr);
	if (s) {
		if (lo)
			*lo = s->vaddr;
		if (hi)
			*hi = s->vaddr + s->size;
		errbuf_set(name, namelen, "%s", s->name);
	}
	free(t.v);
	return s ? 0 : -ENOENT;
}

/* Is @s "<base>.cold" or "<base>.cold.N"? */
static bool is_cold_of(const char *s, const char *base)
{
	size_t n = strlen(base);

	return strncmp(s, base, n) == 0 && strncmp(s + n, ".cold", 5) == 0 &&
	       (s[n + 5] == '\0' || s[n + 5] == '.');
}

/* Is @name the cold part of any symbol at the address of @f (aliases)? */
static bool cold_of_any(const struct symtab *t, const struct fsym *f,
			const char *name)
{
	const struct fsym *s;

	if (!strstr(name, ".cold"))
		return false;
	for (s = f; s < t->v + t->n && s->vaddr == f->vaddr; s++)
		if (is_cold_of(name, s->name))
			return true;
	return false;
}

/* ---- GOT slots -> names (.rela.plt, .rela.dyn) ------------------------- */

struct got_ent {
	uint64_t slot;
	const char *name;  /* into gotmap.dynstr */
};

struct gotmap {
	struct got_ent *v;
	size_t n;
	char *dynstr;
	size_t dynstr_size;
	bool loaded;
};

static void got_add_relocs(struct gotmap *g, const uint8_t *rela, size_t size,
			   const uint8_t *dynsym, size_t symsize, size_t *cap)
{
	size_t i, nrel = size / sizeof(Elf64_Rela);

	for (i = 0; i < nrel; i++) {
		Elf64_Rela r;
		Elf64_Sym s;
		uint64_t type, si;

		memcpy(&r, rela + i * sizeof(r), sizeof(r));
		type = ELF64_R_TYPE(r.r_info);
		si = ELF64_R_SYM(r.r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
			continue;
		if (!si || (si + 1) * sizeof(s) > symsize)
			continue;
		memcpy(&s, dynsym + si * sizeof(s), sizeof(s));
		if (s.st_name >= g->dynstr_size)
			continue;
		if (g->n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			void *p = realloc(g->v, nc * sizeof(*g->v));

			if (!p)
				return;
			g->v = p;
			*cap = nc;
		}
		g->v[g->n].slot = r.r_offset;
		g->v[g->n].name = g->dynstr + s.st_name;
		g->n++;
	}
}

static void got_load(struct elf_image *img, struct gotmap *g)
{
	static const char *const relsecs[] = { ".rela.plt", ".rela.dyn" };
	size_t symsize = 0, cap = 0, i;
	uint8_t *dynsym;

	if (g->loaded)
		return;
	g->loaded = true;
	g->dynstr = elf_image__section(img, ".dynstr", &g->dynstr_size, NULL);
	dynsym = elf_image__section(img, ".dynsym", &symsize, NULL);
	if (!g->dynstr || !dynsym || !g->dynstr_size) {
		free(dynsym);
		return;
	}
	g->dynstr[g->dynstr_size - 1] = '\0';
	for (i = 0; i < 2; i++) {
		size_t size = 0;
		uint8_t *rela = elf_image__section(img, relsecs[i], &size, NULL);

		if (rela)
			got_add_relocs(g, rela, size, dynsym, symsize, &cap);
		free(rela);
	}
	free(dynsym);
}

static const char *got_name(struct gotmap *g, uint64_t slot)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->v[i].slot == slot)
			return g->v[i].name;
	return NULL;
}

static void got_free(struct gotmap *g)
{
	free(g->v);
	free(g->dynstr);
	memset(g, 0, sizeof(*g));
}

/*
 * The GOT slot a PLT stub at @vaddr jumps through: `jmp *slot(%rip)`
 * (ff 25), optionally after endbr64 (f3 0f 1e fa, .plt.sec with IBT) and
 * a bnd prefix (f2, MPX-era .plt.sec). Returns 0 or -ENOENT.
 */
static int plt_slot(struct elf_image *img, uint64_t vaddr, uint64_t *slot)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	uint8_t b[16];
	size_t i = 0;
	int32_t disp;

	if (elf_image__read(img, vaddr, b, sizeof(b)) != 0)
		return -ENOENT;
	if (memcmp(b, endbr64, 4) == 0)
		i = 4;
	if (b[i] == 0xf2)
		i++;
	if (b[i] != 0xff || b[i + 1] != 0x25)
		return -ENOENT;
	memcpy(&disp, b + i + 2, 4);
	*slot = vaddr + i + 6 + (int64_t)disp;
	return 0;
}

/* ---- a function's code, decoded ---------------------------------------- */

enum flow {
	FL_NONE = 0,
	FL_JCC,    /* conditional direct jump (jcc, loop, jrcxz) */
	FL_JMP,    /* unconditional direct jump */
	FL_IJMP,   /* indirect jump */
	FL_CALL,   /* direct call */
	FL_ICALL,  /* indirect call */
	FL_RET,
	FL_TRAP,   /* int3, int, syscall, ud2, hlt...: never falls through normally */
};

struct ins {
	uint64_t addr;
	uint64_t target;      /* FL_JCC/JMP/CALL: destination; FL_I*: see mem */
	uint64_t mem;         /* rip-relative or absolute memory operand address */
	uint8_t len;
	uint8_t flow;         /* enum flow */
	uint8_t kind;         /* enum placement_kind */
	bool has_mem;         /* mem is meaningful */
	bool mem_rip;         /* mem came from a rip-relative operand */
	bool mem_indexed;     /* absolute disp with an index register: a table */
	bool ireg;            /* indirect through a register */
	uint8_t range;        /* index of the range it belongs to */
};

struct range {
	uint64_t lo, hi;
	uint8_t *bytes;
};

struct code {
	struct range r[MAX_RANGES];
	size_t nr;
	struct ins *v;
	size_t n, cap;
	uint64_t *targets;
	size_t ntargets, tcap;
	bool incomplete;       /* a range did not decode to its end */
	uint64_t incomplete_at;
	bool unknown_indirect; /* a local indirect jump whose targets are unknown */
	uint64_t unknown_at;
	char name[128];
};

static bool in_ranges(const struct code *c, uint64_t a)
{
	size_t i;

	for (i = 0; i < c->nr; i++)
		if (a >= c->r[i].lo && a < c->r[i].hi)
			return true;
	return false;
}

static int add_target(struct code *c, uint64_t t)
{
	if (c->ntargets == c->tcap) {
		size_t nc = c->tcap ? c->tcap * 2 : 256;
		void *p = realloc(c->targets, nc * sizeof(*c->targets));

		if (!p)
			return -ENOMEM;
		c->targets = p;
		c->tcap = nc;
	}
	c->targets[c->ntargets++] = t;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Is any branch target in (lo, hi]? */
static bool target_in(const struct code *c, uint64_t lo, uint64_t hi)
{
	size_t a = 0, b = c->ntargets;

	while (a < b) {       /* first target > lo */
		size_t m = a + (b - a) / 2;

		if (c->targets[m] <= lo)
			a = m + 1;
		else
			b = m;
	}
	return a < c->ntargets && c->targets[a] <= hi;
}

static bool is_target(const struct code *c, uint64_t a)
{
	return a > 0 && target_in(c, a - 1, a);
}

static uint8_t flow_of(csh h, const cs_insn *in)
{
	switch (in->id) {
	case X86_INS_RET: case X86_INS_RETF: case X86_INS_RETFQ:
	case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
		return FL_RET;
	case X86_INS_INT: case X86_INS_INT3: case X86_INS_INTO:
	case X86_INS_SYSCALL: case X86_INS_SYSENTER: case X86_INS_SYSEXIT:
	case X86_INS_SYSRET: case X86_INS_UD2: case X86_INS_UD2B:
	case X86_INS_UD0: case X86_INS_HLT:
		return FL_TRAP;
	case X86_INS_JMP: case X86_INS_LJMP:
		return FL_JMP;
	case X86_INS_CALL: case X86_INS_LCALL:
		return FL_CALL;
	}
	if (cs_insn_group(h, in, X86_GRP_JUMP))
		return FL_JCC;
	if (cs_insn_group(h, in, X86_GRP_CALL))
		return FL_CALL;
	if (cs_insn_group(h, in, X86_GRP_RET) || cs_insn_group(h, in, X86_GRP_IRET))
		return FL_RET;
	if (cs_insn_group(h, in, X86_GRP_INT))
		return FL_TRAP;
	return FL_NONE;
}

/* Fill the operand facts of @x from capstone's detail. */
static void operands(const cs_insn *in, struct ins *x)
{
	const cs_x86 *d = &in->detail->x86;
	uint8_t i;

	for (i = 0; i < d->op_count; i++) {
		const cs_x86_op *op = &d->operands[i];

		if (op->type == X86_OP_IMM && (x->flow == FL_JCC ||
		    x->flow == FL_JMP || x->flow == FL_CALL))
			x->target = (uint64_t)op->imm;
		if (op->type == X86_OP_REG && i == 0 &&
		    (x->flow == FL_JMP || x->flow == FL_CALL))
			x->ireg = true;
		if (op->type != X86_OP_MEM)
			continue;
		if (op->mem.base == X86_REG_RIP) {
			x->has_mem = x->mem_rip = true;
			x->mem = in->address + in->size + (uint64_t)op->mem.disp;
		} else if (op->mem.base == X86_REG_INVALID &&
			   op->mem.index != X86_REG_INVALID && op->mem.disp > 0) {
			x->has_mem = x->mem_indexed = true;
			x->mem = (uint64_t)op->mem.disp;
		}
	}
	/* A jmp/call through a register or memory is indirect. */
	if ((x->flow == FL_JMP || x->flow == FL_CALL) &&
	    (x->ireg || d->op_count == 0 || d->operands[0].type != X86_OP_IMM))
		x->flow = x->flow == FL_JMP ? FL_IJMP : FL_ICALL;
}

static struct ins *ins_new(struct code *c)
{
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 1024;
		void *p = realloc(c->v, nc * sizeof(*c->v));

		if (!p)
			return NULL;
		c->v = p;
		c->cap = nc;
	}
	memset(&c->v[c->n], 0, sizeof(c->v[0]));
	return &c->v[c->n++];
}

static int sweep_range(csh h, struct code *c, size_t ri)
{
	struct range *r = &c->r[ri];
	const uint8_t *p = r->bytes;
	size_t size = (size_t)(r->hi - r->lo);
	uint64_t addr = r->lo;
	cs_insn *in = cs_malloc(h);
	const char *why;

	if (!in)
		return -ENOMEM;
	while (size > 0) {
		const uint8_t *start = p;
		struct ins *x;

		if (!cs_disasm_iter(h, &p, &size, &addr, in)) {
			if (!c->incomplete) {
				c->incomplete = true;
				c->incomplete_at = addr;
			}
			break;
		}
		x = ins_new(c);
		if (!x) {
			cs_free(in, 1);
			return -ENOMEM;
		}
		x->addr = in->address;
		x->len = (uint8_t)in->size;
		x->flow = flow_of(h, in);
		x->range = (uint8_t)ri;
		x->kind = (uint8_t)classify_raw(start, in->size, &why);
		operands(in, x);
	}
	cs_free(in, 1);
	return 0;
}

/* Is @a readable file-backed data outside the executable segments? */
static bool data_addr(struct elf_image *img, uint64_t a)
{
	uint64_t off;
	uint32_t v;

	return elf_image__vaddr_to_offset(img, a, &off) != 0 &&
	       elf_image__read(img, a, &v, sizeof(v)) == 0;
}

/* Entries of a jump table at @base: int32 offsets from the table (PIC) or
 * absolute 64-bit addresses, as long as they land in the function. */
static int table_targets(struct elf_image *img, struct code *c, uint64_t base,
			 size_t *found)
{
	size_t k;
	int r;

	for (k = 0; k < MAX_TABLE_ENTRIES; k++) {
		int32_t e;

		if (elf_image__read(img, base + 4 * k, &e, sizeof(e)) != 0 ||
		    !in_ranges(c, base + (int64_t)e))
			break;
		r = add_target(c, base + (int64_t)e);
		if (r)
			return r;
		(*found)++;
	}
	for (k = 0; k < MAX_TABLE_ENTRIES; k++) {
		uint64_t e;

		if (elf_image__read(img, base + 8 * k, &e, sizeof(e)) != 0 ||
		    !in_ranges(c, e))
			break;
		r = add_target(c, e);
		if (r)
			return r;
		(*found)++;
	}
	return 0;
}

/*
 * A local indirect jump: `jmp *%reg` or `jmp *table(,%idx,8)`. Tail calls
 * through the GOT (`jmp *slot(%rip)`) or a struct (`jmp *off(%reg)`) leave
 * the function and are not.
 */
static bool local_indirect(const struct ins *x)
{
	return x->flow == FL_IJMP && (x->ireg || x->mem_indexed);
}

static int collect_targets(struct elf_image *img, struct code *c)
{
	size_t i, found = 0;
	bool dispatch = false;
	int r;

	for (i = 0; i < c->n; i++) {
		const struct ins *x = &c->v[i];

		if (x->flow == FL_JCC || x->flow == FL_JMP || x->flow == FL_CALL) {
			r = add_target(c, x->target);
			if (r)
				return r;
		}
		if (local_indirect(x) && !dispatch) {
			dispatch = true;
			c->unknown_at = x->addr;
		}
	}
	if (dispatch) {
		for (i = 0; i < c->n; i++) {
			const struct ins *x = &c->v[i];

			if (!x->has_mem || !data_addr(img, x->mem))
				continue;
			r = table_targets(img, c, x->mem, &found);
			if (r)
				return r;
		}
		c->unknown_indirect = found == 0;
	}
	if (c->ntargets)
		qsort(c->targets, c->ntargets, sizeof(*c->targets), u64_cmp);
	return 0;
}

static void code_free(struct code *c)
{
	size_t i;

	for (i = 0; i < c->nr; i++)
		free(c->r[i].bytes);
	free(c->v);
	free(c->targets);
	memset(c, 0, sizeof(*c));
}

static int add_range(struct elf_image *img, struct code *c, uint64_t lo,
		     uint64_t hi)
{
	struct range *r;

	if (c->nr == MAX_RANGES || hi <= lo || hi - lo > (64u << 20))
		return c->nr == MAX_RANGES ? 0 : -EINVAL;
	r = &c->r[c->nr];
	r->bytes = malloc(hi - lo);
	if (!r->bytes)
		return -ENOMEM;
	if (elf_image__read(img, lo, r->bytes, hi - lo) != 0) {
		free(r->bytes);
		r->bytes = NULL;
		return -ENOENT;
	}
	r->lo = lo;
	r->hi = hi;
	c->nr++;
	return 0;
}

static bool overlaps(const struct code *c, uint64_t lo, uint64_t hi)
{
	size_t i;

	for (i = 0; i < c->nr; i++)
		if (lo < c->r[i].hi && hi > c->r[i].lo)
			return true;
	return false;
}

static int ins_cmp(const void *a, const void *b)
{
	const struct ins *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/*
 * Load and decode [@lo, @hi) plus the rest of the function that starts at
 * @lo: its `.cold` part(s), or, when @lo is a `.cold` part, its hot parent
 * and siblings. @t may be NULL (no symbols: just the range).
 */
static int code_load(struct elf_image *img, const struct symtab *t,
		     uint64_t lo, uint64_t hi, struct code *c)
{
	const struct fsym *f = t ? symtab_at(t, lo) : NULL;
	size_t i;
	csh h;
	int r;

	memset(c, 0, sizeof(*c));
	r = add_range(img, c, lo, hi);
	if (r)
		return r;
	if (f) {
		char base[128];
		const char *cold = strstr(f->name, ".cold");

		errbuf_set(c->name, sizeof(c->name), "%s", f->name);
		/* the site may be in the cold part: then its hot parent jumps
		 * into it */
		errbuf_set(base, sizeof(base), "%.*s", cold ? (int)(cold - f->name) :
			(int)strlen(f->name), f->name);
		for (i = 0; i < t->n; i++) {
			const struct fsym *s = &t->v[i];

			if (!s->size || overlaps(c, s->vaddr, s->vaddr + s->size) ||
			    !(strcmp(s->name, base) == 0 ||
			      is_cold_of(s->name, base) ||
			      cold_of_any(t, f, s->name)))
				continue;
			r = add_range(img, c, s->vaddr, s->vaddr + s->size);
			if (r && r != -ENOENT)
				goto fail;
		}
	}
	r = cs_new(&h);
	if (r)
		goto fail;
	for (i = 0; i < c->nr && !r; i++)
		r = sweep_range(h, c, i);
	cs_close(&h);
	/* the cold part usually lies below the hot one; ranges don't overlap */
	if (!r && c->n)
		qsort(c->v, c->n, sizeof(*c->v), ins_cmp);
	if (!r)
		r = collect_targets(img, c);
	if (!r)
		return 0;
fail:
	code_free(c);
	return r;
}

/* Index of the instruction at @a, or -1 (c->v is sorted by address). */
static long ins_index(const struct code *c, uint64_t a)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (c->v[m].addr < a)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < c->n && c->v[lo].addr == a ? (long)lo : -1;
}

/* "mnemonic operands" of the instruction at @a, from the loaded bytes. */
static void code_text(const struct code *c, uint64_t a, char *buf, size_t len)
{
	size_t i;
	csh h;

	errbuf_set(buf, len, "?");
	for (i = 0; i < c->nr; i++) {
		const struct range *r = &c->r[i];
		cs_insn *in;

		if (a < r->lo || a >= r->hi)
			continue;
		if (cs_new(&h) != 0)
			return;
		in = decode1(h, r->bytes + (a - r->lo), (size_t)(r->hi - a), a);
		if (in) {
			errbuf_set(buf, len, "%s%s%s", in->mnemonic,
				in->op_str[0] ? " " : "", in->op_str);
			cs_free(in, 1);
		}
		cs_close(&h);
		return;
	}
}

int placement__insn_text(struct elf_image *img, uint64_t vaddr, char *buf,
			 size_t len, size_t *insn_len)
{
	uint8_t b[MAX_INSN];
	cs_insn *in;
	size_t n;
	csh h;

	/* near the end of a segment fewer bytes are readable */
	for (n = MAX_INSN; n > 0; n--)
		if (elf_image__read(img, vaddr, b, n) == 0)
			break;
	if (!n)
		return -ENOENT;
	if (cs_new(&h) != 0)
		return -ENOMEM;
	in = decode1(h, b, n, vaddr);
	if (!in) {
		cs_close(&h);
		return -EINVAL;
	}
	errbuf_set(buf, len, "%s%s%s", in->mnemonic, in->op_str[0] ? " " : "",
		in->op_str);
	if (insn_len)
		*insn_len = in->size;
	cs_free(in, 1);
	cs_close(&h);
	return 0;
}

static const char *flow_name(uint8_t f)
{
	switch (f) {
	case FL_JCC: return "conditional jump";
	case FL_JMP: return "jump";
	case FL_IJMP: return "indirect jump";
	case FL_CALL: return "call";
	case FL_ICALL: return "indirect call";
	case FL_RET: return "return";
	case FL_TRAP: return "trap";
	}
	return "instruction";
}

/* ---- drop sites -------------------------------------------------------- */

/*
 * From instruction @i on, the first emulated instruction of the same
 * basic block with no target in (start, it], at most @max bytes on.
 * With @from_self the instruction @i itself may be chosen. Returns its
 * index, or -1 with the reason in @why.
 */
static long block_scan(const struct code *c, long i, bool from_self,
		       uint64_t max, char *why, size_t whylen)
{
	uint64_t start = c->v[i].addr;
	char text[96];
	long j;

	for (j = i; j < (long)c->n; j++) {
		const struct ins *x = &c->v[j];

		if (j > i && (x->range != c->v[j - 1].range ||
			      x->addr != c->v[j - 1].addr + c->v[j - 1].len)) {
			errbuf_set(why, whylen, "end of decoded code at 0x%lx",
				(unsigned long)x->addr);
			return -1;
		}
		if (x->addr - start > max) {
			errbuf_set(why, whylen, "no emulated instruction within %lu "
				"bytes", (unsigned long)max);
			return -1;
		}
		if (j > i && is_target(c, x->addr)) {
			code_text(c, x->addr, text, sizeof(text));
			errbuf_set(why, whylen, "0x%lx `%s` is a branch target before "
				"any emulated instruction", (unsigned long)x->addr,
				text);
			return -1;
		}
		if ((j > i || from_self) && x->kind == PLACEMENT_EMULATED)
			return j;
		if (x->flow != FL_NONE) {
			code_text(c, x->addr, text, sizeof(text));
			errbuf_set(why, whylen, "the block ends at 0x%lx `%s` (%s, "
				"%s)", (unsigned long)x->addr, text,
				flow_name(x->flow),
				placement_kind__name(x->kind));
			return -1;
		}
	}
	errbuf_set(why, whylen, "end of the function");
	return -1;
}

int placement__equivalent(struct elf_image *img, uint64_t site_vaddr,
			  uint64_t func_lo, uint64_t func_hi,
			  uint64_t *probe_vaddr, char *why, size_t whylen)
{
	char site_text[96], cand_text[96], reason[192];
	struct symtab t;
	struct code c;
	long i, j;
	int r;

	if (!img || !probe_vaddr || site_vaddr < func_lo || site_vaddr >= func_hi) {
		errbuf_set(why, whylen, "site 0x%lx is outside its function "
			"[0x%lx, 0x%lx)", (unsigned long)site_vaddr,
			(unsigned long)func_lo, (unsigned long)func_hi);
		return -EINVAL;
	}
	*probe_vaddr = site_vaddr;
	r = symtab_load(img, &t);
	if (r) {
		errbuf_set(why, whylen, "reading the symbols: %s", strerror(-r));
		return r;
	}
	r = code_load(img, &t, func_lo, func_hi, &c);
	free(t.v);
	if (r) {
		errbuf_set(why, whylen, "cannot read the code of [0x%lx, 0x%lx): %s",
			(unsigned long)func_lo, (unsigned long)func_hi,
			strerror(-r));
		return r;
	}
	i = ins_index(&c, site_vaddr);
	if (i < 0) {
		errbuf_set(why, whylen, "0x%lx is not an instruction boundary of %s "
			"(linear disassembly from 0x%lx)",
			(unsigned long)site_vaddr, c.name[0] ? c.name : "?",
			(unsigned long)func_lo);
		code_free(&c);
		return -EINVAL;
	}
	code_text(&c, site_vaddr, site_text, sizeof(site_text));
	if (c.v[i].kind == PLACEMENT_EMULATED) {
		errbuf_set(why, whylen, "kept: `%s` is emulated", site_text);
		goto out;
	}
	if (c.incomplete) {
		errbuf_set(why, whylen, "kept `%s` (%s): %s does not fully decode "
			"(at 0x%lx)", site_text, placement_kind__name(c.v[i].kind),
			c.name, (unsigned long)c.incomplete_at);
		goto out;
	}
	if (c.unknown_indirect) {
		errbuf_set(why, whylen, "kept `%s` (%s): %s has an indirect jump at "
			"0x%lx whose targets are unknown", site_text,
			placement_kind__name(c.v[i].kind), c.name,
			(unsigned long)c.unknown_at);
		goto out;
	}
	j = block_scan(&c, i, false, PLACEMENT_MAX_DISTANCE, reason,
		       sizeof(reason));
	if (j < 0) {
		errbuf_set(why, whylen, "kept `%s` (%s): %s", site_text,
			placement_kind__name(c.v[i].kind), reason);
		goto out;
	}
	*probe_vaddr = c.v[j].addr;
	code_text(&c, c.v[j].addr, cand_text, sizeof(cand_text));
	errbuf_set(why, whylen, "moved +%lu from `%s` (%s) to `%s` (emulated), "
		"same basic block", (unsigned long)(c.v[j].addr - site_vaddr),
		site_text, placement_kind__name(c.v[i].kind), cand_text);
out:
	code_free(&c);
	return 0;
}

/* ---- take_gil: calls and where they return ----------------------------- */

/* Is the base of @name (up to '@' or '.': "pthread_cond_timedwait@plt",
 * "PyCOND_TIMEDWAIT.constprop.0") one of @list? */
static bool base_is(const char *name, const char *const *list, size_t n)
{
	size_t len, i;

	if (*name == '*')   /* "*pthread_cond_timedwait@got": -fno-plt call */
		name++;
	len = strcspn(name, "@.");

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncmp(name, list[i], len) == 0)
			return true;
	return false;
}

/*
 * COND_TIMED_WAIT's blocking call (Python/ceval_gil.h 3.6-3.11,
 * ceval_gil.c 3.12-3.13 -> PyCOND_TIMEDWAIT, Python/condvar.h). On every
 * build measured here (pyenv 3.6-3.13, Debian 12's python3.11 and
 * libpython3.11) gcc inlined the helper and take_gil calls
 * pthread_cond_timedwait@plt itself: 3.8-3.13 right after a call to
 * _PyThread_cond_after (thread_pthread.h), Debian's LTO build after an
 * inlined clock_gettime. Other builds may call the helper.
 */
static bool wait_name(const char *name)
{
	static const char *const names[] = {
		"pthread_cond_timedwait", "__pthread_cond_timedwait",
		"pthread_cond_timedwait64", "__pthread_cond_timedwait64",
		"pthread_cond_clockwait", "__pthread_cond_clockwait",
		"__pthread_cond_clockwait64",
		"_PyThread_cond_timedwait", /* thread_pthread.h, 3.8-3.13 */
		"PyCOND_TIMEDWAIT",         /* condvar.h Py_LOCAL_INLINE, 3.6-3.7 */
	};

	return base_is(name, names, sizeof(names) / sizeof(names[0]));
}

static bool unlock_name(const char *name)
{
	static const char *const names[] = {
		"pthread_mutex_unlock", "__pthread_mutex_unlock",
	};

	return base_is(name, names, sizeof(names) / sizeof(names[0]));
}

/* Name of what the call @x calls, or false. */
static bool callee_name(struct elf_image *img, const struct symtab *t,
			struct gotmap *g, const struct ins *x, char *buf,
			size_t len)
{
	const struct fsym *f;
	const char *n;
	uint64_t slot;

	if (x->flow == FL_CALL) {
		f = symtab_at(t, x->target);
		if (f) {
			errbuf_set(buf, len, "%s", f->name);
			return true;
		}
		if (plt_slot(img, x->target, &slot) != 0)
			return false;
		got_load(img, g);
		n = got_name(g, slot);
		if (!n)
			return false;
		errbuf_set(buf, len, "%s@plt", n);
		return true;
	}
	if (x->flow == FL_ICALL && x->mem_rip) {  /* -fno-plt: call *slot(%rip) */
		got_load(img, g);
		n = got_name(g, x->mem);
		if (!n)
			return false;
		errbuf_set(buf, len, "*%s@got", n);
		return true;
	}
	return false;
}

static void fill_site(struct elf_image *img, const struct code *c, long k,
		      const char *callee, struct wait_site *w)
{
	const struct ins *x = &c->v[k];
	long j = -1;

	memset(w, 0, sizeof(*w));
	w->call_vaddr = x->addr;
	w->ret_vaddr = x->addr + x->len;
	w->wake_vaddr = w->ret_vaddr;
	errbuf_set(w->callee, sizeof(w->callee), "%s", callee);
	if (k + 1 < (long)c->n && c->v[k + 1].addr == w->ret_vaddr &&
	    c->v[k + 1].range == x->range) {
		w->ret_is_target = is_target(c, w->ret_vaddr);
		j = block_scan(c, k + 1, true, PLACEMENT_MAX_DISTANCE, NULL, 0);
	}
	if (j >= 0) {
		w->wake_vaddr = c->v[j].addr;
		w->wake_emulated = true;
	}
	elf_image__vaddr_to_offset(img, w->call_vaddr, &w->call_offset);
	elf_image__vaddr_to_offset(img, w->ret_vaddr, &w->ret_offset);
	elf_image__vaddr_to_offset(img, w->wake_vaddr, &w->wake_offset);
}

/*
 * From the instruction after call @k, does straight-line code reach a
 * `ret` without another call? Follows fall-through of conditional jumps
 * (their taken side is an error path) and direct jumps.
 */
static bool reaches_return(const struct code *c, long k)
{
	uint64_t a = c->v[k].addr + c->v[k].len;
	int steps;

	for (steps = 0; steps < HELD_WALK_MAX; steps++) {
		long i = ins_index(c, a);
		const struct ins *x;

		if (i < 0)
			return false;
		x = &c->v[i];
		switch (x->flow) {
		case FL_RET:
			return true;
		case FL_NONE:
		case FL_JCC:
			a = x->addr + x->len;
			break;
		case FL_JMP:
			a = x->target;
			break;
		default:
			return false;
		}
	}
	return false;
}

typedef bool (*call_pred)(const char *name);

static int find_calls(struct elf_image *img, uint64_t lo, uint64_t hi,
		      call_pred want, bool need_return, struct wait_site *out,
		      size_t max, size_t *n)
{
	struct gotmap g = { 0 };
	struct symtab t;
	struct code c;
	char name[128];
	size_t i, found = 0;
	int r;

	if (!img || !n || hi <= lo || (max && !out))
		return -EINVAL;
	*n = 0;
	r = symtab_load(img, &t);
	if (r)
		return r;
	r = code_load(img, &t, lo, hi, &c);
	if (r) {
		free(t.v);
		return r;
	}
	for (i = 0; i < c.n; i++) {
		const struct ins *x = &c.v[i];

		if (x->flow != FL_CALL && x->flow != FL_ICALL)
			continue;
		if (!callee_name(img, &t, &g, x, name, sizeof(name)) ||
		    !want(name))
			continue;
		if (need_return && !reaches_return(&c, (long)i))
			continue;
		if (found < max)
			fill_site(img, &c, (long)i, name, &out[found]);
		found++;
	}
	*n = found < max ? found : max;
	got_free(&g);
	code_free(&c);
	free(t.v);
	return found > max ? -ENOSPC : 0;
}

int placement__take_wait(struct elf_image *img, uint64_t take_lo,
			 uint64_t take_hi, struct wait_site *out, size_t max,
			 size_t *n)
{
	return find_calls(img, take_lo, take_hi, wait_name, false, out, max, n);
}

int placement__take_held(struct elf_image *img, uint64_t take_lo,
			 uint64_t take_hi, struct wait_site *out, size_t max,
			 size_t *n)
{
	return find_calls(img, take_lo, take_hi, unlock_name, true, out, max, n);
}
