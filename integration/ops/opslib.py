"""Shared by the operations tests (integration/ops/run): a `pm serve` process on a free loopback port with a temporary
database, its admin token, and OKX-signed requests (HMAC-SHA256, as integration/crash/chaos.py and integration/clients sign them).
Standard library only."""
import base64, datetime, hashlib, hmac, http.client, json, os, signal, socket, subprocess, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InDoubt(Exception):
    """No answer: the request may or may not have been applied."""


class Http:
    """One keep-alive connection; any transport error is InDoubt. Returns (HTTP status, body bytes)."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def raw(self, method, path, body=None, headers=None, timeout=15):
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            return response.status, response.read()
        except Exception as error:
            self.close()
            raise InDoubt(f"{type(error).__name__}: {error}")

    def json(self, method, path, body=None, headers=None, timeout=15):
        status, data = self.raw(method, path, body, headers, timeout)
        try:
            return status, json.loads(data)
        except ValueError:
            raise InDoubt(f"not JSON ({status}): {data[:100]!r}")

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.connection = None


def sign_headers(key, method, path, text):
    """OKX v5 signature headers of a request whose body is `text` (str)."""
    ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sign = base64.b64encode(hmac.new(key["secretKey"].encode(), (ts + method + path + text).encode(), hashlib.sha256).digest()).decode()
    return {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-PASSPHRASE": key["passphrase"], "Content-Type": "application/json"}


class Client:
    """Signed private calls, admin calls and public calls over one connection; returns (status, envelope)."""

    def __init__(self, port, key=None, token=None):
        self.http = Http(port)
        self.key, self.token = key, token

    def call(self, method, path, body=None):
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        return self.http.json(method, path, text.encode() if body is not None else None, sign_headers(self.key, method, path, text))

    def admin(self, method, path, body=None):
        text = json.dumps(body) if body is not None else None
        return self.http.json(method, path, text.encode() if text else None,
                              {"X-Sandbox-Admin-Token": self.token, "Content-Type": "application/json"})

    def public(self, path, headers=None):
        return self.http.json("GET", path, headers=headers)


def wait_ready(process, port, timeout, counter=None):
    """True once `pm serve` (`process`, on `port`) answers GET /ready with 200; False if it exits first. Every answer
    before that must be 503 (counted in `counter.not_ready_answers` when given); no answer within `timeout` s fails."""
    probe = Http(port)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            return False
        try:
            status, _ = probe.raw("GET", "/ready", timeout=2)
            if status == 200:
                probe.close()
                return True
            assert status == 503, f"/ready answered {status} while starting"
            if counter is not None:
                counter.not_ready_answers += 1
        except InDoubt:
            pass
        time.sleep(0.02)
    raise SystemExit(f"pm serve on port {port} neither became ready nor exited within {timeout} s")


class Server:
    """`pm serve` on a free port; start() waits for GET /ready to answer 200 (and checks /live and the 503 before)."""

    def __init__(self, pm, work, name, *args):
        self.pm, self.work, self.name, self.args = pm, work, name, list(args)
        self.db = os.path.join(work, name + ".sqlite")
        self.log_path = os.path.join(work, name + ".log")
        self.port = None
        self.process = None
        self.not_ready_answers = 0

    def start(self, timeout=120):
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.pm, "serve", "--db", self.db, "--port", str(self.port), *self.args],
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not wait_ready(self.process, self.port, timeout, self):
            raise SystemExit(f"{self.name}: pm serve exited with {self.process.returncode}; log:\n{self.log()[-3000:]}")
        return self

    @property
    def token(self):
        with open(self.db + ".admin-token") as handle:
            return handle.read().strip()

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode(errors="replace")

    def terminate(self, timeout=60):
        """SIGTERM, then the exit status (SIGKILL and a failure if it does not exit within `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise SystemExit(f"{self.name}: pm serve did not exit within {timeout} s of SIGTERM")

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def create_account(admin, label, deposits):
    status, answer = admin.admin("POST", "/api/v5/sandbox/account/create",
                                 {"label": label, "deposits": [{"ccy": c, "amt": a} for c, a in deposits]})
    assert (status, answer.get("code")) == (200, "0"), answer
    return answer["data"][0]


def kill_process(process):
    """SIGKILL (after SIGCONT, so a paused process dies too) and reap; nothing if it already exited."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()
