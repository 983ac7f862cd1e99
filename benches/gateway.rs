//! Figures for the gateway (issue 4), measured side by side in one run:
//!
//! 1. Latency added per request: the same small streamed Messages request sent
//!    directly to the scripted upstream over TCP, and through an execution's
//!    gateway socket (unix socket → gateway → upstream), median and p99 of each,
//!    and through socat (TCP → unix socket → gateway → upstream, the exact path
//!    a sandbox uses) when socat is installed.
//! 2. Streaming throughput of a large answer through the same paths.
//!
//! Run with `cargo bench --bench gateway` (or `scripts/bench-gateway`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd::execution::GatewayUsage;
use agentd::gateway::{Account, Gateway, ModelLimits, NoObserver, Route, Upstream};
use agentd::scripted::{Scenario, ScriptedModel};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

const REQUESTS: usize = 2000;
const BIG_ANSWER_BYTES: usize = 64 << 20;
const BIG_RUNS: usize = 5;

fn scenario(text: &str) -> Scenario {
    let json = serde_json::json!({"turns": [{
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 10, "output_tokens": 10}
    }], "after_last": "repeat_last"});
    Scenario::from_json(&json.to_string()).expect("scenario")
}

fn request_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "model": "claude-sonnet-4-5", "stream": true, "max_tokens": 100,
            "tools": [{"name": "Write", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "hello"}]
        })
        .to_string(),
    )
}

/// One keep-alive HTTP/1 connection.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn tcp(addr: &str) -> Connection {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        stream.set_nodelay(true).ok();
        Connection::over(stream).await
    }

    async fn unix(path: &Path) -> Connection {
        let stream = tokio::net::UnixStream::connect(path).await.expect("unix");
        Connection::over(stream).await
    }

    async fn over<S>(stream: S) -> Connection
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Connection { sender }
    }

    /// Sends one Messages request and reads the whole streamed answer; returns
    /// its byte count.
    async fn messages(&mut self, body: &Bytes) -> usize {
        let request = Request::post("/v1/messages?beta=true")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("x-api-key", "placeholder")
            .body(Full::new(body.clone()))
            .expect("request");
        self.sender.ready().await.expect("connection kept alive");
        let response = self.sender.send_request(request).await.expect("send");
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut bytes = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                bytes += data.len();
            }
        }
        bytes
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn latencies(mut connect: impl AsyncFnMut() -> Connection) -> (Duration, Duration) {
    let body = request_body();
    let mut connection = connect().await;
    for _ in 0..100 {
        connection.messages(&body).await;
    }
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        connection.messages(&body).await;
        times.push(started.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

async fn throughput(mut connect: impl AsyncFnMut() -> Connection) -> f64 {
    let body = request_body();
    let mut best = 0.0f64;
    let mut results = Vec::new();
    for _ in 0..BIG_RUNS {
        let mut connection = connect().await;
        let started = Instant::now();
        let bytes = connection.messages(&body).await;
        let rate = bytes as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64;
        results.push(rate);
        best = best.max(rate);
    }
    results.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    results[results.len() / 2]
}

fn socat(port: u16, socket: &Path) -> Option<Child> {
    Command::new("socat")
        .arg(format!(
            "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay"
        ))
        .arg(format!("UNIX-CONNECT:{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

async fn gateway_socket(upstream: &str, path: &Path) -> agentd::gateway::ExecutionSocket {
    let gateway = Gateway::new(Upstream::new(upstream, None).expect("upstream")).expect("gateway");
    let route = Route {
        upstream: gateway.upstream().clone(),
        account: Arc::new(Account::new(
            ModelLimits::default(),
            gateway.prices(),
            GatewayUsage::default(),
            Default::default(),
        )),
        observer: Arc::new(NoObserver),
        recorder: None,
        tenant: Default::default(),
        tool_uses: None,
    };
    gateway.open(path, route).expect("socket")
}

#[tokio::main]
async fn main() {
    let dir = tempfile::Builder::new()
        .prefix("gw")
        .tempdir_in("/tmp")
        .expect("tmp");

    // Latency: a small answer.
    let small = ScriptedModel::start(scenario("ok"), ([127, 0, 0, 1], 0).into())
        .await
        .expect("scripted");
    let small_addr = small.addr().to_string();
    let small_socket = dir.path().join("small.sock");
    let _small_gateway = gateway_socket(&small.base_url(), &small_socket).await;
    let small_port = free_port();
    let small_socat = socat(small_port, &small_socket);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let direct = latencies(async || Connection::tcp(&small_addr).await).await;
    let gateway = latencies(async || Connection::unix(&small_socket).await).await;
    println!("requests: {REQUESTS} sequential small streamed Messages requests per path");
    println!(
        "direct to the scripted upstream (TCP):    median {:>7.1} µs, p99 {:>7.1} µs",
        micros(direct.0),
        micros(direct.1)
    );
    println!(
        "through the gateway (unix socket):        median {:>7.1} µs, p99 {:>7.1} µs",
        micros(gateway.0),
        micros(gateway.1)
    );
    println!(
        "added by the gateway: median {:.1} µs ({:.2}x), p99 {:.1} µs ({:.2}x)",
        micros(gateway.0) - micros(direct.0),
        micros(gateway.0) / micros(direct.0),
        micros(gateway.1) - micros(direct.1),
        micros(gateway.1) / micros(direct.1)
    );
    let socat_addr = format!("127.0.0.1:{small_port}");
    if small_socat.is_some() {
        let sandbox = latencies(async || Connection::tcp(&socat_addr).await).await;
        println!(
            "sandbox path (TCP → socat → socket → gateway): median {:>7.1} µs, p99 {:>7.1} µs ({:.2}x / {:.2}x direct)",
            micros(sandbox.0),
            micros(sandbox.1),
            micros(sandbox.0) / micros(direct.0),
            micros(sandbox.1) / micros(direct.1)
        );
    } else {
        println!("socat not installed: the sandbox path (with socat) was not measured");
    }

    // Throughput: one large streamed answer.
    let text = "agentd ".repeat(BIG_ANSWER_BYTES / 7);
    let big = ScriptedModel::start(scenario(&text), ([127, 0, 0, 1], 0).into())
        .await
        .expect("scripted");
    let big_addr = big.addr().to_string();
    let big_socket = dir.path().join("big.sock");
    let _big_gateway = gateway_socket(&big.base_url(), &big_socket).await;
    let direct_rate = throughput(async || Connection::tcp(&big_addr).await).await;
    let gateway_rate = throughput(async || Connection::unix(&big_socket).await).await;
    println!(
        "streaming a {} MiB answer, median of {BIG_RUNS}: direct TCP {:.0} MiB/s, through the gateway socket {:.0} MiB/s ({:.2}x)",
        BIG_ANSWER_BYTES >> 20,
        direct_rate,
        gateway_rate,
        gateway_rate / direct_rate
    );

    if let Some(mut child) = small_socat {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
