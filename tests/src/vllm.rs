//! A real `vllm serve` for the tests: started from the Python of `STEPGRPO_VLLM_PYTHON` (a venv
//! with vLLM's CPU build, see `.ci/vllm.sh`) on a free port, and stopped with the engine processes it starts.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct VllmServer {
    child: Child,
    /// Its base URL.
    pub url: String,
    log: PathBuf,
    killed: bool,
}

/// The Python that runs vLLM, or `None` (the test then skips, except under
/// `STEPGRPO_REQUIRE_VLLM=1`, where it fails).
pub fn vllm_python() -> Option<PathBuf> {
    match std::env::var_os("STEPGRPO_VLLM_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("STEPGRPO_REQUIRE_VLLM").as_deref() == Ok("1") => {
            panic!("STEPGRPO_REQUIRE_VLLM=1 but STEPGRPO_VLLM_PYTHON is not set (see .ci/vllm.sh)")
        }
        None => {
            eprintln!("vLLM tests skipped: set STEPGRPO_VLLM_PYTHON to a Python with vLLM (.ci/vllm.sh)");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl VllmServer {
    /// Starts serving `model` (f32, 512 positions, prefix caching in blocks of 32, weight reloads
    /// on) with its temporary files and log under `scratch`; [`VllmServer::wait`] waits for it.
    pub fn start(python: &Path, model: &Path, scratch: &Path) -> VllmServer {
        std::fs::create_dir_all(scratch).unwrap();
        let port = free_port();
        let log = scratch.join(format!("vllm-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(python)
            .args(["-m", "vllm.entrypoints.launchers.api_server.entry", "--model"])
            .arg(model)
            .args(["--dtype", "float32", "--max-model-len", "512", "--enable-prefix-caching"])
            .args(["--block-size", "32", "--enforce-eager", "--no-enable-chunked-prefill"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("VLLM_SERVER_DEV_MODE", "1")
            .env("VLLM_CPU_KVCACHE_SPACE", "1")
            .env("VLLM_CPU_OMP_THREADS_BIND", "auto")
            .env("HF_HUB_OFFLINE", "1")
            .env("VLLM_NO_USAGE_STATS", "1")
            .env("TMPDIR", scratch)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        VllmServer { child, url: format!("http://127.0.0.1:{port}"), log, killed: false }
    }

    /// Waits until `/health` answers (at most 5 minutes); panics with the log's tail otherwise.
    pub fn wait(&mut self) {
        let start = Instant::now();
        let addr = self.url.trim_start_matches("http://").to_string();
        while start.elapsed() < Duration::from_secs(300) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vLLM exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if health(&addr) {
                eprintln!("vLLM ready at {} in {:.0} s", self.url, start.elapsed().as_secs_f64());
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("vLLM not ready after 300 s:\n{}", self.log_tail());
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills the server at once (SIGKILL: its clients see it gone mid-request), then ends the
    /// engine processes it started (SIGTERM to its process group; a SIGKILL to the whole group
    /// also took down unrelated processes of the sandbox these tests were written in).
    pub fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        let pid = self.child.id().to_string();
        let group = format!("-{pid}");
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = self.child.wait();
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let alive = Command::new("kill").args(["-0", "--", &group]).stderr(Stdio::null()).status();
            if !alive.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("vLLM's engine processes (group {pid}) still run 30 s after SIGTERM");
    }
}

impl Drop for VllmServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The reply to a bare HTTP/1.0 GET of `path` (no client needed for it), or `None`.
fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    Some(reply)
}

/// Whether GET /health answers 200.
fn health(addr: &str) -> bool {
    get(addr, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
}

/// Requests the server at `url` is decoding now (its `vllm:num_requests_running` gauge).
pub fn requests_running(url: &str) -> f64 {
    let reply = get(url.trim_start_matches("http://"), "/metrics").unwrap_or_default();
    reply
        .lines()
        .filter(|l| l.starts_with("vllm:num_requests_running"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// POSTs `body` to `path` of the server at `url` and parses the JSON reply (HTTP/1.0, so the
/// reply ends with the connection).
pub fn post(url: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (_, json) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP body: {reply}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}
