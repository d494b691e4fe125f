//! `host check`, `host inspect` and `host schema export`: mount components
//! exactly as the server does (same engine settings, same cache, same
//! sidecar checks) and report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use corral_runtime::{Plugin, Runtime, RuntimeConfig, World};
use corral_server::http::openapi;
use corral_server::metrics::Metrics;
use corral_server::plugins::{Component, Mounted, Sidecar, conflicts, mount};

/// A runtime for offline inspection: the real engine and cache; only
/// `describe()` runs.
fn runtime(data_dir: &Path) -> anyhow::Result<Runtime> {
    let config = RuntimeConfig { cache_dir: Some(data_dir.join("cache")), ..RuntimeConfig::default() };
    Runtime::new(config)
}

/// Expands folders into the `.wasm` files they hold, sorted.
fn components(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading folder {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "wasm"))
                .collect();
            found.sort();
            if found.is_empty() {
                anyhow::bail!("{} holds no .wasm components", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Mounts one component with its sidecar, as `host run` would.
async fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<Mounted> {
    let metrics = Metrics::new()?;
    let component = Component::read(path)?;
    Ok(mount(runtime, &component, &Sidecar::path_for(path), &metrics).await?)
}

/// `host check`: one line per component, then what keeps the ones that
/// loaded from being served together (names, routes, topic schemas);
/// non-zero exit if anything fails.
pub(crate) async fn check(data_dir: &Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let runtime = runtime(data_dir)?;
    let mut failed = 0;
    let mut loaded = Vec::new();
    for path in components(paths)? {
        match load(&runtime, &path).await {
            Ok(mounted) => {
                let plugin = &mounted.plugin;
                println!(
                    "ok     {}: {} {} ({}, {} ms, cache {})",
                    path.display(),
                    plugin.name(),
                    plugin.version(),
                    plugin.world(),
                    plugin.load_time().as_millis(),
                    plugin.cache_outcome().name()
                );
                loaded.push(mounted);
            }
            Err(error) => {
                failed += 1;
                println!("error  {error:#}");
            }
        }
    }
    for conflict in conflicts(&loaded) {
        failed += 1;
        println!("error  {conflict}");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `host schema export`: the declared schemas and the OpenAPI document of
/// the components at `paths`, written into `out`.
pub(crate) async fn export(data_dir: &Path, paths: &[PathBuf], out: &Path) -> anyhow::Result<ExitCode> {
    let runtime = runtime(data_dir)?;
    let mut loaded = Vec::new();
    for path in components(paths)? {
        loaded.push(load(&runtime, &path).await?);
    }
    if let Some(conflict) = conflicts(&loaded).into_iter().next() {
        anyhow::bail!("{conflict}");
    }
    let folder = out.join("schemas");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    for (name, document) in openapi::schemas(&loaded) {
        let file = folder.join(format!("{}.json", file_name(&name)));
        write_json(&file, &document)?;
    }
    write_json(&out.join("openapi.json"), &openapi::openapi(&loaded))?;
    Ok(ExitCode::SUCCESS)
}

/// A schema's name as a file name: `shop/routes/POST /orders/:id/request`
/// → `shop.routes.POST.orders.id.request`.
fn file_name(name: &str) -> String {
    let parts = name.split(['/', ' ', ':']).filter(|p| !p.is_empty());
    parts.map(|p| if p == "*" { "any" } else { p }).collect::<Vec<_>>().join(".")
}

fn write_json(file: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))?;
    println!("wrote  {}", file.display());
    Ok(())
}

/// `host inspect`: everything the host knows about one component.
pub(crate) async fn inspect(data_dir: &Path, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let runtime = runtime(data_dir)?;
    let mounted = load(&runtime, file).await?;
    let (plugin, sidecar) = (&mounted.plugin, &mounted.sidecar);
    if json {
        let mut report = report(plugin, sidecar);
        report["schemas"] = mounted.schemas.all().map(|s| (s.name().to_string(), s.document().clone())).collect();
        if plugin.world() == World::Projection {
            report["indexes"] = mounted.indexes.iter().map(|(_, index)| index.name()).collect();
            report["scan_limit"] = sidecar.projection.scan_limit.into();
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(plugin, sidecar);
        let names: Vec<&str> = mounted.schemas.all().map(|s| s.name()).collect();
        if !names.is_empty() {
            println!("schemas    {}", names.join("\n           "));
        }
        let indexes: Vec<String> = mounted.indexes.iter().map(|(_, index)| format!("[{}]", index.name())).collect();
        if !indexes.is_empty() {
            println!("indexes    {} (scan limit {})", indexes.join(" "), sidecar.projection.scan_limit);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(plugin: &Plugin, sidecar: &Sidecar) -> serde_json::Value {
    let descriptor = plugin.descriptor();
    let limits = plugin.limits();
    serde_json::json!({
        "file": plugin.path(),
        "name": plugin.name(),
        "version": plugin.version(),
        "world": plugin.world().name(),
        "content_hash": plugin.content_hash(),
        "cache": plugin.cache_outcome().name(),
        "load_ms": plugin.load_time().as_secs_f64() * 1000.0,
        "imports": plugin.imports(),
        "exports": plugin.exports(),
        "describe": {
            "routes": descriptor.routes.iter().map(|r| format!("{} {}", r.method, r.pattern)).collect::<Vec<_>>(),
            "topics": descriptor.topics,
            "schedules": descriptor.schedules.iter().map(|s| format!("{} {}", s.name, s.cron)).collect::<Vec<_>>(),
            "mutation_kinds": descriptor.mutation_kinds,
        },
        "sidecar": Sidecar::path_for(plugin.path()).is_file().then(|| Sidecar::path_for(plugin.path())),
        "mount": sidecar.mount,
        "limits": {
            "fuel": limits.fuel,
            "timeout_ms": limits.timeout.as_millis() as u64,
            "memory_bytes": limits.memory_bytes,
            "table_elements": limits.table_elements,
            "max_concurrency": limits.max_concurrency,
            "log_lines_per_second": limits.log_lines_per_second,
        },
        "kv_grants": sidecar.kv.buckets,
        "cart_grants": sidecar.carts.plugins,
        "http_grants": {
            "allowed_hosts": sidecar.http.allowed_hosts,
            "plugins": sidecar.http.plugins,
        },
        "instances": match sidecar.instances.reuse() {
            Ok(Some(reuse)) if reusable(plugin) => serde_json::json!({"reuse": true, "max_calls": reuse.max_calls,
                "max_idle_ms": reuse.max_idle.as_millis() as u64, "max_memory_bytes": reuse.max_memory_bytes,
                "carries_over": corral_runtime::REUSE_CARRIES_OVER}),
            _ => serde_json::json!({"reuse": false}),
        },
        "config_keys": sidecar.config.keys().collect::<Vec<_>>(),
    })
}

fn print_text(plugin: &Plugin, sidecar: &Sidecar) {
    let descriptor = plugin.descriptor();
    let limits = plugin.limits();
    println!("file       {}", plugin.path().display());
    println!("plugin     {} {}", plugin.name(), plugin.version());
    println!("world      {}", plugin.world());
    println!("hash       {}", plugin.content_hash());
    println!("loaded in  {} ms (cache {})", plugin.load_time().as_millis(), plugin.cache_outcome().name());
    println!("imports");
    for import in plugin.imports() {
        println!("  {import}");
    }
    println!("exports");
    for export in plugin.exports() {
        println!("  {export}");
    }
    println!("describe()");
    for route in &descriptor.routes {
        println!("  route     {} {}", route.method, route.pattern);
    }
    for topic in &descriptor.topics {
        println!("  topic     {topic}");
    }
    for schedule in &descriptor.schedules {
        println!("  schedule  {} ({})", schedule.name, schedule.cron);
    }
    for kind in &descriptor.mutation_kinds {
        println!("  mutation  {kind}");
    }
    if let Some(mount) = &sidecar.mount {
        println!("mount      {mount}");
    }
    println!("limits");
    println!("  fuel             {}", limits.fuel);
    println!("  timeout          {} ms", limits.timeout.as_millis());
    println!("  memory           {} MiB", limits.memory_bytes >> 20);
    println!("  table elements   {}", limits.table_elements);
    println!("  max concurrency  {}", limits.max_concurrency);
    println!("  log lines a sec  {}", limits.log_lines_per_second);
    if !sidecar.kv.buckets.is_empty() {
        println!("kv grants  {}", sidecar.kv.buckets.join(", "));
    }
    if !sidecar.carts.plugins.is_empty() {
        println!("carts      {}", sidecar.carts.plugins.join(", "));
    }
    if !sidecar.http.allowed_hosts.is_empty() {
        println!("http hosts {}", sidecar.http.allowed_hosts.join(", "));
    }
    if !sidecar.http.plugins.is_empty() {
        println!("calls      {} (in-process, http://NAME.plugin/)", sidecar.http.plugins.join(", "));
    }
    if let (Ok(Some(reuse)), true) = (sidecar.instances.reuse(), reusable(plugin)) {
        println!(
            "instances  warm: up to {} calls each, idle {} s, {} MiB",
            reuse.max_calls,
            reuse.max_idle.as_secs(),
            reuse.max_memory_bytes >> 20
        );
        println!("           kept between calls: {}", corral_runtime::REUSE_CARRIES_OVER);
    }
}

/// Whether the plugin's world may reuse instances (route, event handler).
fn reusable(plugin: &Plugin) -> bool {
    matches!(plugin.world(), corral_runtime::World::Route | corral_runtime::World::EventHandler)
}
