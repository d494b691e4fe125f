//! [`TestKit`]: one component, loaded once on a real [`Runtime`] (same engine
//! settings, limits and deterministic stand-ins as the host), driven with
//! requests, events or mutations against the in-memory [`Scene`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_runtime::types::{Event as WitEvent, HttpRequest, Mutation as WitMutation};
use corral_runtime::{
    Bucket, CallContext, FoldStep, InvokeError, InvokeErrorKind, LoadError, Plugin, PluginSettings, Runtime,
    RuntimeConfig, ViewReader as _, World,
};
use corral_schemas::SchemasSection;

use crate::capture::Capture;
use crate::content::Content;
use crate::declared::Schemas;
use crate::given::{Event, Mutation, Request};
use crate::run::{Emitted, Failure, Response, Run};
use crate::scene::Scene;

pub use crate::given::CLOCK_START_MS;

/// Why the kit could not run something (as opposed to a plugin failing,
/// which a [`Run`] reports).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(String),
    /// The component did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The declared schemas are refused (not schemas, or naming what the
    /// plugin does not serve), as the host would refuse them.
    #[error("the plugin's [schemas]: {0}")]
    Schemas(String),
    /// The input does not suit the plugin's world.
    #[error("plugin {plugin} is a {world} plugin; {wanted}")]
    WrongWorld {
        /// The plugin.
        plugin: String,
        /// Its world.
        world: World,
        /// What the test tried.
        wanted: String,
    },
    /// No route of the plugin matches the request.
    #[error("plugin {plugin} serves no route for {method} {path}; its routes: {routes}")]
    NoRoute {
        /// The plugin.
        plugin: String,
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The routes it describes.
        routes: String,
    },
}

/// How the kit loads a component.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where compiled artifacts are cached, so a large JS or Python
    /// component is compiled once [default: `$CORRAL_TESTKIT_CACHE`, else
    /// `corral-testkit-cache` in the system's temporary folder].
    pub cache_dir: Option<PathBuf>,
    /// Name, limits, kv grants and config, as a sidecar would set them.
    pub settings: PluginSettings,
    /// Payload schemas, as a sidecar's `[schemas]` declares them: checked
    /// where the host checks them.
    pub schemas: SchemasSection,
}

impl Default for Options {
    fn default() -> Self {
        let cache_dir = std::env::var_os("CORRAL_TESTKIT_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("corral-testkit-cache"));
        Options { cache_dir: Some(cache_dir), settings: PluginSettings::default(), schemas: SchemasSection::default() }
    }
}

/// A component under test and the in-memory world around it. Kv, views and
/// cart states persist from one call to the next until [`TestKit::reset`].
pub struct TestKit {
    plugin: Plugin,
    schemas: Schemas,
    scene: Scene,
    capture: Capture,
    carts: BTreeMap<(String, String), Vec<u8>>,
    /// The shared kv buckets granted to the plugin, reported after each run.
    shared: Vec<String>,
    /// Cart plugins loaded beside it, by name, serving its `carts` calls.
    cart_plugins: BTreeMap<String, Arc<Plugin>>,
    /// Inputs given so far: numbers ids, sequences and the clock.
    inputs: u64,
    // Last: the plugin's engine outlives nothing it needs, but keep the
    // runtime (and its epoch ticker) for as long as the kit.
    runtime: Runtime,
}

impl TestKit {
    /// Loads the component at `path` with the default [`Options`].
    pub async fn load(path: impl AsRef<Path>) -> Result<TestKit, KitError> {
        TestKit::load_with(path, Options::default()).await
    }

    /// Loads the component at `path`.
    pub async fn load_with(path: impl AsRef<Path>, options: Options) -> Result<TestKit, KitError> {
        // Calls run one at a time: a small pool keeps many kits in one test
        // process from reserving the server's address space each.
        let config = RuntimeConfig { cache_dir: options.cache_dir, max_instances: 4, ..RuntimeConfig::default() };
        let runtime = Runtime::new(config).map_err(|e| KitError::Runtime(format!("{e:#}")))?;
        let shared = options.settings.kv_grants.clone();
        let plugin = runtime.load(path.as_ref(), options.settings).await?;
        let schemas = Schemas::compile(&options.schemas, &plugin).map_err(KitError::Schemas)?;
        Ok(TestKit {
            scene: Scene::new(&BTreeMap::new(), schemas.topics()),
            plugin,
            schemas,
            capture: Capture::new(),
            carts: BTreeMap::new(),
            shared,
            cart_plugins: BTreeMap::new(),
            inputs: 0,
            runtime,
        })
    }

    /// The loaded plugin (name, version, world, descriptor, cache outcome).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Forgets kv, views, cart states and emitted events; restarts ids and the clock.
    pub fn reset(&mut self) {
        self.scene = Scene::new(&self.cart_plugins, self.schemas.topics());
        self.capture.take();
        self.carts.clear();
        self.inputs = 0;
    }

    /// Puts `value` under `key` in the plugin's own kv bucket.
    pub async fn given_kv(&self, key: &str, value: impl Into<Content>) {
        let kv = &self.scene.kv;
        // The in-memory backend never fails.
        let _ = corral_runtime::KvBackend::set(&**kv, &self.bucket(), key, value.into().to_bytes()).await;
    }

    /// Loads the cart plugin at `path` as `name` beside the plugin under
    /// test: its `carts` calls to `name` (granted in
    /// [`Options::settings`]'s `cart_grants`, as a sidecar's `[carts]
    /// plugins` grants them) run this component in memory, one mutation at
    /// a time, its outbox published to the captured events. Carts start
    /// empty and are forgotten by [`TestKit::reset`].
    pub async fn with_cart_plugin(&mut self, name: &str, path: impl AsRef<Path>) -> Result<(), KitError> {
        let settings = PluginSettings { name: Some(name.to_string()), ..PluginSettings::default() };
        let plugin = Arc::new(self.runtime.load(path.as_ref(), settings).await?);
        if plugin.world() != World::Cart {
            return Err(KitError::WrongWorld {
                plugin: plugin.name().to_string(),
                world: plugin.world(),
                wanted: "only cart plugins serve carts calls".into(),
            });
        }
        self.scene.carts.add_plugin(name, plugin.clone());
        self.cart_plugins.insert(name.to_string(), plugin);
        Ok(())
    }

    /// Puts `value` under `key` in the shared kv bucket `bucket` (granted in
    /// [`Options::settings`], as a sidecar's `[kv] buckets` grants it).
    pub async fn given_shared_kv(&self, bucket: &str, key: &str, value: impl Into<Content>) {
        let kv = &self.scene.kv;
        let bucket = Bucket::Shared(bucket.to_string());
        // The in-memory backend never fails.
        let _ = corral_runtime::KvBackend::set(&**kv, &bucket, key, value.into().to_bytes()).await;
    }

    /// Stores a view of `projection` for `tenant`, for route and event
    /// plugins that read views (and projections that fold onto one).
    pub fn given_view(&self, projection: &str, tenant: &str, id: &str, value: impl Into<Content>) {
        self.scene.views.put(tenant, projection, id, value.into().to_bytes());
    }

    /// Sets the state of cart `cart` of `tenant` before its next mutation.
    pub fn given_state(&mut self, tenant: &str, cart: &str, state: impl Into<Content>) {
        self.carts.insert((tenant.to_string(), cart.to_string()), state.into().to_bytes());
    }

    /// Makes every later `emit` fail as unavailable (`Some(reason)`), or
    /// work again (`None`): to test how a plugin copes with a lost log.
    pub fn emit_unavailable(&self, reason: Option<&str>) {
        self.scene.outbox.set_unavailable(reason.map(str::to_string));
    }

    /// Sends one request to a route plugin.
    pub async fn request(&mut self, request: Request) -> Result<Run, KitError> {
        self.require(World::Route, "send it events or mutations, not requests")?;
        let (path, query) = request.split_path();
        let Some((params, method, pattern)) = self.route(&request.method, path) else {
            let routes = self.plugin.descriptor().routes.iter().map(|r| format!("{} {}", r.method, r.pattern));
            return Err(KitError::NoRoute {
                plugin: self.plugin.name().to_string(),
                method: request.method.clone(),
                path: path.to_string(),
                routes: routes.collect::<Vec<_>>().join(", "),
            });
        };
        let mut headers = request.headers.clone();
        if !request.tenant.is_empty() {
            headers.push(("x-corral-tenant".into(), request.tenant.clone()));
        }
        let wit = HttpRequest {
            method: request.method.clone(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            params,
            body: request.body.clone(),
        };
        let id = self.next_input();
        if let Some(refused) = self.schemas.refuse_request(&method, &pattern, &request.body) {
            let run = Run { tenant: request.tenant.clone(), response: Some(refused), ..Run::default() };
            return Ok(self.finish(run).await);
        }
        let call = CallContext {
            request_id: format!("req-{id}"),
            tenant: request.tenant.clone(),
            correlation_id: format!("req-{id}"),
            ..CallContext::default()
        };
        let result = self.capture.run(self.plugin.handle_http(&self.scene.control, call, &wit)).await;
        let mut run = Run { tenant: request.tenant.clone(), ..Run::default() };
        match result {
            Ok(called) => {
                let response = called.value;
                run.response =
                    Some(Response { status: response.status, headers: response.headers, body: response.body });
            }
            Err(error) => run.failures.push(failure(0, format!("request {} {}", request.method, request.path), &error)),
        }
        Ok(self.finish(run).await)
    }

    /// Folds events into a projection (stopping at the first that fails,
    /// as the host does by default) or hands them to an event handler one
    /// by one. Events on topics the plugin does not subscribe to are not
    /// delivered, as in the host; an event handler's schedules subscribe it
    /// to `schedule.PLUGIN.NAME`, where an event stands for a tick.
    pub async fn events(&mut self, events: impl IntoIterator<Item = Event>) -> Result<Run, KitError> {
        let world = self.plugin.world();
        if world != World::Projection && world != World::EventHandler {
            return Err(self.wrong_world("send it events only if it is a projection or an event handler"));
        }
        let mut run = Run::default();
        for (index, event) in events.into_iter().enumerate() {
            if index == 0 {
                run.tenant = event.tenant.clone();
            }
            let wit = self.event(event);
            if !self.subscribes(&wit.topic) {
                continue;
            }
            let input = format!("event [{index}] on {}", wit.topic);
            if world == World::EventHandler {
                let result = self
                    .capture
                    .run(self.plugin.handle_event(&self.scene.control, CallContext::for_event(&wit), &wit))
                    .await;
                // What it queued is published as the host would: on success only.
                let result = match result {
                    Ok(called) => self.plugin.publish_queued(&self.scene.control, called.value).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = result {
                    run.failures.push(failure(index, input, &error));
                }
                continue;
            }
            if let Err(error) = self.fold(&wit).await {
                run.failures.push(failure(index, input, &error));
                break;
            }
        }
        Ok(self.finish(run).await)
    }

    /// Applies mutations to cart `cart` of the default tenant, one after the
    /// other; a refused mutation changes nothing and the next one goes on.
    pub async fn mutations(
        &mut self,
        cart: &str,
        mutations: impl IntoIterator<Item = Mutation>,
    ) -> Result<Run, KitError> {
        self.mutations_for("", cart, mutations).await
    }

    /// Applies mutations to cart `cart` of `tenant`.
    pub async fn mutations_for(
        &mut self,
        tenant: &str,
        cart: &str,
        mutations: impl IntoIterator<Item = Mutation>,
    ) -> Result<Run, KitError> {
        self.require(World::Cart, "send it requests or events, not mutations")?;
        let key = (tenant.to_string(), cart.to_string());
        let mut run = Run { tenant: tenant.to_string(), ..Run::default() };
        for (index, mutation) in mutations.into_iter().enumerate() {
            let input = format!("mutation [{index}] {}", mutation.kind);
            if !self.plugin.descriptor().mutation_kinds.contains(&mutation.kind) {
                let kinds = self.plugin.descriptor().mutation_kinds.join(", ");
                let message = format!("the cart declares no kind {:?} (it declares: {kinds})", mutation.kind);
                run.failures.push(Failure { index, input, kind: "unknown_kind".into(), code: None, message });
                continue;
            }
            if let Err(violation) = self.schemas.mutation(&mutation.kind, &mutation.payload) {
                run.failures.push(mismatch(index, input, "invalid_request", format!("the payload {violation}")));
                continue;
            }
            let wit = self.mutation(cart, mutation);
            let state = self.carts.get(&key).cloned();
            let result = self.capture.run(self.plugin.apply_mutation(tenant, state.as_deref(), &wit)).await;
            match result {
                Ok(called) => {
                    let outcome = called.value;
                    if let Err(violation) = self.schemas.outcome(&outcome) {
                        let message = format!("the cart returned an outcome that {violation}");
                        run.failures.push(mismatch(index, input, "schema_mismatch", message));
                        continue;
                    }
                    run.emitted.extend(outcome.events.into_iter().map(|event| Emitted {
                        topic: event.topic,
                        payload: event.payload,
                        tenant: tenant.to_string(),
                    }));
                    self.carts.insert(key.clone(), outcome.state);
                }
                Err(error) => run.failures.push(failure(index, input, &error)),
            }
        }
        run.state = self.carts.get(&key).cloned();
        Ok(self.finish(run).await)
    }

    /// Folds one event the way the host does: read the view, apply, store.
    async fn fold(&self, event: &WitEvent) -> Result<(), InvokeError> {
        let views = &self.scene.views;
        let name = self.plugin.name().to_string();
        let tenant = event.tenant.clone();
        let read = async |id: &str| views.get(&tenant, &name, id).await.map_err(|e| e.to_string());
        let step = self.capture.run(self.plugin.fold(event, read)).await?.value;
        match step {
            FoldStep::Skip => {}
            FoldStep::Put { id, value } => views.put(&event.tenant, &name, &id, value),
            FoldStep::Delete { id } => {
                views.delete(&event.tenant, &name, &id);
            }
        }
        Ok(())
    }

    /// Adds what every run reports: kv, views, emitted events and logs.
    async fn finish(&self, mut run: Run) -> Run {
        run.kv = self.scene.kv.dump(&self.bucket()).into_iter().collect();
        for name in &self.shared {
            let entries = self.scene.kv.dump(&Bucket::Shared(name.clone()));
            run.shared_kv.insert(name.clone(), entries.into_iter().collect());
        }
        run.views = self
            .scene
            .views
            .dump(self.plugin.name())
            .into_iter()
            .map(|(tenant, id, value)| ((tenant, id), value))
            .collect();
        run.emitted.extend(self.scene.outbox.take().into_iter().map(|event| Emitted {
            topic: event.topic,
            payload: event.payload,
            tenant: event.tenant,
        }));
        run.logs = self.capture.take();
        run
    }

    fn bucket(&self) -> Bucket {
        Bucket::Plugin(self.plugin.name().to_string())
    }

    fn next_input(&mut self) -> u64 {
        self.inputs += 1;
        self.inputs
    }

    fn clock(&self) -> u64 {
        CLOCK_START_MS + self.inputs * 1000
    }

    fn event(&mut self, event: Event) -> WitEvent {
        let sequence = self.next_input();
        let id = event.id.unwrap_or_else(|| format!("evt-{sequence}"));
        WitEvent {
            correlation_id: id.clone(),
            id,
            topic: event.topic,
            sequence,
            timestamp_ms: event.timestamp_ms.unwrap_or_else(|| self.clock()),
            tenant: event.tenant,
            traceparent: None,
            payload: event.payload,
        }
    }

    fn mutation(&mut self, cart: &str, mutation: Mutation) -> WitMutation {
        let n = self.next_input();
        WitMutation {
            id: mutation.id.unwrap_or_else(|| format!("mut-{n}")),
            entity: cart.to_string(),
            kind: mutation.kind,
            timestamp_ms: mutation.timestamp_ms.unwrap_or_else(|| self.clock()),
            payload: mutation.payload,
        }
    }

    /// The route the host would route the request to, if any (the host's
    /// own route table): its params, method and pattern.
    fn route(&self, method: &str, path: &str) -> Option<(corral_routes::Params, String, String)> {
        let routes: Vec<(String, String)> =
            self.plugin.descriptor().routes.iter().map(|r| (r.method.clone(), r.pattern.clone())).collect();
        let mut table = corral_routes::RouteTable::new();
        table.add(self.plugin.name(), (), &routes).ok()?;
        match table.route(method, path) {
            corral_routes::Match::Found { params, method, pattern, .. } => {
                Some((params, method.to_string(), pattern.to_string()))
            }
            _ => None,
        }
    }

    /// Whether the host would deliver events on `topic` to the plugin.
    fn subscribes(&self, topic: &str) -> bool {
        let descriptor = self.plugin.descriptor();
        descriptor.topics.iter().any(|pattern| corral_runtime::topics::matches(pattern, topic))
            || (self.plugin.world() == World::EventHandler
                && descriptor
                    .schedules
                    .iter()
                    .any(|schedule| topic == format!("schedule.{}.{}", self.plugin.name(), schedule.name)))
    }

    fn require(&self, world: World, otherwise: &str) -> Result<(), KitError> {
        if self.plugin.world() == world { Ok(()) } else { Err(self.wrong_world(otherwise)) }
    }

    fn wrong_world(&self, wanted: &str) -> KitError {
        KitError::WrongWorld {
            plugin: self.plugin.name().to_string(),
            world: self.plugin.world(),
            wanted: wanted.to_string(),
        }
    }
}

/// A refusal by a declared schema, with the code specs expect it by.
fn mismatch(index: usize, input: String, kind: &str, message: String) -> Failure {
    Failure { index, input, kind: kind.into(), code: Some("schema_mismatch".into()), message }
}

fn failure(index: usize, input: String, error: &InvokeError) -> Failure {
    let (code, message) = match &error.kind {
        InvokeErrorKind::Guest { code, message } => (Some(code.clone()), message.clone()),
        other => (None, other.to_string()),
    };
    Failure { index, input, kind: error.kind.label().to_string(), code, message }
}
