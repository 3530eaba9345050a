# SPDX-License-Identifier: MIT
"""The binary and its command line: version, usage errors."""
import os
import re

from suite import test


@test("binary", budget=10)
def binary(ctx):
    ctx.require(os.access(ctx.gt, os.X_OK), "no executable giltrace at %s (build it: cmake -S . -B build && make -C build)" % ctx.gt)
    r = ctx.giltrace(["-V"], timeout=10)
    ctx.expect(r.rc == 0, "giltrace -V exits %s" % r.rc)
    ctx.expect(re.search(r"\b0\.1\.0\b", r.stdout + r.stderr), "giltrace -V does not print 0.1.0: %r" % (r.stdout + r.stderr)[:200])
    r2 = ctx.giltrace(["--version"], timeout=10)
    ctx.expect(r2.rc == 0 and r2.stdout == r.stdout, "--version differs from -V (rc %s)" % r2.rc)


@test("cli_help_examples", budget=10)
def help_examples(ctx):
    """
    --help shows usage and examples as written: argp re-wraps a line that is
    too long, which used to leave a word of an example alone at column 0.
    Every example line is a giltrace command or an indented continuation,
    and every option the examples use is described under OPTIONS.
    """
    r = ctx.giltrace(["--help"], timeout=10)
    ctx.require(r.rc == 0, "giltrace --help exits %s" % r.rc)
    lines = r.stdout.splitlines()
    ctx.require("EXAMPLES:" in lines and "OPTIONS:" in lines, "no EXAMPLES: or OPTIONS: heading in --help")
    ex = lines[lines.index("EXAMPLES:") + 1:]
    ex = ex[:ex.index("")] if "" in ex else ex
    ctx.expect(len(ex) >= 10, "only %d example lines" % len(ex))
    bad = [l for l in ex if not l.startswith("  ")]
    ctx.expect(not bad, "example lines wrapped by argp (too long): %r" % bad)
    opts = lines[lines.index("OPTIONS:"):]
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", "\n".join(l.split("#")[0] for l in ex)))
    missing = [o for o in sorted(used) if not any(re.search(r"(^|[ ,])%s\b" % re.escape(o), l) for l in opts)]
    ctx.expect(not missing, "options in the examples but not under OPTIONS: %s" % missing)


@test("cli_usage_errors", budget=20)
def usage_errors(ctx):
    """Bad command lines fail with a non-zero status and say why; no trace starts."""
    cases = [
        ([], "no -p and no command"),
        (["--bogus-option", "-p", "1"], "unknown option"),
        (["-p", "notapid"], "non-numeric PID"),
        (["-p", "1", "-d", "-3"], "negative duration"),
        (["-p", "1", "--top", "zero"], "non-numeric --top"),
        (["-p", "1", "--", "true"], "both -p and a command"),
    ]
    for args, what in cases:
        r = ctx.giltrace(args, timeout=10)
        ctx.expect(r.rc not in (0, None) and r.rc > 0, "%s (%s): exit %s, expected an error status%s" % (what, " ".join(args), r.rc, r.tail(2)))
        ctx.expect(r.stderr.strip(), "%s (%s): nothing on stderr" % (what, " ".join(args)))
        ctx.expect("Traceback" not in r.stderr and "Segmentation" not in r.stderr, "%s: crash output" % what)


@test("cli_json_stdout_refused_in_launch_mode", budget=20)
def json_stdout_launch(ctx):
    """--json - in launch mode is refused (stdout belongs to the command): 125, command not run."""
    marker = ctx.tmp("ran")
    r = ctx.giltrace(["--json", "-", "--", "sh", "-c", "touch %s" % marker], timeout=20)
    ctx.expect(r.rc == 125, "exit %s, expected 125 (giltrace's own failure in launch mode)%s" % (r.rc, r.tail(3)))
    # A usage error: argp's "Try `giltrace --help'" hint may follow.
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith("Try ")]
    ctx.expect(len(lines) == 1 and lines[0].startswith("giltrace: "), "stderr should be one 'giltrace: ' line: %r" % lines[:3])
    ctx.expect(re.search(r"json|stdout", r.stderr, re.I), "message does not mention --json/stdout: %r" % r.stderr.strip())
    ctx.expect(not os.path.exists(marker), "the command ran although the options were refused")
