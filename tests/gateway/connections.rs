//! One sandbox cannot hold agentd's descriptors: connections per execution are
//! capped (the listen backlog, not agentd, absorbs a flood), and idle or slow
//! connections are closed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

use agentd::gateway::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS_PER_EXECUTION as CAP};

#[tokio::test]
async fn a_connection_flood_is_held_in_the_backlog_not_in_agentd() {
    let door = Door::open().await;
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(tokio::net::UnixStream::connect(&door.path).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = door.socket.open_connections();
    assert!(open <= CAP, "{open} connections accepted");
    // Once the flood goes, the door is usable again at once.
    drop(flood);
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(10),
        post(&door.path, "/v1/messages", &[], messages_request()),
    )
    .await
    .expect("answered");
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    door.close().await;
}

/// Reads until the gateway closes the connection; how long that took.
async fn closed_within(stream: &mut tokio::net::UnixStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let door = Door::open().await;
    let mut silent = tokio::net::UnixStream::connect(&door.path).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(25)).await;
    assert!(
        took.is_some(),
        "a connection that never sent a byte stayed open"
    );
    door.close().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let door = Door::open().await;
    let mut stream = tokio::net::UnixStream::connect(&door.path).await.unwrap();
    let body = messages_request().to_string();
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // The answer (streamed, chunked) arrives; then the connection idles.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    while !String::from_utf8_lossy(&answer).contains("\r\n0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("answer")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let took = closed_within(&mut stream, HEADER_READ_TIMEOUT * 2).await;
    assert!(took.is_some(), "an idle keep-alive connection stayed open");
    door.close().await;
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_off() {
    let door = Door::open().await;
    let mut stream = tokio::net::UnixStream::connect(&door.path).await.unwrap();
    let head = b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-stainless-os: Linux\r\nx-stainless-arch: x64\r\n";
    let started = Instant::now();
    let mut cut = false;
    for byte in head.iter().cycle().take(60) {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1024];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut probe)).await
        {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a head trickled for {:?} was still being read",
        started.elapsed()
    );
    assert!(door.upstream_saw().is_empty());
    door.close().await;
}
