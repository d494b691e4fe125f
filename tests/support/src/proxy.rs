//! A loopback TCP forwarder a test can cut: [`TcpProxy::cut`] drops every
//! open connection and refuses new ones (accepted, then closed at once), as
//! a network partition looks to a client; [`TcpProxy::restore`] lets
//! connections through again.
//!
//! Plain std threads, two per forwarded connection: enough for a test's
//! handful of clients, and usable from sync and async tests alike.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// A TCP forwarder from a free `127.0.0.1` port to a target address.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cut: bool,
    stopped: bool,
    next_id: u64,
    /// Both sockets of each open forwarded connection.
    open: HashMap<u64, [TcpStream; 2]>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A pump thread that panicked leaves consistent state behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TcpProxy {
    /// Starts forwarding from a free loopback port to `target`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(e) => panic!("cannot bind the proxy's port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("cannot read the proxy's port: {e}"),
        };
        let shared = Arc::new(Shared { target, state: Mutex::new(State::default()) });
        let acceptor = std::thread::Builder::new().name(format!("proxy-{}", addr.port())).spawn({
            let shared = Arc::clone(&shared);
            move || accept(&listener, &shared)
        });
        let acceptor = match acceptor {
            Ok(handle) => handle,
            Err(e) => panic!("cannot start the proxy thread: {e}"),
        };
        TcpProxy { addr, shared, acceptor: Some(acceptor) }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Partitions: closes every forwarded connection and refuses new ones
    /// until [`restore`](Self::restore).
    pub fn cut(&self) {
        let mut state = self.shared.state();
        state.cut = true;
        close_all(&mut state);
    }

    /// Heals the partition: new connections are forwarded again.
    pub fn restore(&self) {
        self.shared.state().cut = false;
    }

    /// How many connections are forwarded right now.
    pub fn open_connections(&self) -> usize {
        self.shared.state().open.len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.stopped = true;
            close_all(&mut state);
        }
        // Wakes the acceptor blocked in accept(); it sees `stopped` and ends.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn close_all(state: &mut State) {
    for [client, server] in state.open.values() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    state.open.clear();
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        {
            let state = shared.state();
            if state.stopped {
                return;
            }
            if state.cut {
                // Dropping the socket closes it: the client sees the
                // connection refused as soon as it reads.
                continue;
            }
        }
        let Ok(server) = TcpStream::connect(shared.target) else { continue };
        if let Err(e) = forward(client, server, shared) {
            eprintln!("proxy to {}: cannot forward a connection: {e}", shared.target);
        }
    }
}

fn forward(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = {
        let mut state = shared.state();
        if state.cut || state.stopped {
            // Cut while this connection was being made.
            return Ok(());
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open.insert(id, [client.try_clone()?, server.try_clone()?]);
        id
    };
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        let shared = Arc::clone(shared);
        std::thread::Builder::new().name("proxy-pump".to_string()).spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            // One direction ended: end the other too, and forget the pair.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            shared.state().open.remove(&id);
        })?;
    }
    Ok(())
}
