//! The config file of one test server. nats-server 2.15 rejects unknown
//! keys, so a misspelt key fails the start rather than being ignored.

use std::fmt::Write as _;
use std::path::Path;

/// What differs between the servers of a test cluster.
pub(super) struct ServerConfig<'a> {
    pub(super) name: &'a str,
    pub(super) cluster: &'a str,
    pub(super) client_port: u16,
    pub(super) route_port: u16,
    pub(super) http_port: u16,
    pub(super) store: &'a Path,
    pub(super) log: &'a Path,
    /// Route ports of the other servers of the cluster; empty for a single
    /// server.
    pub(super) peers: &'a [u16],
    /// Whether the server is one of a cluster (a cluster of one has no peers).
    pub(super) clustered: bool,
}

/// The config file text.
pub(super) fn render(config: &ServerConfig<'_>) -> String {
    let mut text = format!(
        r#"server_name: "{name}"
listen: "127.0.0.1:{client}"
http: "127.0.0.1:{http}"
log_file: "{log}"
jetstream {{
  store_dir: "{store}"
  # fsync every write: a killed server keeps what it acknowledged
  sync_interval: always
  limits {{
    batch {{
      max_inflight_per_stream: 1000
    }}
  }}
}}
"#,
        name = config.name,
        client = config.client_port,
        http = config.http_port,
        log = config.log.display(),
        store = config.store.display(),
    );
    if config.clustered {
        let routes: Vec<String> = config.peers.iter().map(|port| format!("nats-route://127.0.0.1:{port}")).collect();
        // Infallible: writing to a String.
        let _ = write!(
            text,
            r#"cluster {{
  name: "{cluster}"
  listen: "127.0.0.1:{route}"
  routes: [{routes}]
}}
"#,
            cluster = config.cluster,
            route = config.route_port,
            routes = routes.join(", "),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{ServerConfig, render};

    #[test]
    fn single_server_has_no_cluster_block() {
        let text = render(&ServerConfig {
            name: "n0",
            cluster: "c",
            client_port: 1,
            route_port: 2,
            http_port: 3,
            store: Path::new("/s"),
            log: Path::new("/l"),
            peers: &[],
            clustered: false,
        });
        assert!(text.contains("sync_interval: always"));
        assert!(text.contains("max_inflight_per_stream: 1000"));
        assert!(!text.contains("cluster"));
    }

    #[test]
    fn cluster_routes_to_every_peer() {
        let text = render(&ServerConfig {
            name: "n0",
            cluster: "c",
            client_port: 1,
            route_port: 2,
            http_port: 3,
            store: Path::new("/s"),
            log: Path::new("/l"),
            peers: &[5, 8],
            clustered: true,
        });
        assert!(text.contains("routes: [nats-route://127.0.0.1:5, nats-route://127.0.0.1:8]"));
    }
}
