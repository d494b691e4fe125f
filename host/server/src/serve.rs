//! `host run`: opens storage, loads the plugins, serves the public and the
//! admin listeners, and shuts down gracefully on SIGINT/SIGTERM: stop
//! accepting, let in-flight requests finish (bounded), flush storage, exit 0.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_runtime::{ControlPlane, Runtime, RuntimeConfig};
use corral_storage::{Storage, StorageOptions};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Admin;
use crate::config::RunConfig;
use crate::control::Embedded;
use crate::dispatch::Dispatch;
use crate::gateway::{Body, Gateway, HttpLimits};
use crate::generations::Projections;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::retention;
use corral_storage::stream;

/// Runs the host until a shutdown signal.
pub(crate) async fn run(config: RunConfig) -> anyhow::Result<()> {
    let lmdb = config.data_dir.join("lmdb");
    let storage = Storage::open(&lmdb, &StorageOptions::default())
        .with_context(|| format!("opening storage in {}", lmdb.display()))?;
    let metrics = Arc::new(Metrics::new()?);
    let stream = Arc::new(stream::Embedded::new(storage.clone(), true).context("starting the event log")?);
    let embedded = Arc::new(Embedded::new(stream.clone(), metrics.clone()));
    // Bound to the carts below: they need the registry, which needs the runtime.
    let carts_client = crate::carts::CartsClient::new();
    let control =
        ControlPlane { kv: embedded.clone(), events: embedded.clone(), views: embedded, carts: carts_client.clone() };
    let runtime_config = RuntimeConfig { cache_dir: Some(config.cache_dir.clone()), ..RuntimeConfig::default() };
    let runtime = Runtime::new(runtime_config, control)?;
    let registry = Registry::open(runtime, &config.plugins, &config.data_dir, metrics.clone()).await?;
    let carts = {
        let stream = stream.clone();
        let machines: Arc<dyn crate::carts::Machines> = registry.clone();
        crate::carts::Carts::new(
            machines,
            storage.clone(),
            move |head| stream.announce(head),
            metrics.carts(),
            config.carts,
        )
        .context("starting the cart journal")?
    };
    // Before any request or event reaches a plugin (only `describe()` has
    // run): until bound, the `carts` import answers unavailable.
    carts_client.bind(&carts);
    let (stop, stopped) = watch::channel(false);
    let mut background = tokio::task::JoinSet::new();
    // Watch before announcing readiness, then catch up on anything that
    // changed while the plugins were loading.
    if config.watch {
        let watcher = crate::watch::spawn(registry.clone(), stopped.clone())?;
        background.spawn(async move {
            let _ = watcher.await;
        });
        registry.rescan().await?;
    }

    let public = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the public listener on {}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding the admin listener on {}", config.admin_listen))?;
    let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
    let catalog = registry.catalog();
    // One line on stdout, for people and for scripts that wait for it.
    println!("corral: serving {} plugin(s) on http://{public_addr} (admin http://{admin_addr})", catalog.slots.len());
    std::io::stdout().flush()?;
    tracing::info!(%public_addr, %admin_addr, plugins = catalog.slots.len(), failed = catalog.failures.len(), "ready");

    let dispatch = Arc::new(Dispatch::default());
    background.spawn(dispatch.clone().supervise(registry.clone(), stream.clone(), metrics.clone(), stopped.clone()));
    let projections = Arc::new(Projections::new(stream.clone(), metrics.clone()));
    background.spawn(projections.clone().supervise(registry.clone(), stopped.clone()));
    let consumers: retention::Consumers = {
        let (dispatch, projections) = (dispatch.clone(), projections.clone());
        Arc::new(move || dispatch.consumers().into_iter().chain(projections.consumers()).collect())
    };
    background.spawn(retention::run(storage.clone(), config.retention, consumers, stopped.clone()));
    background.spawn(carts.clone().sweep(stopped.clone()));
    let gateway = Arc::new(Gateway {
        registry: registry.clone(),
        storage: storage.clone(),
        metrics: metrics.clone(),
        limits: HttpLimits {
            max_request_bytes: config.max_request_bytes,
            max_response_bytes: config.max_response_bytes,
        },
        carts: carts.clone(),
        grpc: crate::cart_grpc::service(carts.clone()),
    });
    let admin_state = Arc::new(Admin { registry, metrics, stream: stream.clone(), dispatch, projections, carts });
    let public_task = tokio::spawn(accept(
        public,
        move |request| {
            let gateway = gateway.clone();
            async move { gateway.handle(request).await }
        },
        stopped.clone(),
        config.clone(),
    ));
    let admin_task = tokio::spawn(accept(
        admin,
        move |request| {
            let admin = admin_state.clone();
            async move { admin.handle(request).await }
        },
        stopped,
        config.clone(),
    ));

    shutdown_signal().await?;
    tracing::info!(
        timeout_ms = config.shutdown_timeout.as_millis() as u64,
        "shutting down: draining in-flight requests"
    );
    let _ = stop.send(true);
    let (public_done, admin_done) = tokio::join!(public_task, admin_task);
    public_done.context("public listener task")?;
    admin_done.context("admin listener task")?;
    // Dispatchers stop between events; an unacknowledged event is simply
    // delivered again after the restart.
    while background.join_next().await.is_some() {}
    storage.sync().context("flushing storage")?;
    tracing::info!("stopped");
    Ok(())
}

/// Accepts connections (HTTP/1.1 and h2c) until told to stop, then waits
/// for open connections to finish their requests, at most the timeout.
async fn accept<H, F>(
    listener: TcpListener,
    handler: H,
    mut stop: watch::Receiver<bool>,
    config: crate::config::RunConfig,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(config.max_header_bytes).max_headers(128);
    builder.http2().max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(request).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!("connection ended with an error: {error}");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {:?}; closing them", config.shutdown_timeout);
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
