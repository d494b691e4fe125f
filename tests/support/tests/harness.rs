//! Tests of the harness itself: real nats-server processes and real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use corral_test_support::nats::NatsCluster;
use corral_test_support::proxy::TcpProxy;

/// Asks a server for `$JS.API.INFO` over the raw client protocol and returns
/// the JSON answer. A request made while the cluster elects a new
/// JetStream meta leader goes unanswered, so it is asked again.
fn jetstream_info(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ask_jetstream_info(addr) {
            Ok(info) => return info,
            Err(e) if Instant::now() < deadline => eprintln!("$JS.API.INFO at {addr}: {e}; asking again"),
            Err(e) => panic!("$JS.API.INFO at {addr}: {e}"),
        }
    }
}

fn ask_jetstream_info(addr: SocketAddr) -> std::io::Result<String> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    assert!(line.starts_with("INFO "), "{line}");
    writer.write_all(
        b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB reply.x 1\r\nPUB $JS.API.INFO reply.x 0\r\n\r\n",
    )?;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.starts_with("PING") {
            writer.write_all(b"PONG\r\n")?;
        }
        if let Some(header) = line.strip_prefix("MSG reply.x 1 ") {
            let len: usize = header.trim().parse().unwrap();
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            return Ok(String::from_utf8(body).unwrap());
        }
    }
}

#[test]
fn three_servers_start_fast_survive_a_kill_and_restart() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3);
    let took = started.elapsed();
    eprintln!("3 servers healthy after {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(cluster.urls().len(), 3);
    for i in 0..3 {
        assert!(cluster.is_healthy(i));
        let info = jetstream_info(cluster.client_addr(i));
        assert!(info.contains("\"level\":"), "{info}");
    }

    let pid = cluster.pid(1).unwrap();
    cluster.kill(1);
    assert_eq!(cluster.pid(1), None);
    assert!(TcpStream::connect(cluster.client_addr(1)).is_err(), "a killed server's port is closed");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the process is gone");
    // The other two still form a JetStream quorum.
    let info = jetstream_info(cluster.client_addr(0));
    assert!(info.contains("\"level\":"), "{info}");

    let restarted = Instant::now();
    cluster.restart(1);
    eprintln!("restart healthy after {:?}", restarted.elapsed());
    assert_ne!(cluster.pid(1), Some(pid));
    assert!(cluster.is_healthy(1));
    let info = jetstream_info(cluster.client_addr(1));
    assert!(info.contains("\"level\":"), "{info}");

    let pids: Vec<u32> = (0..3).map(|i| cluster.pid(i).unwrap()).collect();
    drop(cluster);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "server {pid} outlived its cluster");
    }
}

#[test]
fn single_server_runs_jetstream() {
    let cluster = NatsCluster::start(1);
    let info = jetstream_info(cluster.client_addr(0));
    eprintln!("$JS.API.INFO of a single server: {info}");
    assert!(info.contains("\"level\":"), "{info}");
}

/// An echo server on a free port, one thread per connection.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut stream);
            });
        }
    });
    addr
}

fn echo(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(text)?;
    let mut answer = vec![0; text.len()];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

#[test]
fn proxy_forwards_cuts_and_restores() {
    let proxy = TcpProxy::start(echo_server());
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(echo(&mut client, b"hello").unwrap(), b"hello");
    assert_eq!(proxy.open_connections(), 1);

    proxy.cut();
    assert!(echo(&mut client, b"lost").is_err(), "a cut drops open connections");
    let mut refused = TcpStream::connect(proxy.addr()).unwrap();
    refused.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(echo(&mut refused, b"no").is_err(), "a cut proxy refuses new connections");

    proxy.restore();
    let mut again = TcpStream::connect(proxy.addr()).unwrap();
    again.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(echo(&mut again, b"back").unwrap(), b"back");
}
