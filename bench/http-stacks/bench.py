"""Bench driver: python bench.py NAME PORT [--manifest-only] -- server command..."""
import http.client, json, os, re, signal, socket, subprocess, sys, threading, time, glob
PY = "/work/main/.venv/bin/python"
MiB = 1 << 20
SIZE = 512 * MiB
HZ = os.sysconf("SC_CLK_TCK")

def tree(pid):
    pids = [pid]; i = 0
    while i < len(pids):
        try:
            with open(f"/proc/{pids[i]}/task/{pids[i]}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
        i += 1
    return pids

def cpu(pid):
    t = 0
    for p in tree(pid):
        try:
            s = open(f"/proc/{p}/stat").read()
            f = s[s.rindex(")") + 2:].split()
            t += int(f[11]) + int(f[12])
        except FileNotFoundError:
            pass
    return t / HZ

def hwm(pid):
    out = {}
    for p in tree(pid):
        try:
            m = re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{p}/status").read())
            out[p] = int(m.group(1)) // 1024
        except (FileNotFoundError, AttributeError):
            pass
    return out

def wait_port(port, t=15):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")

def push(port):
    buf = memoryview(os.urandom(MiB))
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.putrequest("PUT", "/upload"); c.putheader("Content-Length", str(SIZE))
    c.putheader("Content-Type", "application/octet-stream"); c.endheaders()
    t = time.perf_counter()
    for _ in range(SIZE // MiB):
        c.sock.sendall(buf)
    r = c.getresponse(); body = r.read()
    dt = time.perf_counter() - t
    assert r.status == 201 and len(body) == 64, (r.status, body)
    c.close()
    return SIZE / MiB / dt

def get_blob(port, buf=None):
    buf = buf or memoryview(bytearray(MiB))
    c = http.client.HTTPConnection("127.0.0.1", port)
    t = time.perf_counter()
    c.request("GET", "/blob"); r = c.getresponse(); n = 0
    while True:
        k = r.readinto(buf)
        if not k: break
        n += k
    dt = time.perf_counter() - t
    assert n == SIZE, n
    c.close()
    return n / MiB / dt, dict(r.getheaders())

def get_json(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", path)
    r = c.getresponse(); d = r.read(); c.close(); return json.loads(d) if r.status == 200 else None

def head_check(port):
    c = http.client.HTTPConnection("127.0.0.1", port); c.request("HEAD", "/manifest")
    r = c.getresponse(); h = dict((k.lower(), v) for k, v in r.getheaders()); r.read()
    # check nothing extra arrives on the socket after HEAD (body leak)
    c.sock.settimeout(0.3)
    try: leak = c.sock.recv(4096)
    except socket.timeout: leak = b""
    c.close()
    return {"status": r.status, "content-length": h.get("content-length"),
            "content-type": h.get("content-type"), "digest": (h.get("docker-content-digest") or "")[:16],
            "leaked_bytes": len(leak)}

def run(cmd, *, stdout=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout

def main():
    name, port = sys.argv[1], int(sys.argv[2])
    manifest_only = "--manifest-only" in sys.argv
    cmd = sys.argv[sys.argv.index("--") + 1:]
    res = {"name": name}
    srv = subprocess.Popen(cmd, cwd=os.path.dirname(os.path.abspath(__file__)),
                           stdout=subprocess.DEVNULL, stderr=open(f"/tmp/stackbench/{name}.log", "w"),
                           start_new_session=True)
    try:
        wait_port(port); time.sleep(0.5)
        res["ext"] = get_json(port, "/ext")
        if not manifest_only:
            pushes, cpus = [], []
            for _ in range(3):
                for f in glob.glob("/tmp/stackbench/data/*"): os.unlink(f)
                c0 = cpu(srv.pid); pushes.append(push(port)); cpus.append(cpu(srv.pid) - c0)
            res["push_MiBs"] = [round(x) for x in pushes]; res["push_cpu_s"] = [round(x, 2) for x in cpus]
            res["chunks"] = get_json(port, "/stats")
            for f in glob.glob("/tmp/stackbench/data/*"): os.unlink(f)
            gets = []; c0 = cpu(srv.pid)
            for _ in range(3):
                mbs, hdrs = get_blob(port); gets.append(mbs)
            res["get_MiBs"] = [round(x) for x in gets]; res["get_cpu_s_per"] = round((cpu(srv.pid) - c0) / 3, 2)
            res["get_headers"] = hdrs
            # 8 concurrent streams
            out = [0] * 8
            def w(i): out[i] = get_blob(port)[0]
            ths = [threading.Thread(target=w, args=(i,)) for i in range(8)]
            c0 = cpu(srv.pid); t = time.perf_counter()
            for th in ths: th.start()
            for th in ths: th.join()
            dt = time.perf_counter() - t
            res["get8_agg_MiBs"] = round(8 * SIZE / MiB / dt); res["get8_cpu_s"] = round(cpu(srv.pid) - c0, 2)
        res["head"] = head_check(port)
        wout = run(["wrk", "-t1", "-c64", "-d5s", f"http://127.0.0.1:{port}/manifest"])
        m = re.search(r"Requests/sec:\s+([\d.]+)", wout); res["wrk_rps"] = float(m.group(1)) if m else wout
        m = re.search(r"Non-2xx.*", wout); res["wrk_non2xx"] = m.group(0) if m else None
        m = re.search(r"Latency\s+(\S+)", wout); res["wrk_lat_avg"] = m.group(1) if m else None
        hout = run(["hey", "-z", "5s", "-c", "64", "-m", "HEAD", f"http://127.0.0.1:{port}/manifest"])
        m = re.search(r"Requests/sec:\s+([\d.]+)", hout); res["hey_head_rps"] = float(m.group(1)) if m else hout
        m = re.search(r"Status code distribution:\s*\n((?:\s+\[.*\n)+)", hout); res["hey_status"] = m.group(1).strip() if m else None
        m = re.search(r"Error distribution:[\s\S]*", hout); res["hey_errors"] = m.group(0)[:300] if m else None
        res["hwm_MiB"] = hwm(srv.pid)
    finally:
        t = time.perf_counter()
        os.kill(srv.pid, signal.SIGTERM)
        try:
            srv.wait(10); res["sigterm_exit"] = (srv.returncode, round(time.perf_counter() - t, 2))
        except subprocess.TimeoutExpired:
            res["sigterm_exit"] = "TIMEOUT -> SIGKILL"; os.killpg(srv.pid, signal.SIGKILL); srv.wait()
        left = subprocess.run(["pgrep", "-s", str(srv.pid)], capture_output=True, text=True).stdout.split()
        res["leftover_pids"] = left
        for p in left: os.kill(int(p), signal.SIGKILL)
    print(json.dumps(res))
    with open("results.jsonl", "a") as f: f.write(json.dumps(res) + "\n")

if __name__ == "__main__":
    main()
