/* SPDX-License-Identifier: MIT */
/*
 * placement: where exactly to put each GIL uprobe so that the kernel
 * emulates the probed instruction instead of single-stepping it.
 *
 * An x86-64 uprobe costs ~0.7 us per hit when the kernel emulates the
 * instruction (push, call, jmp, jcc, nop) and ~9.6 us when it must copy it
 * to the XOL page and single-step it (a rip-relative mov, sub $8,%rsp,
 * ret...). Measured on the project machine (notes/measured-here.md; issue 3).
 *
 * - placement__classify()/placement__emulated(): the kernel's rule for one
 *   instruction (see placement.c for the rule and its citation).
 * - placement__equivalent(): for a drop_gil site whose first instruction is
 *   single-stepped, the first emulated instruction a few bytes later that
 *   runs exactly when the site does (same basic block, no jump into the
 *   gap), at or before the block's first call.
 * - placement__take_wait(): inside take_gil, the calls that block on the
 *   GIL's condition variable (pthread_cond_timedwait, or CPython's helper)
 *   and the first emulated instruction after each returns.
 * - placement__take_held(): the calls to the final MUTEX_UNLOCK(gil->mutex)
 *   on the path to take_gil's return (GIL held, mutex released after).
 *
 * Instruction bytes come from the binary's file (elf_image__read); symbols
 * may come from its debug file. Decoding uses capstone.
 */
#ifndef GILTRACE_PLACEMENT_H
#define GILTRACE_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_image;

/* How the running kernel handles a uprobe on one instruction. */
enum placement_kind {
	PLACEMENT_EMULATED = 0, /* emulated in the trap handler (cheap) */
	PLACEMENT_SSTEP = 1,    /* single-stepped out of line (expensive) */
	PLACEMENT_REJECTED = 2, /* attach fails, or probing it would be unsafe */
};

const char *placement_kind__name(enum placement_kind k);

/*
 * Classify the instruction at the start of @code (@len bytes available,
 * at link-time address @vaddr). Fills @kind, @insn_len and, if @what is
 * not NULL, a short reason ("push %r15: push_setup_xol_ops"). Returns 0,
 * or -EINVAL when the bytes do not decode as an x86-64 instruction.
 */
int placement__classify(const uint8_t *code, size_t len, uint64_t vaddr,
			enum placement_kind *kind, size_t *insn_len,
			char *what, size_t whatlen);

/* Whether the kernel emulates the instruction at @code. Returns 0 or
 * -EINVAL (undecodable). */
int placement__emulated(const uint8_t *code, size_t len, uint64_t vaddr,
			bool *emulated, size_t *insn_len);

/*
 * Kernel version the rules are evaluated for. By default the running
 * kernel's (uname). Multi-byte NOPs are only emulated from 6.16 on.
 * Passing 0, 0 restores the default.
 */
void placement__set_kernel_version(unsigned int major, unsigned int minor);

/*
 * The function symbol containing @vaddr: its range [*lo, *hi) and name.
 * Returns 0 or -ENOENT.
 */
int placement__function_at(struct elf_image *img, uint64_t vaddr,
			   uint64_t *lo, uint64_t *hi, char *name,
			   size_t namelen);

/* Disassembly of the instruction at @vaddr ("je 0x42d82e"). Returns 0 or a
 * negative errno. @insn_len may be NULL. */
int placement__insn_text(struct elf_image *img, uint64_t vaddr, char *buf,
			 size_t len, size_t *insn_len);

/* How far placement__equivalent() looks past the site, in bytes. */
#define PLACEMENT_MAX_DISTANCE 64

/*
 * For a drop site at @site_vaddr inside the function [@func_lo, @func_hi)
 * (the symbol's range; its `.cold` part, if any, is found and analysed
 * too): the address to probe instead. The site itself when it is emulated;
 * else the first emulated instruction at most PLACEMENT_MAX_DISTANCE bytes
 * on such that
 *   - every instruction from the site up to it is not a branch, call, ret
 *     or trap (the candidate itself may be a jcc, jmp or call: it ends the
 *     block and runs once per run of the block), so the candidate is at or
 *     before the block's first call (drop_gil releases the GIL only after
 *     its MUTEX_LOCK call);
 *   - no direct branch or call of the function (hot and cold parts), and
 *     no entry of a jump table it uses, targets (site, candidate].
 * Otherwise the site itself, with the reason. @why (may be NULL) gets one
 * line saying what was chosen and why. Returns 0 (with *probe_vaddr set
 * even when nothing better was found) or a negative errno with the reason
 * in @why.
 */
int placement__equivalent(struct elf_image *img, uint64_t site_vaddr,
			  uint64_t func_lo, uint64_t func_hi,
			  uint64_t *probe_vaddr, char *why, size_t whylen);

/* A call inside take_gil, the instruction it returns to, and the first
 * emulated instruction that runs exactly when it returns. */
struct wait_site {
	uint64_t call_vaddr;   /* the call instruction (always emulated) */
	uint64_t call_offset;  /* its file offset (uprobe offset) */
	uint64_t ret_vaddr;    /* the instruction after the call */
	uint64_t ret_offset;
	uint64_t wake_vaddr;   /* first emulated instruction at/after ret_vaddr
				  in the same block; ret_vaddr if none */
	uint64_t wake_offset;
	bool wake_emulated;    /* false: wake_vaddr == ret_vaddr, single-stepped */
	bool ret_is_target;    /* ret_vaddr is also reached by a jump: a probe
				  there or at wake fires on other paths too */
	char callee[128];      /* "pthread_cond_timedwait@plt", "_PyThread_cond_timedwait" */
};

/*
 * The blocking path of take_gil: every call in [@take_lo, @take_hi) (and
 * in the symbol's `.cold` part) to the condition-variable timed wait of
 * COND_TIMED_WAIT (pthread_cond_timedwait / pthread_cond_clockwait through
 * the PLT, a -fno-plt GOT call, or CPython's helper _PyThread_cond_timedwait
 * 3.8-3.13 / PyCOND_TIMEDWAIT 3.6-3.7 when not inlined). Stores up to @max
 * in @out and their number in *@n. Returns 0, -ENOSPC when more than @max
 * were found (the first @max are stored), or another negative errno.
 * Finding none is not an error (*n == 0).
 */
int placement__take_wait(struct elf_image *img, uint64_t take_lo,
			 uint64_t take_hi, struct wait_site *out, size_t max,
			 size_t *n);

/*
 * Candidates for "take_gil holds the GIL and is about to return": the calls
 * to pthread_mutex_unlock from which straight-line code (following
 * fall-through of conditional jumps and direct jumps, no other call)
 * reaches take_gil's `ret`. wake_vaddr is then the first emulated
 * instruction after the mutex is released. Same conventions as
 * placement__take_wait().
 */
int placement__take_held(struct elf_image *img, uint64_t take_lo,
			 uint64_t take_hi, struct wait_site *out, size_t max,
			 size_t *n);

#endif
