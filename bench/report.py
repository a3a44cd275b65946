#!/usr/bin/env python3
"""Turns the key=value results of bench/run.sh into docs/benchmarks.md (written to stdout).

The "what limits it" paragraphs are derived from the figures of the same run: the CPU time the
server, PostgreSQL, the load generator and everything else used during each measured run, the
disk's fsync latency, and PostgreSQL's commit count.
"""
import sys

R = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        R[k] = v


def g(key, default=None):
    v = R.get(key)
    if v is None:
        return default
    try:
        return float(v)
    except ValueError:
        return v


NPROC = g("machine.nproc", 2)
FSYNC50 = g("fsync.p50_us", 0)
FSYNC99 = g("fsync.p99_us", 0)
ENGINES = [("sqlite", "SQLite"), ("postgres", "PostgreSQL")]
TARGET_IMPORT, TARGET_READ, TARGET_CRUD, TARGET_P99_MS = 5000, 8000, 2000, 10
out = []
w = out.append


def n(x, d=0):
    if x is None or isinstance(x, str):
        return "n/a"
    return f"{x:,.{d}f}"


def ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f} ms"


def met(ok):
    return "n/a" if ok is None else ("**met**" if ok else "not met")


def split(key):
    """CPU split of one measured run, in cores (CPU seconds per wall second)."""
    wall = g(key + ".wall_s")
    if not wall:
        return None
    s = {k: (g(f"{key}.cpu_{k}_s", 0) or 0) / wall for k in ("server", "postgres", "loadgen", "machine")}
    s["other"] = max(0.0, s["machine"] - s["server"] - s["postgres"] - s["loadgen"])
    s["wall"] = wall
    return s


def split_text(s, gen="load generator", server="server"):
    return (f"{server} {s['server']:.2f} cores, PostgreSQL {s['postgres']:.2f}, {gen} {s['loadgen']:.2f}, "
            f"other processes {s['other']:.2f}; machine busy {s['machine']:.2f} of {NPROC:.0f} cores")


def saturated(s):
    return s is not None and s["machine"] >= 0.8 * NPROC


trial = g("run.trial") == 1
w("# Wardline benchmarks")
w("")
if trial:
    w("> **TRIAL RUN on a shared, noisy machine.** Other engineers were building and running tests on the same")
    w("> 2 cores during this run (see \"other processes\" in each CPU split and the load averages below), so these")
    w("> figures prove that the harness works end to end; they are not the figures to quote. Re-run")
    w("> `bench/run.sh` on a quiet machine for those.")
    w("")
w("Written by `bench/run.sh` (one command; raw figures of the last run in `bench/last-results.txt`). Benchmarks are")
w("not timed tests: nothing here fails a build. Load generator and server share the machine, as the targets require.")
w("")
w("## Machine and run")
w("")
w("| | |")
w("|---|---|")
for k, label in [("date", "date"), ("nproc", "cores (`nproc`)"), ("cpu", "CPU"), ("mem_gib", "memory (GiB)"),
                 ("kernel", "kernel"), ("fs", "disk of the stores"), ("dotnet_runtime", ".NET runtime"), ("dotnet_sdk", ".NET SDK"),
                 ("postgres", "PostgreSQL"), ("wrk", "wrk"), ("h2load", "h2load"), ("commit", "Wardline commit"),
                 ("loadavg_start", "load average at start"), ("loadavg_end", "load average at end")]:
    w(f"| {label} | {R.get('machine.' + k, 'n/a')} |")
w(f"| fsync latency (4 KiB write + fsync, python, same disk) | p50 {ms(FSYNC50)}, p99 {ms(FSYNC99)}, mean {ms(g('fsync.mean_us'))} |")
w(f"| run length | {n(g('run.elapsed_s'))} s; HTTP runs: {n(g('run.warmup_s'))} s warm-up, then {n(g('run.duration_s'))} s measured |")
w("")
w("SQLite runs with WAL and `synchronous=FULL`; PostgreSQL 15+ with `fsync=on`, `synchronous_commit=on` (defaults),")
w("`shared_buffers=256MB`, on 127.0.0.1, on the same disk. Every FHIR request waits until its access record is durable")
w("(group-committed by `Pipeline/AccessLog.cs`) before the response leaves: that is one commit (SQLite: an fsync of the WAL;")
w("PostgreSQL: a WAL flush) per group of concurrent requests.")
w("")

# ---------------------------------------------------------------- import
w("## 1. Synthea import (resources/s)")
w("")
w("The 40 Synthea bundles (`/work/shared/data/synthea`) into a fresh store. In-process: `bench/Wardline.Bench` imports")
w("them through `RecordImporter`, one bundle after another, in fresh stores round after round; round 1 is cold (JIT, first")
w("touches), later rounds warm. CLI: `wardline import --data DIR` (or `--db`) as an operator runs it, a cold process; its")
w("own last line gives the rate.")
w("")
w(f"| engine | in-process cold (round 1) | in-process warm (best of later rounds) | JSON parse alone (warm; overlapped with the writes) | CLI `wardline import` | target | met |")
w("|---|---|---|---|---|---|---|")
for e, name in ENGINES:
    rounds = sorted({int(k.split(".")[2][1:]) for k in R if k.startswith(f"{e}.inproc.r") and k.endswith(".rate")})
    cold = g(f"{e}.inproc.r1.rate")
    warm_r = max(rounds[1:], key=lambda r: g(f"{e}.inproc.r{r}.rate"), default=None)
    warm = g(f"{e}.inproc.r{warm_r}.rate") if warm_r else None
    parse = (g(f"{e}.inproc.r{warm_r}.parse_ms", 0) / g(f"{e}.inproc.r{warm_r}.ms", 1)) if warm_r else None
    cli = g(f"{e}.cli.rate")
    best = max([x for x in (warm, cli) if x is not None], default=None)
    w(f"| {name} | {n(cold)}/s ({n(g(f'{e}.inproc.r1.resources'))} in {n(g(f'{e}.inproc.r1.ms', 0) / 1000, 1)} s) "
      f"| {n(warm)}/s | {'n/a' if parse is None else f'{parse:.0%}'} | {n(cli)}/s ({n(g(f'{e}.cli.resources'))} in {g(f'{e}.cli.seconds', 'n/a')} s) "
      f"| >= {TARGET_IMPORT:,}/s | {met(None if best is None else best >= TARGET_IMPORT)} |")
w("")
w("**What limits it.**")
for e, name in ENGINES:
    s = split(f"{e}.inproc")
    c = split(f"{e}.cli")
    rounds = sorted({int(k.split(".")[2][1:]) for k in R if k.startswith(f"{e}.inproc.r") and k.endswith(".rate")})
    warm_r = rounds[-1] if len(rounds) > 1 else None
    if s is None:
        continue
    txt = (f"*{name}:* during the in-process rounds the importer process used {s['loadgen']:.2f} cores "
           f"({split_text(s, gen='importer', server='(no server)').split(', ', 1)[1]}).")
    if s["loadgen"] >= 0.8 and s["loadgen"] < 1.3:
        txt += (" About one core kept busy: the writes are sequential (one bundle, one transaction at a time) and "
                "CPU-bound in the process; only parsing and per-entry encryption use the second core.")
    if warm_r:
        parse = g(f"{e}.inproc.r{warm_r}.parse_ms", 0) / g(f"{e}.inproc.r{warm_r}.ms", 1)
        txt += (f" Firely JSON parsing alone takes {parse:.0%} of a warm round's time; the import runs it on the other core ahead of the writer, and the rest is validation, "
                "reference resolution, encryption (a data key per resource), blind-index HMACs and the inserts.")
    commits = 40
    txt += (f" Durability is not the limit: {commits} bundles are {commits} transactions, about "
            f"{commits * FSYNC50 / 1000:.0f} ms of fsync at this disk's p50.")
    if e == "postgres":
        txt += f" PostgreSQL itself used {s['postgres']:.2f} cores: the inserts' round trips and index maintenance."
    if s["other"] > 0.3:
        txt += f" Other processes took {s['other']:.2f} cores meanwhile, so the figures are depressed by that much contention."
    if c is not None:
        cold = g(f"{e}.inproc.r1.rate")
        txt += (f" The CLI import ({n(g(f'{e}.cli.rate'))}/s) is a cold process like round 1 ({n(cold)}/s), plus the "
                "progress display.")
    w("")
    w(txt)
w("")

# ---------------------------------------------------------------- reads
w("## 2. Read by id over HTTP (wrk)")
w("")
w("`GET /fhir/<type>/<id>` with a bearer token, ids picked at random (`bench/lua/read.lua`) from the Patient and")
w("Observation ids a search returned beforehand (`_count=1000`). wrk `-t1 -c1` and `-t2 -c32`, latency from wrk's")
w("`--latency` histogram in the script's `done()`.")
w("")
w("| engine | connections | req/s | p50 | p90 | p99 | non-2xx / socket errors | target | met |")
w("|---|---|---|---|---|---|---|---|---|")
for e, name in ENGINES:
    for c in ("1", "32"):
        k = f"{e}.read{c}"
        errs = sum(g(f"{k}.errors_{x}", 0) or 0 for x in ("connect", "read", "write", "timeout"))
        rps = g(f"{k}.rps")
        tgt = f">= {TARGET_READ:,} req/s" if c == "32" else "(latency)"
        ok = (rps >= TARGET_READ if rps is not None else None) if c == "32" else None
        w(f"| {name} | {c} | {n(rps)} | {ms(g(f'{k}.p50_us'))} | {ms(g(f'{k}.p90_us'))} | {ms(g(f'{k}.p99_us'))} "
          f"| {n(g(f'{k}.errors_status', 0))} / {n(errs)} | {tgt} | {met(ok)} |")
w("")
w("**What limits it.**")
for e, name in ENGINES:
    s1, s32 = split(f"{e}.read1"), split(f"{e}.read32")
    if s1 is None or s32 is None:
        continue
    req1, req32 = g(f"{e}.read1.requests", 0), g(f"{e}.read32.requests", 0)
    mean1 = g(f"{e}.read1.mean_us", 0)
    txt = f"*{name}, 1 connection:* mean latency {ms(mean1)} per request."
    if e == "sqlite":
        txt += (f" Each read waits for its access records (decision and outcome, written together after the read "
                f"executes) to commit, and with one client there is nothing to group: one WAL fsync per request "
                f"({ms(FSYNC50)} at this disk's p50), {FSYNC50 / max(mean1, 1):.0%} of the mean latency here, so at one "
                f"connection the time goes to CPU work and hand-offs between threads, not to the disk.")
    else:
        cpr = g(f"{e}.read1.pg_commits", 0) / max(req1, 1)
        txt += (f" PostgreSQL counted {cpr:.2f} transactions per request: the read's autocommit SELECT and the commit "
                f"of its access records (decision and outcome together; nothing to group at one connection). Each is a "
                f"round trip; the commit is a WAL flush ({ms(FSYNC50)} fsync p50).")
    cpu1 = s1['server'] * s1['wall'] / max(req1, 1) * 1e6
    cpu32 = s32['server'] * s32['wall'] / max(req32, 1) * 1e6
    txt += f" CPU: {split_text(s1)}; server CPU per request {cpu1:,.0f} µs"
    if cpu1 > 2 * cpu32:
        txt += (f", {cpu1 / max(cpu32, 1):.0f}x the {cpu32:,.0f} µs it costs at 32 connections: at low load each request's "
                "hand-offs (request -> access-log writer -> request) wake idle thread-pool workers, which spin before "
                "sleeping, so CPU per request is not a fixed cost.")
    else:
        txt += "."
    w("")
    w(txt)
    cpu_req = s32["server"] * s32["wall"] / max(req32, 1) * 1e6
    gen_req = s32["loadgen"] * s32["wall"] / max(req32, 1) * 1e6
    pg_req = s32["postgres"] * s32["wall"] / max(req32, 1) * 1e6
    txt = f"*{name}, 32 connections:* CPU {split_text(s32)}."
    if saturated(s32):
        per = cpu_req + gen_req + pg_req
        txt += (f" The machine is CPU-saturated, so throughput is CPU per request: server {cpu_req:,.0f} µs, "
                f"PostgreSQL {pg_req:,.0f} µs, wrk {gen_req:,.0f} µs; at {per:,.0f} µs per request {NPROC:.0f} cores give at most "
                f"about {NPROC * 1e6 / max(per, 1):,.0f} req/s even with nothing else running. ")
        budget = NPROC * 1e6 / TARGET_READ - gen_req - pg_req
        if budget > 0:
            txt += (f"Reaching {TARGET_READ:,} req/s on {NPROC:.0f} cores with wrk on them needs the server under about "
                    f"{budget:,.0f} µs of CPU per read ({cpu_req / budget:.1f}x less than now).")
        else:
            txt += (f"{TARGET_READ:,} req/s is out of reach while PostgreSQL and wrk alone spend {pg_req + gen_req:,.0f} µs per "
                    f"read (the budget is {NPROC * 1e6 / TARGET_READ:,.0f} µs for everything).")
    else:
        txt += (f" The machine is not CPU-saturated (server {cpu_req:,.0f} µs of CPU per request), so requests also spend "
                "time waiting: for the group commit in flight to finish before theirs can start, and, on SQLite, for "
                "the single write gate that the access log shares with resource writes.")
    if e == "postgres":
        commits = g(f"{e}.read32.pg_commits", 0)
        txt += (f" PostgreSQL counted {commits / max(s32['wall'], 1):,.0f} transactions/s, {commits / max(req32, 1):.2f} per "
                "request: the access-log group commits are few, but every query is an autocommit transaction, all of it "
                "PostgreSQL CPU on the same two cores.")
    if s32["other"] > 0.3:
        txt += f" Other processes took {s32['other']:.2f} cores during this run."
    w("")
    w(txt)
w("")

# ---------------------------------------------------------------- fixed rate
w("## 3. Read latency at a fixed 1,000 req/s (h2load)")
w("")
w("wrk cannot hold a rate, so this uses h2load (Debian `nghttp2-client`) over HTTP/1.1: `h2load --h1 -c10 --rps 100`")
w("(10 connections, each sending 100 req/s = 1,000 req/s), the same random read-by-id URLs, "
  f"`--warm-up-time {n(g('run.warmup_s'))}s -D {n(g('run.duration_s'))}s`. Percentiles are computed from h2load's per-request")
w("`--log-file` (warm-up excluded). A client whose previous request is late sends the next one late, so the latencies")
w("are measured from send, not from the ideal schedule (mild coordinated omission; the achieved rate shows it).")
w("")
w(f"| engine | achieved req/s | p50 | p90 | p99 | max | non-2xx | target p99 | met |")
w("|---|---|---|---|---|---|---|---|---|")
for e, name in ENGINES:
    k = f"{e}.fixed"
    p99 = g(f"{k}.p99_us")
    w(f"| {name} | {n(g(f'{k}.rps'))} | {ms(g(f'{k}.p50_us'))} | {ms(g(f'{k}.p90_us'))} | {ms(p99)} | {ms(g(f'{k}.max_us'))} "
      f"| {n(g(f'{k}.errors'))} | < {TARGET_P99_MS} ms | {met(None if p99 is None else p99 < TARGET_P99_MS * 1000)} |")
w("")
w("**What limits it.**")
for e, name in ENGINES:
    s = split(f"{e}.fixed")
    if s is None:
        continue
    p50, p99 = g(f"{e}.fixed.p50_us", 0), g(f"{e}.fixed.p99_us", 0)
    txt = f"*{name}:* CPU {split_text(s, gen='h2load')}."
    if p50 < 3 * FSYNC50:
        txt += (f" The median read ({ms(p50)}) is mostly the wait for a durable access record (fsync p50 {ms(FSYNC50)}); "
                f"the tail ({ms(p99)}) follows the disk's fsync tail (p99 {ms(FSYNC99)}) plus requests that arrive while a "
                "group commit is in flight and wait for the next one.")
    else:
        txt += (f" The median read ({ms(p50)}) is {p50 / max(FSYNC50, 1):.0f}x the disk's fsync p50 ({ms(FSYNC50)}), so the "
                "disk is not what sets it: requests wait for CPU (server, PostgreSQL and h2load share the cores) and queue "
                "behind the group commit in flight, which each request must wait out before its own record is written. "
                f"The tail ({ms(p99)}) adds the fsync tail (p99 {ms(FSYNC99)}) and scheduling delays.")
    if s["other"] > 0.3:
        txt += (f" Other processes took {s['other']:.2f} cores: a request that finds both cores busy waits for the "
                "scheduler, which shows in p99 first.")
    rate = g(f"{e}.fixed.rps", 0)
    if rate < 950:
        txt += (f" **The server did not sustain 1,000 req/s here (it reached {rate:,.0f}), so these are the latencies of "
                "an overloaded server, queueing included.**")
    w("")
    w(txt)
w("")

# ---------------------------------------------------------------- CRUD
w("## 4. Create/read/update/delete mix over 9 resource types (wrk)")
w("")
w("The shape of Health Samurai's public FHIR server benchmark: Patient, Practitioner, Organization, Encounter,")
w("Observation, Condition, MedicationRequest, Procedure and AllergyIntolerance (valid R4 JSON; clinical ones reference")
w("an existing Patient). `bench/lua/crud.lua` creates a resource, reads it, updates it and deletes it, so the four")
w("operations run in equal numbers; wrk `-t2 -c32`.")
w("")
w("| engine | req/s | creates / reads / updates / deletes | p50 | p99 | non-2xx | target | met |")
w("|---|---|---|---|---|---|---|---|")
for e, name in ENGINES:
    k = f"{e}.crud"
    rps = g(f"{k}.rps")
    ops = " / ".join(n(g(f"{k}.{o}")) for o in ("creates", "reads", "updates", "deletes"))
    w(f"| {name} | {n(rps)} | {ops} | {ms(g(f'{k}.p50_us'))} | {ms(g(f'{k}.p99_us'))} | {n(g(f'{k}.errors_status'))} "
      f"| >= {TARGET_CRUD:,} req/s | {met(None if rps is None else rps >= TARGET_CRUD)} |")
w("")
w("Published peers for context only (Health Samurai's benchmark, 8 vCPU, a different machine and load generator, not")
w("this run; none of them can run here, so there is no same-run peer): Aidbox 4,039 req/s, HAPI FHIR 3,911 req/s,")
w("Medplum 1,353 req/s.")
w("")
w("**What limits it.**")
for e, name in ENGINES:
    s = split(f"{e}.crud")
    if s is None:
        continue
    req = g(f"{e}.crud.requests", 0)
    cpu_req = s["server"] * s["wall"] / max(req, 1) * 1e6
    txt = f"*{name}:* CPU {split_text(s)}; server CPU per request {cpu_req:,.0f} µs."
    if e == "sqlite":
        writes = 0.75 * req / max(s["wall"], 1)
        txt += (f" Three of four requests write. SQLite has one writer: every write (resource versions and access "
                f"records alike) goes through one group-commit loop (`GroupCommitter`), each resource write in its own "
                f"savepoint, one WAL fsync per group. At {writes:,.0f} resource writes/s the loop's serial work per write "
                f"(current-version check outside it; inside: version, data-key, pointer and search-index rows) is what "
                f"the writes queue for, against a bare fsync of {ms(FSYNC50)}.")
        if not saturated(s):
            txt += (f" The machine was not CPU-saturated ({s['machine']:.2f} of {NPROC:.0f} cores busy), which points at "
                    "that serialisation, not CPU, as the limit.")
    else:
        commits = g(f"{e}.crud.pg_commits", 0)
        pg_req = s["postgres"] * s["wall"] / max(req, 1) * 1e6
        txt += (f" PostgreSQL counted {commits / max(s['wall'], 1):,.0f} transactions/s ({commits / max(req, 1):.2f} per "
                f"request: writes, access-log group commits and autocommit reads) and used {pg_req:,.0f} µs of CPU per request, more than the server's own: on two shared cores "
                "PostgreSQL's per-statement and per-transaction overhead is the larger half of the cost.")
    if saturated(s):
        txt += " The machine is CPU-saturated, so CPU per request decides the rate."
    if s["other"] > 0.3:
        txt += f" Other processes took {s['other']:.2f} cores during this run."
    w("")
    w(txt)
w("")
w("## How to run")
w("")
w("    bench/run.sh            # about 10-15 minutes; writes this file")
w("    bench/run.sh --trial    # marks the report as a trial on a shared machine")
w("")
w("Environment: `WARDLINE_PGPORT` (private PostgreSQL, default 55460), `WARDLINE_BENCH_PORT` (server, default 5461),")
w("`WARDLINE_BENCH_DURATION` / `WARDLINE_BENCH_WARMUP` (seconds, default 20 / 5), `WARDLINE_BENCH_ROUNDS` (in-process")
w("import rounds, default 3), `WARDLINE_BENCH_DATA` (bundles, default /work/shared/data/synthea).")
print("\n".join(out))
