//! Faults of a rollout server, played by a scripted HTTP server on loopback: down, slow, failing
//! with an error status, or answering garbage. Each is retried a bounded number of times, then is
//! a clear error naming the server, the route and the last problem.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{Client, Server};
use super::config::VllmConfig;
use crate::error::Result;

/// One scripted answer.
#[derive(Clone)]
enum Answer {
    /// After `delay`, this status and body.
    Reply { delay: Duration, status: u16, body: String },
    /// Close the connection without a word.
    Hang,
}

fn ok(body: String) -> Answer {
    Answer::Reply { delay: Duration::ZERO, status: 200, body }
}

/// A completion reply of `ids` with `log_probs`.
fn completion(ids: &[u32], log_probs: &[f64]) -> String {
    json!({ "choices": [{ "token_ids": ids, "logprobs": { "token_logprobs": log_probs }, "stop_reason": null }] })
        .to_string()
}

/// A server on loopback giving the scripted answers in turn (the last one again once they run out),
/// and counting requests.
struct Scripted {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Scripted {
    fn start(script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let (count, script) = (requests.clone(), Arc::new(Mutex::new(script)));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(std::result::Result::ok) {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer = {
                    let s = script.lock().unwrap();
                    s[n.min(s.len() - 1)].clone()
                };
                // One thread per connection: a slow answer must not hold up the next try.
                std::thread::spawn(move || answer_one(stream, answer));
            }
        });
        Scripted { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer_one(stream: TcpStream, answer: Answer) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut stream = reader.into_inner();
    if let Answer::Reply { delay, status, body } = answer {
        std::thread::sleep(delay);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes()));
    }
}

/// A client with 2 retries (3 tries) and requests timing out after 0.4 s.
fn client() -> Client {
    let config = VllmConfig { max_retries: 2, request_timeout_s: 0.4, ..VllmConfig::default() };
    Client::new(&config).unwrap()
}

fn server(url: &str) -> Server {
    Server { url: url.into(), model: "m".into(), root: "m".into(), max_model_len: 512 }
}

/// A completion request to `url` from a fresh runtime, with ids below 100.
fn complete(url: &str) -> Result<super::client::Completion> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(client().complete(&server(url), &json!({ "prompt": [1, 2] }), 100))
}

#[test]
fn a_server_that_is_down_is_tried_a_bounded_number_of_times() {
    // A port nobody listens on: refused at once, so the time is the backoff (0.5 s + 1 s).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = Instant::now();
    let err = complete(&format!("http://127.0.0.1:{port}")).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("/v1/completions"), "{err}");
    assert!(err.contains("failed after 3 tries"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "retries are bounded: {:?}", start.elapsed());
}

#[test]
fn a_slow_or_failing_server_is_retried_until_it_answers() {
    let good = completion(&[5, 6], &[-0.5, -1.25]);
    let slow = Answer::Reply { delay: Duration::from_secs(3), status: 200, body: good.clone() };
    let busy = Answer::Reply { delay: Duration::ZERO, status: 503, body: "overloaded".into() };
    let server = Scripted::start(vec![slow, busy, ok(good)]);
    let reply = complete(&server.url).unwrap();
    assert_eq!((reply.ids, reply.log_probs), (vec![5, 6], vec![-0.5, -1.25]));
    assert_eq!(server.requests(), 3);

    let always_slow = Answer::Reply { delay: Duration::from_secs(3), status: 200, body: String::new() };
    let server = Scripted::start(vec![always_slow]);
    let err = complete(&server.url).unwrap_err().to_string();
    assert!(err.contains("failed after 3 tries") && err.contains("timed out"), "{err}");

    let server = Scripted::start(vec![Answer::Hang]);
    let err = complete(&server.url).unwrap_err().to_string();
    assert!(err.contains("failed after 3 tries"), "{err}");
    assert_eq!(server.requests(), 3);
}

#[test]
fn a_request_the_server_rejects_is_not_retried() {
    let bad =
        Answer::Reply { delay: Duration::ZERO, status: 400, body: "{\"error\": \"no such model\"}".into() };
    let server = Scripted::start(vec![bad]);
    let err = complete(&server.url).unwrap_err().to_string();
    assert!(err.contains("HTTP 400") && err.contains("no such model"), "{err}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn garbage_is_retried_then_named() {
    let cases = [
        ("{\"choices\": [", "not a completion"),
        ("{\"choices\": []}", "no choice"),
        (r#"{"choices": [{"logprobs": {"token_logprobs": [-1.0]}}]}"#, "no token_ids"),
        (r#"{"choices": [{"token_ids": [3]}]}"#, "no log-probs"),
        (&completion(&[], &[]), "no tokens"),
        (&completion(&[3, 100], &[-1.0, -1.0]), "token id 100, past the tokenizer's 100 ids"),
        (&completion(&[3, 4], &[-1.0]), "1 log-probs for 2 tokens"),
        (&completion(&[3], &[2.5]), "positive log-prob"),
        (r#"{"choices": [{"token_ids": [3], "logprobs": {"token_logprobs": [null]}}]}"#, "missing"),
        (r#"{"choices": [{"token_ids": [3], "logprobs": {"token_logprobs": [NaN]}}]}"#, "not a completion"),
    ];
    // Side by side: each case waits out its backoff.
    std::thread::scope(|scope| {
        for (body, problem) in cases {
            scope.spawn(move || {
                let server = Scripted::start(vec![ok(body.to_string())]);
                let err = complete(&server.url).unwrap_err().to_string();
                assert!(err.contains("failed after 3 tries") && err.contains(problem), "{problem}: {err}");
                assert_eq!(server.requests(), 3, "{problem}");
            });
        }
    });
    // A garbled reply that is not repeated costs a retry, not the run.
    let server = Scripted::start(vec![ok("<html>proxy error</html>".into()), ok(completion(&[7], &[-0.1]))]);
    assert_eq!(complete(&server.url).unwrap().ids, [7]);
}
