//! Connecting: the NATS client (retrying the first connection, reconnecting
//! forever), the connection watch, the JetStream API level check, then the
//! stream and buckets, created or updated to the options.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, object_store, stream};
use async_nats::{ConnectOptions, Event};
use tokio::sync::watch;

use crate::store::Bucket;
use crate::{Cluster, ClusterError, ClusterOptions, Inner, names};

/// The JetStream API level of NATS 2.12, the first with atomic batch
/// publish (ADR-44 levels: 2.11 is 1, 2.12 is 2; 2.15.1 reports 5).
pub const ATOMIC_PUBLISH_API_LEVEL: usize = 2;

impl Cluster {
    /// Connects, checks that the server supports what is used here, and
    /// creates (or updates to these options) the stream `CORRAL_<name>`
    /// with subjects `<name>.ev.>`, `<name>.cj.>`, `<name>.ci.>` and the
    /// checkpoints, leases, members, snapshots, deploys and secrets buckets
    /// and the artifacts object store.
    ///
    /// Retries until NATS answers and has placed the stream and buckets, or
    /// [`ClusterOptions::connect_timeout`] passes (a cluster still forming
    /// refuses placement for a moment); after that the client reconnects
    /// forever on its own.
    pub async fn connect(options: ClusterOptions) -> Result<Cluster, ClusterError> {
        validate(&options)?;
        let deadline = Instant::now() + options.connect_timeout;
        let (connected_tx, connected) = watch::channel(false);
        let mut connect = ConnectOptions::new()
            .name(format!("corral {} {}", options.name, options.node_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .request_timeout(Some(options.request_timeout))
            .event_callback(move |event| {
                let connected_tx = connected_tx.clone();
                async move {
                    match event {
                        Event::Connected => {
                            connected_tx.send_replace(true);
                        }
                        Event::Disconnected | Event::Closed => {
                            connected_tx.send_replace(false);
                        }
                        _ => {}
                    }
                }
            });
        if options.ignore_discovered_servers {
            connect = connect.ignore_discovered_servers();
        }
        let urls = options.urls.join(", ");
        let client = connect
            .connect(options.urls.clone())
            .await
            .map_err(|e| ClusterError::from_nats(format!("connecting to {urls}"), &e))?;
        let mut context = jetstream::new(client.clone());
        context.set_timeout(options.request_timeout);

        let api_level = check_api_level(&client, &context, deadline, &urls).await?;
        // JetStream answered, so the client is connected; the event saying
        // so may still be on its way to the watch.
        let mut watch = connected.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), watch.wait_for(|connected| *connected)).await;
        // A cluster that is still forming (a server not yet seen by the
        // meta leader: "no suitable peers for placement") refuses to place
        // replicated streams for a moment; keep asking until the deadline.
        let stream = settle(deadline, || ensure_stream(&context, &options)).await?;
        let open = |kind, ttl, history| settle_bucket(&context, &options, deadline, kind, ttl, history);
        let checkpoints = open("checkpoints", None, 1).await?;
        let leases = open("leases", Some(options.lease_ttl), 1).await?;
        let members = open("members", Some(options.member_ttl), 1).await?;
        let snapshots = open("snapshots", None, 1).await?;
        let deploys = open("deploys", None, DEPLOY_HISTORY).await?;
        let secrets = open("secrets", None, 1).await?;
        let artifacts = settle(deadline, || open_artifacts(&context, &options)).await?;
        Ok(Cluster {
            inner: Arc::new(Inner {
                options,
                api_level,
                client,
                context,
                stream,
                connected,
                checkpoints,
                leases,
                members,
                snapshots,
                deploys,
                secrets,
                artifacts,
                buckets: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `deadline`
/// passes, pausing between tries (50 ms doubling to 1 s). Only
/// [`ClusterError::Unavailable`] is tried again: no leader yet, a peer the
/// meta leader has not heard from, a request timed out.
async fn settle<T, F: Future<Output = Result<T, ClusterError>>>(
    deadline: Instant,
    mut attempt: impl FnMut() -> F,
) -> Result<T, ClusterError> {
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(error @ ClusterError::Unavailable { .. }) if Instant::now() + pause < deadline => {
                tracing::info!(%error, "the NATS cluster cannot place this yet; asking again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

/// [`open_bucket`] for the bucket `kind` of the cluster, [`settle`]d.
async fn settle_bucket(
    context: &jetstream::Context,
    options: &ClusterOptions,
    deadline: Instant,
    kind: &str,
    ttl: Option<Duration>,
    history: i64,
) -> Result<Bucket, ClusterError> {
    let bucket = names::bucket(&options.name, kind);
    settle(deadline, || open_bucket(context, options, &bucket, ttl, history)).await
}

fn validate(options: &ClusterOptions) -> Result<(), ClusterError> {
    names::validate_cluster_name(&options.name)?;
    if options.urls.is_empty() {
        return Err(ClusterError::invalid("NATS urls", "give at least one, e.g. nats://127.0.0.1:4222"));
    }
    if let Some(url) = options.urls.iter().find(|url| url.contains(',')) {
        return Err(ClusterError::invalid(
            format!("NATS url {url:?}"),
            "one url per element: split comma-separated lists with ClusterOptions::split_urls",
        ));
    }
    if options.node_id.is_empty() {
        return Err(ClusterError::invalid("node id", "it must not be empty"));
    }
    if !(1..=5).contains(&options.replicas) {
        return Err(ClusterError::invalid(format!("replicas {}", options.replicas), "JetStream allows 1 to 5"));
    }
    for (what, ttl) in [("lease ttl", options.lease_ttl), ("member ttl", options.member_ttl)] {
        if ttl < Duration::from_secs(1) {
            return Err(ClusterError::invalid(format!("{what} {ttl:?}"), "use at least 1 s"));
        }
    }
    Ok(())
}

/// Asks `$JS.API.INFO` (retrying while the client connects or JetStream
/// elects a leader) and refuses servers below atomic batch publish.
async fn check_api_level(
    client: &async_nats::Client,
    context: &jetstream::Context,
    deadline: Instant,
    urls: &str,
) -> Result<usize, ClusterError> {
    let mut pause = Duration::from_millis(50);
    let account = loop {
        match context.query_account().await {
            Ok(account) => break account,
            Err(e) if Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "JetStream not answering yet at {urls}; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                let error = ClusterError::from_nats(format!("asking JetStream at {urls} for account info"), &e);
                return Err(match error {
                    ClusterError::Refused { what, cause } => {
                        ClusterError::Unsupported(format!("{what}: {cause} (is JetStream enabled?)"))
                    }
                    other => other,
                });
            }
        }
    };
    let level = account.requests.level;
    if level < ATOMIC_PUBLISH_API_LEVEL {
        let version = client.server_info().version;
        return Err(ClusterError::Unsupported(format!(
            "{urls} runs nats-server {version} (JetStream API level {level}); Corral needs nats-server 2.12 or \
             newer (API level {ATOMIC_PUBLISH_API_LEVEL}) for atomic batch publish"
        )));
    }
    Ok(level)
}

async fn ensure_stream(context: &jetstream::Context, options: &ClusterOptions) -> Result<stream::Stream, ClusterError> {
    let name = options.stream_name();
    let config = stream::Config {
        name: name.clone(),
        description: Some(format!("Corral cluster {}: events, cart journals, idempotency markers", options.name)),
        subjects: ["ev", "cj", "ci"].iter().map(|kind| format!("{}.{kind}.>", options.name)).collect(),
        // Retention purges explicitly below the lowest checkpoint.
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: options.replicas,
        duplicate_window: options.duplicate_window,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    };
    context
        .create_or_update_stream(config)
        .await
        .map_err(|e| ClusterError::from_nats(format!("creating or updating stream {name}"), &e))?;
    context.get_stream(&name).await.map_err(|e| ClusterError::from_nats(format!("opening stream {name}"), &e))
}

/// Revisions of each plugin's desired state the deploys bucket keeps (what
/// `host rollout status` shows of a plugin's past).
pub const DEPLOY_HISTORY: i64 = 16;

/// Creates or updates a bucket of the cluster: `history` values per key,
/// the cluster's replicas, entries expiring after `ttl` (leaving a marker
/// that watchers see, which itself expires after another `ttl`).
pub(crate) async fn open_bucket(
    context: &jetstream::Context,
    options: &ClusterOptions,
    bucket: &str,
    ttl: Option<Duration>,
    history: i64,
) -> Result<Bucket, ClusterError> {
    let config = kv::Config {
        bucket: bucket.to_string(),
        description: format!("Corral cluster {}", options.name),
        history,
        max_age: ttl.unwrap_or_default(),
        storage: stream::StorageType::File,
        num_replicas: options.replicas,
        limit_markers: ttl,
        ..Default::default()
    };
    let store = context
        .create_or_update_key_value(config)
        .await
        .map_err(|e| ClusterError::from_nats(format!("creating or updating kv bucket {bucket}"), &e))?;
    Ok(Bucket::new(store))
}

/// Opens (or creates) the object store holding deployed components. An
/// existing store is opened as it is (unlike the buckets, its replicas are
/// not updated to these options: a node started with other replicas than
/// the first still joins).
async fn open_artifacts(
    context: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<object_store::ObjectStore, ClusterError> {
    let bucket = names::bucket(&options.name, "artifacts");
    if let Ok(store) = context.get_object_store(&bucket).await {
        return Ok(store);
    }
    let config = object_store::Config {
        bucket: bucket.clone(),
        description: Some(format!("Corral cluster {}: deployed components by content hash", options.name)),
        storage: stream::StorageType::File,
        num_replicas: options.replicas,
        ..Default::default()
    };
    match context.create_object_store(config).await {
        Ok(store) => Ok(store),
        // Another node created it in between.
        Err(error) => context
            .get_object_store(&bucket)
            .await
            .map_err(|_| ClusterError::from_nats(format!("creating object store {bucket}"), &error)),
    }
}
