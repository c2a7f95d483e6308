#!/usr/bin/env python3
"""The scale bench's driver (run by tests/cluster/scale-bench.sh on a cluster it started).

Creates unrelated pods, N Rollouts in 10 namespaces, runs the operator (a process of its own,
as its own user, so the apiserver's audit log attributes its requests), and measures by phase:

  steady  all Rollouts Succeeded, nothing changing, for --steady-seconds
  single  one Rollout gets a new version alone (time to first status write, time to complete)
  churn   10% of the Rollouts get a new version at once

Per phase: operator RSS (mean and peak from /proc/PID/status VmRSS, VmHWM), CPU seconds
(/proc/PID/stat utime+stime), API requests by verb and resource (the audit log, the operator's
user only), status writes, watch events the operator received for Rollouts (the apiserver's
apiserver_watch_events_total for rollouts minus the events this driver's own watch received:
the two are the only Rollout watchers), Prometheus queries per minute (Prometheus' own
prometheus_http_requests_total for the query handlers), latency from a spec.version change to
the first status write (the first watch event after the patch whose status differs) and time to
complete (phase Succeeded on the new stable version).

Only the standard library: it talks to the apiserver over HTTPS with the admin client cert.
Prints a table and writes JSON; a benchmark, never a timed test: it asserts no speed.
"""
import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

GROUP = "tollgate.dev"
VERSION = "v1alpha1"


def log(msg):
    print(f"[scale-bench {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


def read_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


class Api:
    """A small apiserver client (one connection per thread)."""

    def __init__(self, server, ca, cert, key):
        u = urllib.parse.urlparse(server)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        self.local = threading.local()

    def conn(self, timeout=30):
        c = getattr(self.local, "c", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
            self.local.c = c
        return c

    def request(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        for attempt in range(5):
            c = self.conn()
            try:
                data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
                c.request(method, path, body=data, headers={"Content-Type": ctype, "Accept": "application/json"} if data else {})
                r = c.getresponse()
                text = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.local.c = None
                if attempt == 4:
                    raise
                # The first failure is usually a pooled connection the apiserver closed while
                # idle: reconnect at once (a sleep would count in the measured latency).
                if attempt > 0:
                    log(f"{method} {path}: {e}; retrying")
                    time.sleep(0.5)
                continue
            if r.status == 429 or r.status >= 500:
                time.sleep(0.5)
                continue
            if r.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {r.status}: {text[:400]!r}")
            return text
        raise RuntimeError(f"{method} {path}: gave up")

    def json(self, method, path, body=None, **kw):
        return json.loads(self.request(method, path, body, **kw) or b"null")


def rollout_path(ns, name=None):
    p = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/rollouts"
    return p + (f"/{name}" if name else "")


def template(version, name):
    return {
        "metadata": {"labels": {"app": name, "bench": "tollgate"}},
        "spec": {"containers": [{
            "name": "app",
            "image": f"demo:{version}",
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "DEMO_VERSION", "value": version}],
        }]},
    }


def rollout(name, version, pause, analysis=None):
    """A bench Rollout: setWeight 25, pause, setWeight 50, then a pause or (with `analysis`, the
    dict from `analysis_spec`) an analyze step that ends at the judge's first Pass."""
    last = {"pause": {"duration": pause}}
    spec = {
        "version": version,
        "replicas": 2,
        "selector": {"matchLabels": {"app": name}},
        "template": template(version, name),
        "fleetCheck": {},
        "steps": [{"setWeight": 25}, {"pause": {"duration": pause}}, {"setWeight": 50}, last],
    }
    if analysis:
        spec["steps"][-1] = {"analyze": {"duration": analysis["step"]}}
        spec["analysis"] = analysis["spec"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout", "metadata": {"name": name}, "spec": spec}


def analysis_spec(prometheus, interval, step, min_requests, pass_margin):
    """The bench's analysis: the default errorRate and latency on the demo-app series, against
    the cluster's Prometheus. Two settings differ from the defaults so that a healthy canary
    (0 errors) passes on the traffic the bench can afford on a shared machine: passMargin (the
    default 0.005 needs about 1,500 error-free canary requests; 0.05 about 110) and minRequests
    (default 300). Latency is judged and recorded but not critical: its p99 test needs about
    2,000 requests a canary to pass. `onInconclusive: Pause` (the default) holds a canary that
    has no verdict by the analyze step's end, so it shows up as not completed."""
    return {
        "step": step,
        "spec": {
            "provider": {"prometheus": {"address": prometheus}},
            "interval": interval,
            "minRequests": min_requests,
            "errorRate": {"passMargin": pass_margin},
            "latency": {"quantiles": [{"quantile": 0.99}], "critical": False},
        },
    }


class LoadGen(threading.Thread):
    """One load-gen (tests/testbed) at a fixed rate over the ready pods of a label selector,
    restarted when it ends (it runs at most an hour) until stopped; its pids go to the cluster's
    pids file so stop.sh ends it too."""

    def __init__(self, binary, kubeconfig, selector, rate, refresh_ms, cluster_dir, name):
        super().__init__(daemon=True)
        self.cmd = [binary, "--selector", selector, "--rate", str(rate), "--duration-secs", "3600",
                    "--refresh-ms", str(refresh_ms), "--concurrency", "32"]
        self.env = {**os.environ, "KUBECONFIG": kubeconfig}
        self.dir, self.name = cluster_dir, name
        self.stop, self.proc, self.starts = threading.Event(), None, 0

    def run(self):
        while not self.stop.is_set():
            with open(f"{self.dir}/logs/{self.name}.log", "a") as logf:
                self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=logf, env=self.env)
                with open(f"{self.dir}/pids", "a") as f:
                    f.write(f"{self.proc.pid} load-gen\n")
                self.starts += 1
                self.proc.wait()
            if not self.stop.is_set():
                time.sleep(1)

    def end(self):
        self.stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()


def unrelated_pod(i, node):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"other-{i}", "labels": {"app": f"other-{i % 50}"}},
        # bound to a node directly: the scheduler's 50 QPS would take minutes for thousands
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "other:1"}]},
    }


class Proc:
    """/proc figures of one process."""

    def __init__(self, pid):
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self):
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime

    def mem_kib(self):
        out = {}
        for line in open(f"/proc/{self.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
        return out


class Sampler(threading.Thread):
    """RSS every 0.5 s, so a phase reports its mean and its own peak (VmHWM is since start)."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.samples, self.stop = proc, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), self.proc.mem_kib()["VmRSS"]))
            except OSError:
                return
            time.sleep(0.5)

    def window(self, t0, t1):
        vals = [v for t, v in self.samples if t0 <= t <= t1]
        return vals


class RolloutWatch(threading.Thread):
    """Watches every Rollout; keeps the latest object per name and each event's receive time."""

    def __init__(self, api, base=f"/apis/{GROUP}/{VERSION}/rollouts"):
        super().__init__(daemon=True)
        self.api, self.base, self.lock = api, base, threading.Lock()
        self.objs, self.events = {}, []  # events: (time, key, status-json)
        self.count = 0
        self.synced = threading.Event()

    def run(self):
        rv = None
        while True:
            try:
                if rv is None:
                    lst = self.api.json("GET", self.base)
                    rv = lst["metadata"]["resourceVersion"]
                    with self.lock:
                        for o in lst["items"]:
                            self.objs[key(o)] = o
                    self.synced.set()
                c = http.client.HTTPSConnection(self.api.host, self.api.port, context=self.api.ctx, timeout=600)
                c.request("GET", f"{self.base}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}")
                r = c.getresponse()
                if r.status != 200:
                    rv = None
                    continue
                while True:
                    line = r.readline()
                    if not line:
                        break
                    now = time.time()
                    ev = json.loads(line)
                    o = ev["object"]
                    if ev["type"] == "ERROR":
                        rv = None
                        break
                    rv = o["metadata"]["resourceVersion"]
                    if ev["type"] == "BOOKMARK":
                        continue
                    with self.lock:
                        self.count += 1
                        k = key(o)
                        if ev["type"] == "DELETED":
                            self.objs.pop(k, None)
                        else:
                            self.objs[k] = o
                        self.events.append((now, k, json.dumps(o.get("status"), sort_keys=True)))
            except (OSError, http.client.HTTPException, ValueError) as e:
                log(f"rollout watch: {e}; again")
                time.sleep(0.5)

    def snapshot(self):
        with self.lock:
            return dict(self.objs)


def key(o):
    return f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}"


def prom_metric_sum(text, name, match=lambda labels: True):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, _, value = line.rpartition(" ")
        if match(labels):
            total += float(value)
    return total


def succeeded_on(o, version):
    st = o.get("status") or {}
    return st.get("phase") == "Succeeded" and st.get("stableVersion") == version


def pct(vals, q):
    if not vals:
        return None
    vals = sorted(vals)
    i = min(len(vals) - 1, max(0, int(round(q * (len(vals) - 1)))))
    return vals[i]


class Bench:
    group = GROUP  # the Rollouts' API group (ArgoBench: argoproj.io)

    def __init__(self, args):
        self.args = args
        self.env = read_env(args.env)
        d = self.env["TOLLGATE_CLUSTER_DIR"]
        pki = f"{d}/pki"
        self.dir = d
        self.api = Api(self.env["TOLLGATE_APISERVER"], f"{pki}/ca.crt", f"{pki}/admin.crt", f"{pki}/admin.key")
        self.prom = self.env.get("PROMETHEUS_URL", "")
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel)
        self.result = {"phases": {}}
        # tollgate's analysis spec when its Rollouts analyze (set by its run); Argo's analysis is
        # its AnalysisRuns, counted apart.
        self.analysis = None

    def measure_operator(self, p, name):
        """The controller process `p` just started: stop.sh ends it with the cluster, and its RSS
        and CPU are sampled from here on."""
        with open(f"{self.dir}/pids", "a") as f:
            f.write(f"{p.pid} {name}\n")
        self.popen = p
        self.op = Proc(p.pid)
        self.sampler = Sampler(self.op)
        self.sampler.start()
        return p

    # --- setup -------------------------------------------------------------------------------
    def create_all(self, items):
        list(self.pool.map(lambda pi: self.api.request("POST", pi[0], pi[1], ok=(201, 409)), items))

    def namespace(self, name):
        self.api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, ok=(201, 409))

    def setup_unrelated(self):
        n, per = self.args.unrelated_pods, 10
        if n == 0:
            return
        nodes = [x["metadata"]["name"] for x in self.api.json("GET", "/api/v1/nodes")["items"]]
        for i in range(per):
            self.namespace(f"bench-other-{i}")
        t0 = time.time()
        self.create_all([(f"/api/v1/namespaces/bench-other-{i % per}/pods", unrelated_pod(i, nodes[i % len(nodes)])) for i in range(n)])
        self.wait(lambda: self.running_pods("bench-other-") >= n, 600, f"{n} unrelated pods Running")
        log(f"{n} unrelated pods Running after {time.time() - t0:.1f}s")

    def running_pods(self, prefix):
        pods = self.api.json("GET", "/api/v1/pods?fieldSelector=status.phase%3DRunning")["items"]
        return sum(1 for p in pods if p["metadata"]["namespace"].startswith(prefix))

    def wait(self, cond, timeout, what):
        deadline = time.time() + timeout
        while not cond():
            if time.time() > deadline:
                raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.5)

    # --- measurement -------------------------------------------------------------------------
    def apiserver_metrics(self):
        return self.api.request("GET", "/metrics").decode()

    def prom_queries(self):
        if not self.prom:
            return 0.0
        import urllib.request
        text = urllib.request.urlopen(f"{self.prom}/metrics", timeout=10).read().decode()
        return prom_metric_sum(text, "prometheus_http_requests_total", lambda l: 'handler="/api/v1/query' in l)

    def audit(self, t0, t1):
        """The operator's requests received in [t0, t1]: by 'verb resource[/subresource]'."""
        # The apiserver rotates its audit log at 100 MB (audit-<time>.log beside it): a long
        # phase's requests span several files, so read the rotated ones too.
        logs = f"{self.dir}/logs"
        paths = sorted(f"{logs}/{f}" for f in os.listdir(logs) if f.startswith("audit") and ".log" in f) \
            if os.path.isdir(logs) else []
        seen, counts, per_second = set(), collections.Counter(), collections.Counter()
        user = self.args.operator_user
        if not paths:
            return counts, 0
        for line in (line for path in paths for line in open(path)):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("user", {}).get("username") != user or e["auditID"] in seen:
                continue
            t = iso(e["requestReceivedTimestamp"])
            if not t0 <= t <= t1:
                continue
            seen.add(e["auditID"])
            per_second[int(t)] += 1
            ref = e.get("objectRef") or {}
            res = ref.get("resource", e.get("requestURI", "?").split("?")[0])
            if ref.get("subresource"):
                res += "/" + ref["subresource"]
            counts[f"{e['verb']} {res}"] += 1
        return counts, max(per_second.values(), default=0)

    def rollout_watch_events(self):
        """Watch events the apiserver sent for this controller's Rollouts (its group only: the
        other controller's Rollouts are a different resource of the same name)."""
        return prom_metric_sum(self.apiserver_metrics(), "apiserver_watch_events_total",
                               lambda l: 'resource="rollouts"' in l and f'group="{self.group}"' in l)

    def phase_start(self):
        time.sleep(0)
        return {
            "t": time.time(),
            "cpu": self.op.cpu_seconds(),
            "watch_rollouts": self.rollout_watch_events(),
            "own_events": self.watch.count,
            "prom": self.prom_queries(),
        }

    def phase_end(self, name, s, extra=None):
        t1 = time.time()
        cpu = self.op.cpu_seconds() - s["cpu"]
        watch_total = self.rollout_watch_events() - s["watch_rollouts"]
        own = self.watch.count - s["own_events"]
        prom = self.prom_queries() - s["prom"]
        time.sleep(2.5)  # the audit log is written in batches of up to 1 s
        req, peak_rate = self.audit(s["t"], t1)
        rss = self.sampler.window(s["t"], t1)
        secs = t1 - s["t"]
        status_writes = sum(v for k, v in req.items() if k.endswith("/status") and k.split()[0] in ("patch", "update"))
        ph = {
            "seconds": round(secs, 1),
            "rss_mib_mean": round(sum(rss) / len(rss) / 1024, 1) if rss else None,
            "rss_mib_peak": round(max(rss) / 1024, 1) if rss else None,
            "vmhwm_mib": round(self.op.mem_kib()["VmHWM"] / 1024, 1),
            "cpu_seconds": round(cpu, 2),
            "api_requests": sum(req.values()),
            "api_requests_peak_per_second": peak_rate,
            "api_requests_by_verb_resource": dict(sorted(req.items())),
            "status_writes": status_writes,
            "status_writes_per_rollout_hour": round(status_writes / max(1, self.args.rollouts) / (secs / 3600), 3),
            "watch_events_rollouts": int(round(watch_total - own)),
            "prometheus_queries_per_minute": round(prom / (secs / 60), 2),
        }
        ph.update(extra or {})
        self.result["phases"][name] = ph
        log(f"phase {name}: {json.dumps(ph)}")

    # --- phases ------------------------------------------------------------------------------
    def change(self, keys, version):
        """Patch these Rollouts to `version` at once; returns each one's patch send time and
        its status before the patch."""
        snap = self.watch.snapshot()
        before = {k: json.dumps(snap[k].get("status"), sort_keys=True) for k in keys}
        sent = {}

        def one(k):
            ns, name = k.split("/")
            sent[k] = time.time()
            body = self.change_body(name, version)
            self.api.request("PATCH", self.object_path(ns, name), body, ctype="application/merge-patch+json")

        list(self.pool.map(one, keys))
        return sent, before

    def change_body(self, name, version):
        return {"spec": {"version": version, "template": template(version, name)}}

    def object_path(self, ns, name):
        return rollout_path(ns, name)

    def is_done(self, o, version):
        return succeeded_on(o, version)

    def common_phases(self, keys, a, t_start, s, done_words):
        """The phases both controllers go through, measured alike: the end of startup (every
        Rollout done on 1.0.0, `s` being startup's phase start), steady, one canary alone and the
        churn."""
        self.wait(lambda: all(self.is_done(self.watch.snapshot().get(k, {}), "1.0.0") for k in keys),
                  a.timeout, f"{len(keys)} {done_words}")
        self.phase_end("startup", s, {"all_succeeded_after_s": round(time.time() - t_start, 1)})

        time.sleep(3)  # the last pods settle; the steady window starts after
        s = self.phase_start()
        time.sleep(a.steady_seconds)
        self.phase_end("steady", s)

        s = self.phase_start()
        sent = self.change([keys[0]], "2.0.0")
        self.phase_end("single", s, self.follow(sent, "2.0.0", a.timeout))

        churn = keys[1:1 + max(1, int(len(keys) * a.churn_fraction))]
        s = self.phase_start()
        sent = self.change(churn, "2.0.0")
        self.phase_end("churn", s, self.follow(sent, "2.0.0", a.timeout))

    def follow(self, changed, version, timeout):
        """Per changed Rollout: seconds from patch to first status change, and to completion."""
        sent, before = changed
        deadline = time.time() + timeout
        done = {}
        while time.time() < deadline:
            snap = self.watch.snapshot()
            for k in sent:
                if k not in done and self.is_done(snap[k], version):
                    done[k] = time.time()
            if len(done) == len(sent):
                break
            time.sleep(0.2)
        first = {}
        with self.watch.lock:
            events = list(self.watch.events)
        for t, k, st in events:
            if k in sent and k not in first and t >= sent[k] and st != before[k]:
                first[k] = t - sent[k]
        complete = [done[k] - sent[k] for k in done]
        out = {
            "changed": len(sent),
            "completed": len(done),
            "first_status_write_p50_s": r3(pct(list(first.values()), 0.5)),
            "first_status_write_p99_s": r3(pct(list(first.values()), 0.99)),
            "complete_p50_s": r3(pct(complete, 0.5)),
            "complete_max_s": r3(max(complete) if complete else None),
        }
        if self.analysis:
            # The judge's record of each changed canary: its verdict and how many looks it took.
            snap = self.watch.snapshot()
            an = [(snap[k].get("status") or {}).get("analysis") or {} for k in sent]
            out["analysis_passed"] = sum(1 for x in an if x.get("verdict") == "Pass")
            out["analysis_looks_p50"] = pct([x["looks"] for x in an if "looks" in x], 0.5)
            out["analysis_looks_max"] = max((x["looks"] for x in an if "looks" in x), default=None)
        return out

    def soak(self, keys, seconds, every, warmup):
        """Phase soak: for `seconds`, a new version on the next Rollout every `every` seconds
        (round robin, skipping one whose previous soak version is still rolling out), each going
        through the whole pipeline. The operator's RSS is sampled every 10 s; the memory figure is
        RSS after `warmup` against RSS at the end (leaks show as growth; the first minutes fill
        caches and pools, so they are left out)."""
        s = self.phase_start()
        t0, n, i = s["t"], 0, 0
        pending, sent, done, before = {}, {}, {}, {}
        series, next_sample = [], t0
        deadline = t0 + seconds
        next_change = t0
        while True:
            now = time.time()
            if now >= next_sample:
                try:
                    series.append((round(now - t0, 1), round(self.op.mem_kib()["VmRSS"] / 1024, 1)))
                except OSError:
                    raise RuntimeError("the operator exited during the soak")
                next_sample += 10
            if now >= deadline:
                break
            if self.popen.poll() is not None:
                raise RuntimeError(f"the operator exited during the soak: {self.popen.returncode}")
            snap = self.watch.snapshot()
            for k, version in list(pending.items()):
                if succeeded_on(snap.get(k, {}), version):
                    done[(k, version)] = time.time() - sent[(k, version)]
                    del pending[k]
            if now >= next_change:
                for _ in range(len(keys)):
                    k = keys[i % len(keys)]
                    i += 1
                    if k not in pending:
                        n += 1
                        version = f"3.{n}.0"
                        before[(k, version)] = json.dumps(snap[k].get("status"), sort_keys=True)
                        changed = self.change([k], version)
                        sent[(k, version)] = changed[0][k]
                        pending[k] = version
                        break
                next_change += every
            time.sleep(min(0.5, max(0.0, min(next_change, next_sample, deadline) - time.time())))
        # The first status write for each change: the first event after its patch that differs.
        first = {}
        with self.watch.lock:
            events = list(self.watch.events)
        by_key = collections.defaultdict(list)
        for kv, t in sent.items():
            by_key[kv[0]].append((t, kv))
        for t, k, st in events:
            for ts, kv in by_key.get(k, ()):
                if kv not in first and t >= ts and st != before[kv]:
                    first[kv] = t - ts
        rss = [v for _, v in series]
        w = next((v for t, v in series if t >= warmup), None)
        extra = {
            "changed": len(sent),
            "completed": len(done),
            "in_flight_at_end": len(pending),
            "first_status_write_p50_s": r3(pct(list(first.values()), 0.5)),
            "first_status_write_p99_s": r3(pct(list(first.values()), 0.99)),
            "complete_p50_s": r3(pct(list(done.values()), 0.5)),
            "complete_max_s": r3(max(done.values()) if done else None),
            "soak_every_s": every,
            "warmup_s": warmup,
            "rss_mib_after_warmup": w,
            "rss_mib_at_end": rss[-1] if rss else None,
            "rss_growth_pct": r3((rss[-1] - w) / w * 100) if w and rss else None,
            "rss_mib_peak_10s": max(rss) if rss else None,
            "rss_series_10s": series,
        }
        # The canaries still rolling out at the end are left to finish: the next phase (none
        # yet) would otherwise measure them.
        self.phase_end("soak", s, extra)

    def start_operator(self):
        port = free_port()
        logf = open(f"{self.dir}/logs/operator.log", "w")
        cmd = [self.args.tollgate, "controller", "--kubeconfig", self.args.operator_kubeconfig,
               "--identity", "bench", "--admin-addr", f"127.0.0.1:{port}",
               "--allowed-prometheus-hosts=127.0.0.1,localhost"] + self.args.operator_arg
        # A diagnosis, not a measurement: TOLLGATE_BENCH_OPERATOR_WRAPPER="heaptrack -o /tmp/x" runs the
        # operator under a profiler (the RSS and CPU figures are then the wrapper's, not the operator's).
        cmd = os.environ.get("TOLLGATE_BENCH_OPERATOR_WRAPPER", "").split() + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=logf, env={**os.environ, "RUST_LOG": "info,kube=warn"})
        return self.measure_operator(p, "tollgate")

    def run(self):
        a = self.args
        self.result["config"] = {"rollouts": a.rollouts, "namespaces": a.namespaces, "pods_per_rollout": 2,
                                 "unrelated_pods": a.unrelated_pods, "churn_fraction": a.churn_fraction,
                                 "steady_seconds": a.steady_seconds, "pause": a.pause,
                                 "operator_args": a.operator_arg, "soak_minutes": a.soak_minutes,
                                 "soak_every_s": a.soak_every, "soak_warmup_minutes": a.soak_warmup_minutes}
        self.analysis = None
        if a.load_gen:
            if not self.prom:
                raise RuntimeError("analysis needs the cluster's Prometheus (PROMETHEUS_URL is empty)")
            self.analysis = analysis_spec(self.prom, a.analysis_interval, a.analyze_step, a.min_requests, a.pass_margin)
            self.result["config"].update({
                "analysis": self.analysis["spec"], "analyze_step": a.analyze_step,
                "scrape_interval_s": int(self.env.get("TOLLGATE_SCRAPE_INTERVAL_SECONDS", "0")),
                "load_rps_canary_pods": a.canary_rps, "load_rps_stable_pods": a.stable_rps,
            })
        self.setup_unrelated()
        self.loads = []
        if self.analysis:
            # Traffic for the judge: a fixed rate over all canary pods (spread evenly: 100 canaries
            # at once get a hundredth each) and one over all stable pods (the baselines).
            for track, rate, refresh in (("canary", a.canary_rps, 2000), ("stable", a.stable_rps, 10000)):
                lg = LoadGen(a.load_gen, self.env["KUBECONFIG"], f"bench=tollgate,tollgate.dev/track={track}",
                             rate, refresh, self.dir, f"load-gen-{track}")
                lg.start()
                self.loads.append(lg)
        self.watch = RolloutWatch(self.api)
        self.watch.start()
        self.watch.synced.wait(30)
        for i in range(a.namespaces):
            self.namespace(f"bench-tg-{i}")
        keys = [f"bench-tg-{i % a.namespaces}/r{i}" for i in range(a.rollouts)]

        t_start = time.time()
        self.start_operator()
        s = self.phase_start()
        self.create_all([(rollout_path(k.split("/")[0]), rollout(k.split("/")[1], "1.0.0", a.pause, self.analysis)) for k in keys])
        log(f"{len(keys)} Rollouts created in {time.time() - t_start:.1f}s")
        self.common_phases(keys, a, t_start, s, "Rollouts Succeeded")

        if a.soak_minutes > 0:
            self.soak(keys, a.soak_minutes * 60, a.soak_every, a.soak_warmup_minutes * 60)

        if self.popen.poll() is not None:
            raise RuntimeError(f"the operator exited: {self.popen.returncode}")
        for lg in self.loads:
            lg.end()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        return self.result


# --- argo: Argo Rollouts in the same run (issue 20 item 2) --------------------------------------
# The same workload shape for the Argo Rollouts controller: N argoproj.io Rollouts x 2 replicas in
# 10 namespaces of their own (bench-argo-*), pods labelled bench=argo (the pod runner serves them,
# Prometheus scrapes them through its file_sd), a basic canary of the same steps (setWeight 25,
# pause, setWeight 50, pause) and a background analysis (from step 1, so every canary runs it;
# the first deploy of a Rollout runs no steps) whose AnalysisTemplate asks Prometheus for the
# demo-app's error ratio of the canary's pods (http_requests_total, the series tollgate judges).
# ArgoBench reuses Bench's measurement (phase_start / phase_end / follow) and overrides what
# differs: the API group, the objects, "done" and the controller process.

ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
ARGO_NS = "bench-argo-"


def argo_path(ns, kind="rollouts", name=None):
    p = f"/apis/{ARGO_GROUP}/{ARGO_VERSION}/namespaces/{ns}/{kind}"
    return p + (f"/{name}" if name else "")


def argo_template(version, name):
    t = template(version, name)
    t["metadata"]["labels"]["bench"] = "argo"
    return t


def argo_rollout(name, version, pause):
    return {
        "apiVersion": f"{ARGO_GROUP}/{ARGO_VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": argo_template(version, name),
            "strategy": {"canary": {
                "analysis": {
                    "templates": [{"templateName": "bench-error-ratio"}],
                    "startingStep": 1,
                    "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
                },
                "steps": [
                    {"setWeight": 25}, {"pause": {"duration": pause}},
                    {"setWeight": 50}, {"pause": {"duration": pause}},
                ],
            }},
        },
    }


def argo_analysis_template(ns, prom_url, interval):
    """The canary pods' 5xx ratio over the last 30 s; no traffic (the bench sends none) reads 0,
    not NaN, so the analysis passes and measures the controller, not the load."""
    sel = f'namespace="{ns}",rollouts_pod_template_hash="{{{{args.canary-hash}}}}"'
    query = (f'(sum(rate(http_requests_total{{{sel},code="500"}}[30s])) or vector(0))'
             f' / (sum(rate(http_requests_total{{{sel}}}[30s])) > 0 or vector(1))')
    return {
        "apiVersion": f"{ARGO_GROUP}/{ARGO_VERSION}",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "bench-error-ratio"},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [{
                "name": "error-ratio",
                "interval": interval,
                "successCondition": "result[0] <= 0.05",
                "failureLimit": 0,
                "provider": {"prometheus": {"address": prom_url, "query": query}},
            }],
        },
    }


def argo_succeeded_on(o, version):
    """Fully promoted on `version`: the controller saw the current spec (observedGeneration, a
    string in Argo's status), the stable ReplicaSet is the current template's, and it is Healthy."""
    st = o.get("status") or {}
    md = o.get("metadata") or {}
    env = {e["name"]: e.get("value") for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
           for e in c.get("env", [])}
    return (env.get("DEMO_VERSION") == version and st.get("phase") == "Healthy"
            and st.get("observedGeneration") == str(md.get("generation"))
            and bool(st.get("stableRS")) and st.get("stableRS") == st.get("currentPodHash"))


class ArgoBench(Bench):
    group = ARGO_GROUP

    def __init__(self, args):
        import copy
        a = copy.copy(args)
        a.operator_user = args.argo_user
        super().__init__(a)

    def change_body(self, name, version):
        return {"spec": {"template": argo_template(version, name)}}

    def object_path(self, ns, name):
        return argo_path(ns, "rollouts", name)

    def is_done(self, o, version):
        return argo_succeeded_on(o, version)

    def start_operator(self):
        """rollouts-controller as its own user, upstream defaults (--qps 40, --burst 80,
        --rollout-threads 10, --analysis-threads 30) except leader election, off as tollgate's
        is in its run. It binds 0.0.0.0 (metrics, healthz): scale-bench.sh runs it only inside a
        private network namespace."""
        logf = open(f"{self.dir}/logs/argo-rollouts.log", "w")
        cmd = [self.args.argo_controller, "--kubeconfig", self.args.argo_kubeconfig,
               "--leader-elect=false", "--loglevel", "warn",
               "--metricsPort", str(free_port()), "--healthzPort", str(free_port())] + self.args.argo_arg
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=logf, env={**os.environ, "POD_NAMESPACE": "argo-rollouts"})
        return self.measure_operator(p, "argo-rollouts")

    def phase_end(self, name, s, extra=None):
        """As Bench's, but "status writes" counts the Rollouts' status only (as tollgate's, which
        writes no other status); AnalysisRun status writes are their own figure."""
        super().phase_end(name, s, extra)
        ph = self.result["phases"][name]
        req = ph["api_requests_by_verb_resource"]
        writes = lambda res: sum(v for k, v in req.items() if k.split()[0] in ("patch", "update") and k.split()[1] == res)
        ph["status_writes"] = writes("rollouts/status")
        ph["status_writes_per_rollout_hour"] = round(ph["status_writes"] / max(1, self.args.rollouts) / (ph["seconds"] / 3600), 3)
        ph["analysisrun_status_writes"] = writes("analysisruns/status")

    def run(self):
        a = self.args
        self.result["config"] = {"rollouts": a.rollouts, "namespaces": a.namespaces, "pods_per_rollout": 2,
                                 "unrelated_pods": a.unrelated_pods, "churn_fraction": a.churn_fraction,
                                 "steady_seconds": a.steady_seconds, "pause": a.pause,
                                 "analysis_interval": a.argo_analysis_interval, "controller_args": a.argo_arg}
        self.setup_unrelated()
        self.watch = RolloutWatch(self.api, f"/apis/{ARGO_GROUP}/{ARGO_VERSION}/rollouts")
        self.watch.start()
        self.watch.synced.wait(30)
        self.namespace("argo-rollouts")
        for i in range(a.namespaces):
            ns = f"{ARGO_NS}{i}"
            self.namespace(ns)
            self.api.request("POST", argo_path(ns, "analysistemplates"),
                             argo_analysis_template(ns, self.prom, a.argo_analysis_interval), ok=(201, 409))
        keys = [f"{ARGO_NS}{i % a.namespaces}/r{i}" for i in range(a.rollouts)]

        t_start = time.time()
        self.start_operator()
        s = self.phase_start()
        self.create_all([(argo_path(k.split("/")[0]), argo_rollout(k.split("/")[1], "1.0.0", a.pause)) for k in keys])
        log(f"argo: {len(keys)} Rollouts created in {time.time() - t_start:.1f}s")
        self.common_phases(keys, a, t_start, s, "Argo Rollouts Healthy")
        self.result["analysis_runs"] = self.analysis_runs()

        if self.popen.poll() is not None:
            raise RuntimeError(f"the Argo Rollouts controller exited: {self.popen.returncode}")
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        return self.result

    def analysis_runs(self):
        """AnalysisRuns by phase: the analysis ran (Successful), not just a template existed."""
        runs = self.api.json("GET", f"/apis/{ARGO_GROUP}/{ARGO_VERSION}/analysisruns")["items"]
        return dict(collections.Counter((r.get("status") or {}).get("phase", "none") for r in runs))


def delete_namespaces(api, prefix, timeout):
    """Deletes the namespaces named prefix* and waits until they are gone, so the next controller
    starts on a cluster without the previous one's objects; strips finalizers of Rollouts left
    behind (their controller has stopped). Returns the seconds it took, or None on timeout."""
    t0 = time.time()
    names = [n["metadata"]["name"] for n in api.json("GET", "/api/v1/namespaces")["items"]
             if n["metadata"]["name"].startswith(prefix)]
    for n in names:
        api.request("DELETE", f"/api/v1/namespaces/{n}", ok=(200, 202, 404))
    while time.time() < t0 + timeout:
        left = [n["metadata"]["name"] for n in api.json("GET", "/api/v1/namespaces")["items"]
                if n["metadata"]["name"].startswith(prefix)]
        if not left:
            return round(time.time() - t0, 1)
        for o in api.json("GET", f"/apis/{GROUP}/{VERSION}/rollouts")["items"]:
            if o["metadata"]["namespace"] in left and o["metadata"].get("finalizers"):
                api.request("PATCH", rollout_path(o["metadata"]["namespace"], o["metadata"]["name"]),
                            {"metadata": {"finalizers": None}}, ctype="application/merge-patch+json")
        time.sleep(2)
    return None


# One row per figure of the side-by-side table: (phase, key, label).
SIDE_BY_SIDE = [
    ("startup", "all_succeeded_after_s", "startup: all N done after (s)"),
    ("startup", "cpu_seconds", "startup: CPU (s)"),
    ("startup", "api_requests", "startup: API requests"),
    ("startup", "api_requests_peak_per_second", "startup: API requests, busiest second"),
    ("steady", "rss_mib_mean", "steady: RSS mean (MiB)"),
    ("steady", "rss_mib_peak", "steady: RSS peak (MiB)"),
    ("steady", "cpu_seconds", "steady: CPU (s)"),
    ("steady", "api_requests", "steady: API requests"),
    ("steady", "status_writes_per_rollout_hour", "steady: status writes / Rollout-hour"),
    ("single", "first_status_write_p50_s", "single: spec->status (s)"),
    ("single", "complete_p50_s", "single: canary complete (s)"),
    ("churn", "rss_mib_peak", "churn: RSS peak (MiB)"),
    ("churn", "vmhwm_mib", "whole run: VmHWM peak RSS (MiB)"),
    ("churn", "cpu_seconds", "churn: CPU (s)"),
    ("churn", "api_requests", "churn: API requests"),
    ("churn", "api_requests_peak_per_second", "churn: API requests, busiest second"),
    ("churn", "status_writes_per_rollout_hour", "churn: status writes / Rollout-hour"),
    ("churn", "first_status_write_p50_s", "churn: spec->status p50 (s)"),
    ("churn", "first_status_write_p99_s", "churn: spec->status p99 (s)"),
    ("churn", "complete_p50_s", "churn: canary complete p50 (s)"),
    ("churn", "complete_max_s", "churn: canary complete max (s)"),
    ("churn", "prometheus_queries_per_minute", "churn: Prometheus queries / min"),
]


def side_by_side(results):
    """Rows {phase, figure, label, tollgate, argo, ratio (argo / tollgate)}."""
    rows = []
    for phase, k, label in SIDE_BY_SIDE:
        vals = {c: (results[c]["phases"].get(phase) or {}).get(k) if c in results else None for c in ("tollgate", "argo")}
        t, a = vals["tollgate"], vals["argo"]
        ratio = round(a / t, 2) if isinstance(t, (int, float)) and isinstance(a, (int, float)) and t else None
        rows.append({"phase": phase, "figure": k, "label": label, "tollgate": t, "argo": a, "argo_over_tollgate": ratio})
    return rows


def side_by_side_table(results, rows):
    n = next(iter(results.values()))["config"]["rollouts"]
    lines = [f"tollgate vs Argo Rollouts {ARGO_ROLLOUTS_VERSION_LABEL}, N={n}, same cluster one after the other "
             f"(fresh namespaces); machine shared with other jobs (load averages above)",
             f"{'figure':40}{'tollgate':>12}{'argo':>12}{'argo/tollgate':>15}", "-" * 79]
    for r in rows:
        f = lambda v: "-" if v is None else v
        lines.append(f"{r['label']:40}{f(r['tollgate']):>12}{f(r['argo']):>12}{f(r['argo_over_tollgate']):>15}")
    return "\n".join(lines)


ARGO_ROLLOUTS_VERSION_LABEL = os.environ.get("ARGO_ROLLOUTS_VERSION", "v1.10.2")


def run_all(a):
    """Runs the controllers named by --controllers one after the other on this cluster; returns
    {controller: result} (each with the machine and its load averages)."""
    results = {}
    for c in a.controllers.split(","):
        started = machine()
        if c == "tollgate":
            result = Bench(a).run()
        elif c == "argo":
            if "tollgate" in results:
                log("deleting tollgate's namespaces before Argo Rollouts starts")
                gone = delete_namespaces(Bench(a).api, "bench-tg-", 600)
                log(f"tollgate's namespaces gone after {gone}s" if gone is not None else "tollgate's namespaces still there after 600s")
            result = ArgoBench(a).run()
        else:
            raise SystemExit(f"unknown controller {c!r} (tollgate, argo)")
        result["machine"] = started
        result["machine"]["load_average_at_end"] = open("/proc/loadavg").read().split()[:3]
        results[c] = result
    return results


def r3(x):
    return None if x is None else round(x, 3)


def iso(s):
    import datetime
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


FIGURES = [
    ("seconds", "phase length (s)"),
    ("rss_mib_mean", "RSS mean (MiB)"),
    ("rss_mib_peak", "RSS peak in phase (MiB)"),
    ("vmhwm_mib", "VmHWM since start (MiB)"),
    ("cpu_seconds", "CPU (s)"),
    ("api_requests", "API requests"),
    ("api_requests_peak_per_second", "API requests, busiest second"),
    ("status_writes", "status writes"),
    ("status_writes_per_rollout_hour", "status writes / Rollout-hour"),
    ("watch_events_rollouts", "watch events (Rollouts)"),
    ("prometheus_queries_per_minute", "Prometheus queries / min"),
    ("all_succeeded_after_s", "all Succeeded after (s)"),
    ("changed", "Rollouts changed"),
    ("completed", "completed"),
    ("first_status_write_p50_s", "spec->status p50 (s)"),
    ("first_status_write_p99_s", "spec->status p99 (s)"),
    ("complete_p50_s", "canary complete p50 (s)"),
    ("complete_max_s", "canary complete max (s)"),
    ("analysis_passed", "analysis verdict Pass"),
    ("analysis_looks_p50", "analysis looks p50"),
    ("analysis_looks_max", "analysis looks max"),
    ("in_flight_at_end", "still rolling out at the end"),
    ("rss_mib_after_warmup", "RSS after warm-up (MiB)"),
    ("rss_mib_at_end", "RSS at the end (MiB)"),
    ("rss_growth_pct", "RSS growth after warm-up (%)"),
    ("rss_mib_peak_10s", "RSS peak, 10 s samples (MiB)"),
]


def table(result, controller="tollgate"):
    phases = list(result["phases"])
    m = result.get("machine", {})
    lines = [f"machine: {m.get('cpus')} x {m.get('cpu')}, {m.get('memory_gib')} GiB, kernel {m.get('kernel')}, "
             f"load average {' '.join(m.get('load_average', []))} at start, {' '.join(m.get('load_average_at_end', []))} at end; "
             f"started {m.get('date_utc')}"]
    lines += [f"{controller}: " + ", ".join(f"{k}={v}" for k, v in result["config"].items() if k != "operator_args")]
    head = f"{'figure':34}" + "".join(f"{p:>12}" for p in phases)
    lines += [head, "-" * len(head)]
    for k, label in FIGURES:
        vals = [result["phases"][p].get(k) for p in phases]
        if all(v is None for v in vals):
            continue
        lines.append(f"{label:34}" + "".join(f"{'-' if v is None else v:>12}" for v in vals))
    lines.append("API requests by verb and resource:")
    allk = sorted({k for p in phases for k in result["phases"][p]["api_requests_by_verb_resource"]})
    for k in allk:
        lines.append(f"  {k:32}" + "".join(f"{result['phases'][p]['api_requests_by_verb_resource'].get(k, 0):>12}" for p in phases))
    return "\n".join(lines)


COMMON = ["seconds", "rss_mib_mean", "rss_mib_peak", "vmhwm_mib", "cpu_seconds", "api_requests",
          "api_requests_peak_per_second",
          "status_writes", "status_writes_per_rollout_hour", "watch_events_rollouts",
          "prometheus_queries_per_minute"]
CHANGE = ["changed", "completed", "first_status_write_p50_s", "first_status_write_p99_s",
          "complete_p50_s", "complete_max_s"]


def missing_figures(result):
    """Every figure the bench must produce, absent or null; never a judgement of speed (the
    smoke in tests/run-all.sh fails on a missing figure only)."""
    want = {"startup": COMMON + ["all_succeeded_after_s"], "steady": COMMON,
            "single": COMMON + CHANGE, "churn": COMMON + CHANGE}
    out = []
    for phase, keys in want.items():
        ph = result["phases"].get(phase)
        if ph is None:
            out.append(f"phase {phase}")
            continue
        out += [f"{phase}.{k}" for k in keys if ph.get(k) is None]
        if "changed" in keys and ph.get("completed") != ph.get("changed"):
            out.append(f"{phase}: {ph.get('completed')} of {ph.get('changed')} canaries completed")
    if result["config"].get("soak_minutes"):
        ph = result["phases"].get("soak")
        if ph is None:
            out.append("phase soak")
        else:
            out += [f"soak.{k}" for k in COMMON + ["rss_mib_after_warmup", "rss_mib_at_end", "rss_growth_pct", "complete_p50_s"]
                    if ph.get(k) is None]
            if not ph.get("completed"):
                out.append("soak: no canary completed")
    if result["config"].get("analysis"):
        for phase in ("single", "churn"):
            ph = result["phases"].get(phase, {})
            if not ph.get("prometheus_queries_per_minute"):
                out.append(f"{phase}: analysis on but no Prometheus query")
            if ph.get("analysis_passed") != ph.get("changed"):
                out.append(f"{phase}: {ph.get('analysis_passed')} of {ph.get('changed')} analyses passed")
    if result["phases"].get("startup", {}).get("api_requests", 0) == 0:
        out.append("startup: no API request of the operator in the audit log")
    return out


def machine():
    """Where and when the figures were taken (they mean little without it)."""
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "load_average": open("/proc/loadavg").read().split()[:3],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--tollgate", required=True)
    ap.add_argument("--operator-kubeconfig", required=True)
    ap.add_argument("--operator-user", default="tollgate-bench")
    ap.add_argument("--operator-arg", action="append", default=[])
    ap.add_argument("--rollouts", type=int, default=100)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--unrelated-pods", type=int, default=5000)
    ap.add_argument("--churn-fraction", type=float, default=0.1)
    ap.add_argument("--steady-seconds", type=int, default=60)
    ap.add_argument("--pause", default="10s")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--load-gen", default="", help="load-gen binary: turns analysis on (traffic for the judge)")
    ap.add_argument("--canary-rps", type=float, default=100, help="requests/s over all canary pods")
    ap.add_argument("--stable-rps", type=float, default=200, help="requests/s over all stable pods")
    ap.add_argument("--analysis-interval", default="30s")
    ap.add_argument("--analyze-step", default="5m", help="the analyze step's length (it ends at the first Pass)")
    ap.add_argument("--min-requests", type=int, default=100)
    ap.add_argument("--pass-margin", type=float, default=0.05)
    ap.add_argument("--soak-minutes", type=float, default=0, help="phase soak's length (0: no soak)")
    ap.add_argument("--soak-every", type=float, default=5, help="seconds between two new versions in the soak")
    ap.add_argument("--soak-warmup-minutes", type=float, default=10, help="RSS growth is measured from here")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--json", required=True)
    ap.add_argument("--txt", required=True)
    ap.add_argument("--check", action="store_true", help="fail when a figure is missing (the smoke)")
    ap.add_argument("--controllers", default="tollgate", help="comma-separated, run in this order: tollgate, argo")
    ap.add_argument("--argo-controller", help="the rollouts-controller binary (tests/cluster/argo-rollouts.sh)")
    ap.add_argument("--argo-kubeconfig")
    ap.add_argument("--argo-user", default="argo-bench")
    ap.add_argument("--argo-arg", action="append", default=[])
    ap.add_argument("--argo-analysis-interval", default="10s")
    a = ap.parse_args()
    results = run_all(a)
    out = dict(results)
    texts = [table(r, "argo-rollouts" if c == "argo" else c) for c, r in results.items()]
    if len(results) > 1:
        rows = side_by_side(results)
        out["side_by_side"] = rows
        texts.append(side_by_side_table(results, rows))
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    text = "\n\n".join(texts)
    with open(a.txt, "w") as f:
        f.write(text + "\n")
    print(text)
    if a.check:
        missing = [f"{c}: {m}" for c, r in results.items() for m in missing_figures(r)]
        if "argo" in results and not results["argo"].get("analysis_runs", {}).get("Successful"):
            missing.append(f"argo: no Successful AnalysisRun ({results['argo'].get('analysis_runs')})")
        if missing:
            print(f"scale-bench: figures missing: {', '.join(missing)}", file=sys.stderr)
            sys.exit(1)
        print("scale-bench: every figure produced", file=sys.stderr)


if __name__ == "__main__":
    main()
